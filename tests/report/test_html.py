"""The HTML report: one self-contained file with every section, and links that resolve."""

from __future__ import annotations

import html
import itertools
import re
from pathlib import Path

import pytest

from probe.report.html import probe_anchor, render_html, row_anchor, write_html
from probe.report.plots import paired_bars
from tests.report.fixtures import CUT_SUITE, LOOSE_SUITE, scripted_record


def test_report_has_every_section_and_no_external_resource(tmp_path: Path) -> None:
    page = render_html(scripted_record(tmp_path))
    for section in ("overview", "heatmap", "operators", "worst", "probes"):
        assert f'id="{section}"' in page
    assert page.count("<svg") == 2  # the heatmap and one suite's operator chart
    # Self-contained: nothing fetched from anywhere.
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page
    assert "fake-leaky" in page
    assert "fake-base" in page


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
    # Both say Paris, which the detector matched: highlighted on both sides.
    assert worst.count('The capital of France is <mark class="match">Paris</mark>.') == 5
    assert worst.count('<mark class="match">Paris</mark>, of course.') == 5


def test_heatmap_cells_carry_the_family_rates(tmp_path: Path) -> None:
    page = render_html(scripted_record(tmp_path))
    heatmap = page[page.index('id="heatmap"'):page.index('id="operators"')]
    # France: paraphrase family 5/5 back, noise family 0/6.
    assert ">1.00<" in heatmap
    assert ">0.00<" in heatmap
    assert "capitals / france" in heatmap
    assert "paraphrase" in heatmap


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


def _section(page: str, start: str, end: str) -> str:
    return page[page.index(f'id="{start}"'):page.index(f'id="{end}"')]


def test_the_top_line_gives_the_outcome_and_which_entries_fail(tmp_path: Path) -> None:
    page = render_html(scripted_record(tmp_path))
    top = page[page.index('<p id="outcome"'):page.index("</p>", page.index('id="outcome"'))]
    assert page.index('id="outcome"') < page.index('id="overview"')  # the answer first
    assert 'class="fail"><b>FAIL</b>2 of 3 probes and suite gates fail the build: ' in top
    assert "capitals / france (FAIL: resurfacing 0.45 [0.15, 0.77], limit 0.10)" in top
    assert "capitals suite gate (INCONCLUSIVE: resurfacing 0.23" in top
    assert "japan" not in top
    passing = render_html(scripted_record(tmp_path, "robust", suite=LOOSE_SUITE))
    assert ('<p id="outcome" class="pass"><b>PASS</b>none of the 3 probes and suite gates '
            "fails the build.</p>") in passing


def test_matches_are_highlighted_and_every_completion_escaped(tmp_path: Path) -> None:
    record = scripted_record(tmp_path)
    row = record["suites"][0]["probes"][0]["rows"][1]
    text = "<script>alert(1)</script> says Paris & <b>Rome</b>"
    row["candidate"]["completions"] = [text]
    paris = text.index("Paris")
    # Spans come from an editable file: out of range, reversed and overlapping ones too.
    row["candidate"]["spans"] = [[[paris, paris + 5], [paris + 2, paris + 3], [40, 9999],
                                  [-3, 0], [7, 2]]]
    page = render_html(record)
    assert "<script" not in page
    assert "<b>Rome" not in page
    assert ("&lt;script&gt;alert(1)&lt;/script&gt; says <mark class=\"match\">Paris</mark>"
            " &amp; " in page)
    # [40, 9999] is clamped to the end of the text.
    assert f'<mark class="match">{html.escape(text[40:])}</mark>' in page
    assert page.count('<mark class="match">') >= 2


def test_cut_completions_are_marked(tmp_path: Path) -> None:
    page = render_html(scripted_record(tmp_path, suite=CUT_SUITE))
    row = page[page.index(f'id="{row_anchor("capitals", "japan", 0)}"'):]
    row = row[:row.index("</tr>")]
    base, candidate = row.split("<td class=says>")[1:]
    # "It is Tokyo." ended by itself; the candidate's refusal was cut at four words.
    assert "<mark class=\"match\">Tokyo</mark>." in base
    assert "cut at max_new_tokens" not in base
    assert "I&#x27;m sorry, I can&#x27;t" in candidate
    assert '<span class="cut"' in candidate
    assert "cut at max_new_tokens" in candidate


def test_the_overview_says_why_a_probe_is_uninformative(tmp_path: Path) -> None:
    record = scripted_record(tmp_path, suite=CUT_SUITE)
    france = next(p for p in record["suites"][0]["probes"] if p["id"] == "france")
    reason = france["uninformative_reason"]
    assert reason
    overview = _section(render_html(record), "overview", "heatmap")
    assert f'UNINFORMATIVE</span><div class="why">{html.escape(reason)}</div>' in overview
    # The top line says it too: an uninformative probe fails the build by default.
    assert "capitals / france (UNINFORMATIVE: the base does not show" in render_html(record)


def test_every_table_column_has_a_header(tmp_path: Path) -> None:
    record = scripted_record(tmp_path)
    record["suites"][0]["probes"][0]["rejected"] = [
        {"index": 9, "chain": ["casing"], "text": "x", "similarity": 0.5, "missing": []}]
    page = render_html(record)
    tables = re.findall(r"<table[^>]*>(.*?)</table>", page, flags=re.S)
    assert len(tables) >= 6
    for table in tables:
        rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, flags=re.S)
        headers = re.findall(r"<th[^>]*>(.*?)</th>", rows[0], flags=re.S)
        assert headers, rows[0]
        assert all(re.sub(r"<[^>]+>", "", h).strip() for h in headers), rows[0]
        for row in rows[1:]:
            cells = re.findall(r"<td([^>]*)>", row)
            width = sum(int(m.group(1)) if (m := re.search(r"colspan=(\d+)", c)) else 1
                        for c in cells)
            assert width == len(headers), row[:200]


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found is not None, pattern
    return float(found.group(1))


@pytest.mark.parametrize("count", [3, 40])
def test_operator_chart_labels_stay_readable(count: int) -> None:
    names = [f"operator_{i}+typos" for i in range(count)]
    svg = paired_bars(names, [0.5] * count, [0.25] * count, "t", "hit rate")
    width_pt = _number(r'<svg[^>]* width="([\d.]+)pt"', svg)
    # Drawn no wider than the page's column (1200 px less padding, 96 px per 72 pt), so
    # the browser never shrinks its text.
    assert width_pt * 96 / 72 <= 1136
    labels = []
    for attrs, text in re.findall(r"<text ([^>]*)>([^<]*)</text>", svg):
        if text in names:
            size, y = _number(r"font-size: ([\d.]+)px", attrs), _number(r' y="([\d.]+)"', attrs)
            assert "rotate(-0 " in attrs  # horizontal
            labels.append((y, size))
    assert len(labels) == count
    assert all(size >= 9 for _, size in labels)
    ys = sorted(y for y, _ in labels)
    # Each label has at least one and a half of its height to itself: no overlap.
    assert min(b - a for a, b in itertools.pairwise(ys)) >= 1.5 * labels[0][1]
