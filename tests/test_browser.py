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
from typing import Any

import pytest

from probe.report.html import FAIL_COLOR, MATCH_COLOR, PASS_COLOR, write_html
from tests.report.fixtures import CUT_SUITE, LOOSE_SUITE, scripted_record

CHROMIUM = os.environ.get("PROBE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def _chromium(tmp_path: Path, *args: str, height: int = 1800,
              ) -> subprocess.CompletedProcess[str]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it with "
                    "'apt-get install -y chromium' (scripts/test.sh does when run as root), "
                    "or point PROBE_CHROMIUM at a Chromium binary", pytrace=False)
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *FLAGS, f"--window-size=1280,{height}",
                           f"--user-data-dir={profile}", *args],
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
    assert 'class="verdict FAIL"' in dom
    assert 'class="verdict PASS"' in dom
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


RGB = tuple[int, int, int]


def _rgb(color: str) -> RGB:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _screenshot(tmp_path: Path, page: Path, height: int) -> Any:
    """The page as Chromium draws it, as an RGB image."""
    from PIL import Image

    shot = tmp_path / f"{page.stem}.png"
    _chromium(tmp_path, f"--screenshot={shot}", page.as_uri(), height=height)
    with Image.open(shot) as image:
        return image.convert("RGB")


def _rows(image: Any, height: int) -> list[list[RGB]]:
    """The top ``height`` rows of ``image``, one list of pixels per row."""
    width = image.size[0]
    raw = image.crop((0, 0, width, height)).tobytes()
    pixels = list(zip(raw[0::3], raw[1::3], raw[2::3], strict=True))
    return [pixels[y * width:(y + 1) * width] for y in range(height)]


def _coloured_rows(rows: list[list[RGB]], color: str, wide: int = 300) -> list[int]:
    """The rows in which at least ``wide`` pixels have ``color`` (a bar across the page)."""
    target = _rgb(color)
    return [y for y, row in enumerate(rows) if row.count(target) >= wide]


def test_the_answer_comes_first_in_the_build_outcomes_colour(tmp_path: Path) -> None:
    failing = write_html(scripted_record(tmp_path), tmp_path / "failing.html")
    passing = write_html(scripted_record(tmp_path, "robust", suite=LOOSE_SUITE),
                         tmp_path / "passing.html")
    for page, colour, other in ((failing, FAIL_COLOR, PASS_COLOR),
                                (passing, PASS_COLOR, FAIL_COLOR)):
        top = _rows(_screenshot(tmp_path, page, 1800), 200)
        bar = _coloured_rows(top, colour)
        # A bar of the outcome's colour across the page, above everything else: the
        # first thing one sees (two lines of text on it, so rows of it, not one).
        assert len(bar) >= 30, (page.name, bar[:3], len(bar))
        assert bar[0] < 120, (page.name, bar[:3], len(bar))
        assert _coloured_rows(top, other) == [], page.name


def test_matches_and_cut_completions_are_drawn(tmp_path: Path) -> None:
    page = write_html(scripted_record(tmp_path, suite=CUT_SUITE), tmp_path / "cut.html")
    image = _screenshot(tmp_path, page, 7000)
    counts = {colour: n for n, colour in image.getcolors(maxcolors=1 << 24)}
    # The highlight behind the detector's matches (Tokyo on japan's rows).
    assert counts.get(_rgb(MATCH_COLOR), 0) > 200
    # The cut badges' fill, beside the completions cut at four words.
    assert counts.get(_rgb("#fff3e0"), 0) > 200


def test_a_missing_chromium_fails_with_the_install_line(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        _chromium(tmp_path, "--version")
