"""The HTML report: one self-contained file with every section, and links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

from probe.report.html import probe_anchor, render_html, row_anchor, write_html
from tests.report.fixtures import scripted_record


def test_report_has_every_section_and_no_external_resource(tmp_path: Path) -> None:
    page = render_html(scripted_record(tmp_path))
    for section in ("overview", "heatmap", "operators", "worst", "probes"):
        assert f'id="{section}"' in page
    assert page.count("<svg") == 2  # the heatmap and one suite's operator chart
    # Self-contained: nothing fetched from anywhere.
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page
    assert "fake-leaky" in page and "fake-base" in page


def test_every_internal_link_has_a_target(tmp_path: Path) -> None:
    page = render_html(scripted_record(tmp_path))
    ids = set(re.findall(r'id="([^"]+)"', page))
    # The SVG backend writes the heatmap cells' links as xlink:href.
    targets = re.findall(r'(?:xlink:)?href="#([^"]+)"', page)
    assert targets
    assert [t for t in targets if t not in ids] == []
    assert probe_anchor("capitals", "france") in targets  # heatmap and overview
    assert row_anchor("capitals", "france", 1) in targets  # from the worst variants


def test_worst_variants_show_both_completions(tmp_path: Path) -> None:
    page = render_html(scripted_record(tmp_path))
    worst = page[page.index('id="worst"'):page.index('id="probes"')]
    # The leaky candidate says Paris on all five paraphrases of France.
    assert worst.count('class="worst-variant"') == 5
    assert worst.count("The capital of France is Paris.") == 5
    assert worst.count("Paris, of course.") == 5


def test_heatmap_cells_carry_the_family_rates(tmp_path: Path) -> None:
    page = render_html(scripted_record(tmp_path))
    heatmap = page[page.index('id="heatmap"'):page.index('id="operators"')]
    # France: paraphrase family 5/5 back, noise family 0/6.
    assert ">1.00<" in heatmap and ">0.00<" in heatmap
    assert "capitals / france" in heatmap and "paraphrase" in heatmap


def test_write_html_creates_parents(tmp_path: Path) -> None:
    out = write_html(scripted_record(tmp_path), tmp_path / "a" / "b" / "r.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
