"""The HTML report: one self-contained file with every section, and links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


def test_links_resolve_in_retain_suites_and_beyond_the_shown_worst(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import probe.report.html as html_module

    record = scripted_record(tmp_path)
    record["suites"][0]["direction"] = "retain"  # worst now means hits the candidate lost
    for limit in (20, 2):
        monkeypatch.setattr(html_module, "WORST_SHOWN", limit)
        page = render_html(record)
        ids = set(re.findall(r'id="([^"]+)"', page))
        targets = re.findall(r'(?:xlink:)?href="#([^"]+)"', page)
        assert [t for t in targets if t not in ids] == [], limit
        shown = page.count('class="worst-variant"')
        # Lost hits: france's 6 noise variants and all 11 of japan's.
        assert shown == min(limit, 17)


def test_worst_variants_put_the_worse_probe_first(tmp_path: Path) -> None:
    from probe.report.html import worst_rows

    record = scripted_record(tmp_path)
    probes = record["suites"][0]["probes"]
    japan = next(p for p in probes if p["id"] == "japan")
    japan["rows"][1]["candidate"]["hit"] = 1.0  # one leak, at a lower probe rate than france
    japan["gates"][0]["estimate"]["value"] = 0.1
    probes.reverse()  # record order must not decide
    order = [(pid, r["index"]) for _, pid, r in worst_rows(record)]
    assert order == [("france", i) for i in range(1, 6)] + [("japan", 1)]
