"""The HTML report renders in a real browser: headless Chromium from Debian's packages.

Not skipped when Chromium is missing: CI installs it (scripts/test.sh), and a report
that nobody checked renders is the failure this test exists to catch.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from probe.report.html import write_html
from tests.report.fixtures import scripted_record

CHROMIUM = os.environ.get("PROBE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1280,1800"]


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it with "
                    "'apt-get install -y chromium' (scripts/test.sh does when run as root), "
                    "or point PROBE_CHROMIUM at a Chromium binary", pytrace=False)
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180, check=True)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    return write_html(scripted_record(tmp_path), tmp_path / "report.html")


def test_the_report_dom_has_its_sections(tmp_path: Path, report: Path) -> None:
    dom = _chromium(tmp_path, "--dump-dom", report.as_uri()).stdout
    for section in ("overview", "heatmap", "operators", "worst", "probes"):
        assert f'id="{section}"' in dom
    assert dom.count("<svg") == 2
    assert len(re.findall(r'class="worst-variant"', dom)) == 5
    assert 'class="verdict FAIL"' in dom and 'class="verdict PASS"' in dom
    # The heatmap's clickable cells survived parsing as SVG links.
    assert re.search(r'<a [^>]*href="#probe-capitals-france"', dom)


def test_the_screenshot_is_not_blank(tmp_path: Path, report: Path) -> None:
    from PIL import Image

    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={shot}", report.as_uri())
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1280, 1800)
        raw = rgb.tobytes()
    pixels = list(zip(raw[0::3], raw[1::3], raw[2::3], strict=True))
    ink = sum(1 for p in pixels if p != (255, 255, 255)) / len(pixels)
    assert ink > 0.03, f"only {ink:.1%} of the page is not white"
    assert len(set(pixels)) > 50  # text, badges, charts: many colours, not one flat fill
    # The FAIL badge and the heatmap's hot cell are red: the charts and styles rendered.
    assert any(r > 150 and g < 80 and b < 80 for r, g, b in pixels)


def test_a_missing_chromium_fails_with_the_install_line(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        _chromium(tmp_path, "--version")
