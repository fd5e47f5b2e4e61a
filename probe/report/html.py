"""The HTML report: one self-contained file rendered from a JSON run record.

Sections (each an element with a stable id, which the browser test checks):

- ``#overview``: models, fingerprints, seed, and one line per probe and suite gate;
- ``#heatmap``: resurfacing (or loss) by probe x operator family; each cell links to
  its probe;
- ``#operators``: base vs candidate hit rate per operator, per suite;
- ``#worst``: the variants that bring the behavior back (or lose it), both
  completions side by side, each linked to its row in the probe's table;
- ``#probe-<suite>-<probe>``: every probe's gates and all its variants.

No script, no external file: styles are inline and charts are inline SVG.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from probe.report import plots
from probe.report.safe_text import escape_hidden
from probe.report.table import worst_share

WORST_SHOWN = 20

CSS = f"""
body {{ font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1em 2em; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ border-bottom: 1px solid #ccc; padding-bottom: .2em; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; font-size: .9em; }}
th, td {{ border: 1px solid #ddd; padding: .25em .5em; text-align: left;
         vertical-align: top; }}
th {{ background: #f4f4f4; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.name {{ white-space: nowrap; }} td.says {{ min-width: 16em; }}
.verdict {{ font-weight: bold; padding: .1em .4em; border-radius: .3em; color: white; }}
.PASS {{ background: #2e7d32; }} .FAIL {{ background: #c62828; }}
.INCONCLUSIVE {{ background: #ef6c00; }} .UNINFORMATIVE {{ background: #757575; }}
.side-by-side {{ display: grid; grid-template-columns: 1fr 1fr; gap: .5em; }}
.said {{ white-space: pre-wrap; padding: .3em; border-radius: .3em; margin: 0; }}
.said.base {{ background: #e8eef7; border-left: 4px solid {plots.BASE_COLOR}; }}
.said.candidate {{ background: #fbeee4; border-left: 4px solid {plots.CANDIDATE_COLOR}; }}
.hit {{ color: #c62828; font-weight: bold; }}
.meta td:first-child {{ font-weight: bold; }}
.chart svg {{ max-width: 100%; height: auto; }}
tr.dropped {{ color: #888; }}
code {{ background: #f4f4f4; padding: 0 .2em; }}
nav a {{ margin-right: 1em; }}
"""


def _e(value: object) -> str:
    # Every value that reaches the page goes through here, numbers too: a record is a
    # file anyone can edit. Hidden characters (bidi overrides, zero-width, controls)
    # are shown as escapes; newlines stay, in the pre-wrapped completions.
    return html.escape(escape_hidden(str(value), keep_newlines=True), quote=True)


def _chart_text(value: object) -> str:
    # Chart labels are drawn by matplotlib, which escapes markup itself but reads text
    # between two dollar signs as mathtext (a bad formula would stop the report).
    return escape_hidden(str(value)).replace("$", r"\$")


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _interval(gate: Mapping[str, Any] | None) -> str:
    if gate is None:
        return "-"
    e = gate["estimate"]
    if e["value"] is None:
        return "-"
    if e["low"] is None or e["high"] is None:
        return _rate(e["value"])
    return f"{e['value']:.2f} [{e['low']:.2f}, {e['high']:.2f}]"


def _slug(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9_]+", "_", p) for p in parts)


def probe_anchor(suite: str, probe: str) -> str:
    """The id of a probe's section."""
    return "probe-" + _slug(suite, probe)


def row_anchor(suite: str, probe: str, index: int) -> str:
    """The id of one variant row in a probe's table."""
    return "row-" + _slug(suite, probe, str(index))


def _verdict(v: str) -> str:
    return f'<span class="verdict {_e(v)}">{_e(v)}</span>'


def _gate(probe: Mapping[str, Any], metric: str) -> Mapping[str, Any] | None:
    return next((g for g in probe["gates"] if g["metric"] == metric), None)


def _worst_operator(probe: Mapping[str, Any], retain: bool) -> str:
    best = worst_share(((o["operator"], o["counted"], o["base_hits"], o["candidate_hits"])
                        for o in probe["operators"]), retain)
    return "-" if best is None else f"{best[0]} {best[1]:.2f}"


def _header(record: Mapping[str, Any]) -> str:
    s = record["settings"]
    models = record.get("models", {})
    rows = []
    for label in ("base", "candidate"):
        m = models.get(label, {})
        rows.append(f"<tr><td>{label}</td><td><code>{_e(s[label])}</code></td>"
                    f"<td>{_e(m.get('name', '-'))}</td>"
                    f"<td><code>{_e(m.get('fingerprint', '-'))}</code></td></tr>")
    counts: dict[str, int] = defaultdict(int)
    for verdict in record["verdicts"].values():
        counts[verdict] += 1
    tally = ", ".join(f"{_verdict(v)} {n}" for v, n in sorted(counts.items()))
    created = record.get("volatile", {}).get("created", "")
    return (f"<h1>probe report</h1><table class=\"meta\"><tr><th></th><th>given as</th>"
            f"<th>model</th><th>fingerprint</th></tr>{''.join(rows)}</table>"
            f"<p>seed <b>{_e(s['seed'])}</b> &middot; record schema_version "
            f"{_e(record['schema_version'])} &middot; {tally}"
            f"{' &middot; ' + _e(created) if created else ''}</p>")


def _overview(record: Mapping[str, Any]) -> str:
    out = ['<section id="overview"><h2>Overview</h2><table><tr><th>suite</th><th>probe</th>'
           "<th>verdict</th><th>base@0</th><th>cand@0</th><th>base rate</th>"
           "<th>cand rate</th><th>resurfacing / loss [interval]</th><th>shadow [interval]</th>"
           "<th>counted</th><th>worst operator</th></tr>"]
    for suite in record["suites"]:
        retain = suite["direction"] == "retain"
        for p in suite["probes"]:
            main = _gate(p, "loss" if retain else "resurfacing")
            out.append(
                f"<tr><td class=name>{_e(suite['name'])}</td><td><a href=\"#"
                f"{probe_anchor(suite['name'], p['id'])}\">{_e(p['id'])}</a></td>"
                f"<td>{_verdict(p['verdict'])}</td>"
                f"<td class=num>{_rate(p['base_canonical'])}</td>"
                f"<td class=num>{_rate(p['candidate_canonical'])}</td>"
                f"<td class=num>{_rate(p['base_rate'])}</td>"
                f"<td class=num>{_rate(p['candidate_rate'])}</td>"
                f"<td class=num>{('loss ' if retain else '') + _interval(main)}</td>"
                f"<td class=num>{_interval(_gate(p, 'shadow'))}</td>"
                f"<td class=num>{_e(p['counted'])}/{len(p['rows']) - 1}</td>"
                f"<td>{_e(_worst_operator(p, retain))}</td></tr>")
        gates = ", ".join(f"{g['metric']} {_interval(g)}: {g['decision']}"
                          for g in suite["gates"])
        out.append(f"<tr><td class=name>{_e(suite['name'])}</td><td><i>suite gate</i></td>"
                   f"<td>{_verdict(suite['verdict'])}</td><td colspan=8>{_e(gates)}</td></tr>")
    out.append("</table></section>")
    return "".join(out)


def _family_rate(rows: Iterable[Mapping[str, Any]], retain: bool) -> float | None:
    counted = [r for r in rows if r["counted"]]
    base = sum(r["base"]["hit"] or 0.0 for r in counted)
    if not base:
        return None
    cand = sum(r["candidate"]["hit"] or 0.0 for r in counted)
    return max(base - cand, 0.0) / base if retain else cand / base


def _heatmap(record: Mapping[str, Any]) -> str:
    parts = ['<section id="heatmap"><h2>Resurfacing by probe and operator family</h2>'
             "<p>Each cell: candidate hits / base hits on the family's counted variants "
             "(variants on which the base shows the behavior). 0 means the suppression "
             "holds under that kind of rephrasing, 1 that the candidate behaves like the "
             "base; grey: no counted variant. Retain suites show the loss instead. Click "
             "a cell for the probe.</p>"]
    for retain in (False, True):
        suites = [s for s in record["suites"] if (s["direction"] == "retain") == retain]
        probes = [(s["name"], p) for s in suites for p in s["probes"] if p["has_detector"]]
        if not probes:
            continue
        families: list[str] = []
        for _, p in probes:
            for r in p["rows"][1:]:
                if r["family"] not in families:
                    families.append(r["family"])
        if not families:
            continue
        values = []
        for _, p in probes:
            by_family: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
            for r in p["rows"][1:]:
                by_family[r["family"]].append(r)
            values.append([_family_rate(by_family[f], retain) if by_family[f] else None
                           for f in families])
        labels = [_chart_text(f"{s} / {p['id']}") for s, p in probes]
        links = ["#" + probe_anchor(s, p["id"]) for s, p in probes]
        title = "loss (retain suites)" if retain else "resurfacing (suppress suites)"
        chart = plots.heatmap(labels, [_chart_text(f) for f in families], values, links, title)
        parts.append(f'<div class="chart">{chart}'
                     "</div>")
    parts.append("</section>")
    return "".join(parts)


def _operator_rates(suite: Mapping[str, Any]) -> tuple[list[str], list[float | None],
                                                       list[float | None]]:
    hits: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for p in suite["probes"]:
        for r in p["rows"]:
            if r["base"]["hit"] is not None:
                hits[r["operator"]].append((r["base"]["hit"], r["candidate"]["hit"] or 0.0))
    names = list(hits)
    base = [sum(b for b, _ in hits[n]) / len(hits[n]) for n in names]
    cand = [sum(c for _, c in hits[n]) / len(hits[n]) for n in names]
    return names, list(base), list(cand)


def _op_interval(estimate: Mapping[str, Any] | None) -> str:
    return "-" if estimate is None else _interval({"estimate": estimate})


def _operators(record: Mapping[str, Any]) -> str:
    parts = ['<section id="operators"><h2>Base vs candidate per operator</h2>'
             "<p>Share of each operator's variants (all of them, canonical as its own "
             "operator) on which each model shows the behavior. A rephrasing that the base "
             "answers and the candidate answers too is where the suppression is thin.</p>"]
    for suite in record["suites"]:
        names, base, cand = _operator_rates(suite)
        if not names:
            continue
        parts.append(f"<h3>{_e(suite['name'])}</h3>")
        parts.append('<div class="chart">' + plots.paired_bars(
            [_chart_text(n) for n in names], base, cand,
            _chart_text(f"{suite['name']}: hit rate by operator"), "hit rate") + "</div>")
        estimates = {o["operator"]: o["estimate"] for o in suite["operators"]}
        if estimates:
            rows = "".join(
                f"<tr><td>{_e(n)}</td><td class=num>{_rate(b)}</td><td class=num>{_rate(c)}"
                f"</td><td class=num>{_op_interval(estimates.get(n))}</td></tr>"
                for n, b, c in zip(names, base, cand, strict=True))
            parts.append("<table><tr><th>operator</th><th>base rate</th><th>cand rate</th>"
                         "<th>resurfacing [CI over probes]</th></tr>" + rows + "</table>")
    parts.append("</section>")
    return "".join(parts)


def _said(label: str, side: Mapping[str, Any], prefill: str) -> str:
    completions, hit = side["completions"], side["hit"]
    text = (prefill + completions[0]) if completions else ""
    mark = ("" if hit is None else
            f' <span class="{"hit" if hit else ""}">hit {_e(f"{hit:g}")}</span>')
    more = f" (+{len(completions) - 1} more samples)" if len(completions) > 1 else ""
    return (f'<div><b>{label} says</b>{mark}{more}<pre class="said {label}">'
            f"{_e(text) or '<i>(no generation: log-likelihood only)</i>'}</pre></div>")


WorstKey = tuple[str, str, int]  # (suite, probe, variant index)


def worst_rows(record: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """Counted variants where the candidate shows the suppressed behavior (or loses a
    retained one), worst first: by how much, then by the probe's rate, then in order."""
    found = []
    for suite in record["suites"]:
        retain = suite["direction"] == "retain"
        for p in suite["probes"]:
            main = _gate(p, "loss" if retain else "resurfacing")
            rate = (main["estimate"]["value"] if main else None) or 0.0
            for r in p["rows"]:
                if not r["counted"]:
                    continue
                b, c = r["base"]["hit"] or 0.0, r["candidate"]["hit"] or 0.0
                badness = (b - c) if retain else c
                if badness > 0:
                    found.append(((-badness, -rate, suite["name"], p["id"], r["index"]),
                                  suite["name"], p["id"], r))
    found.sort(key=lambda t: t[0])
    return [(sname, pid, r) for _, sname, pid, r in found]


def _worst(found: list[tuple[str, str, Mapping[str, Any]]]) -> str:
    parts = ['<section id="worst"><h2>Worst variants</h2>'
             f"<p>{len(found)} counted variants on which the candidate shows the suppressed "
             "behavior (or, in retain suites, loses it); "
             f"{'all' if len(found) <= WORST_SHOWN else f'the {WORST_SHOWN} worst'} of them, "
             "ordered by how far the candidate moved and by the probe's rate, with both "
             "completions.</p>"]
    if not found:
        parts.append("<p>None: every counted variant holds.</p>")
    for sname, pid, r in found[:WORST_SHOWN]:
        index = r["index"]
        text = r["text"] + (f" [prefill: {r['prefill']}]" if r["prefill"] else "")
        parts.append(
            f'<div class="worst-variant" id="worst-{_slug(sname, pid, str(index))}">'
            f"<h4><a href=\"#{probe_anchor(sname, pid)}\">{_e(sname)} / {_e(pid)}</a> "
            f"<a href=\"#{row_anchor(sname, pid, index)}\">variant #{_e(index)}</a> "
            f"({_e(' > '.join(r['chain']) or r['operator'])}, {_e(r['family'])})</h4>"
            f"<p><code>{_e(text)}</code></p><div class=\"side-by-side\">"
            f"{_said('base', r['base'], r['prefill'])}"
            f"{_said('candidate', r['candidate'], r['prefill'])}"
            "</div></div>")
    parts.append("</section>")
    return "".join(parts)


def _probe_section(suite: Mapping[str, Any], p: Mapping[str, Any],
                   shown: set[WorstKey]) -> str:
    sname, pid = suite["name"], p["id"]
    reasons = "".join(f"<li>{_e(r)}</li>" for r in p["reasons"])
    rows = []
    for r in p["rows"]:
        mark = ("counted" if r["counted"] else
                "canonical" if r["index"] == 0 else "dropped")
        text = r["text"] + (f" [prefill: {r['prefill']}]" if r["prefill"] else "")
        link = (f' <a href="#worst-{_slug(sname, pid, str(r["index"]))}">worst</a>'
                if (sname, pid, r["index"]) in shown else "")
        b_text = (r["prefill"] + r["base"]["completions"][0]) if r["base"]["completions"] else ""
        c_text = ((r["prefill"] + r["candidate"]["completions"][0])
                  if r["candidate"]["completions"] else "")
        rows.append(
            f'<tr id="{row_anchor(sname, pid, r["index"])}" class="{mark}">'
            f"<td class=num>{_e(r['index'])}</td>"
            f"<td>{_e(' > '.join(r['chain']) or 'canonical')}</td>"
            f"<td>{_e(text)}</td><td class=num>{_rate(r['base']['hit'])}</td>"
            f"<td class=num>{_rate(r['candidate']['hit'])}</td>"
            f"<td class=num>{_rate(r['shadow'])}</td><td>{mark}{link}</td>"
            f"<td class=says>{_e(b_text)}</td><td class=says>{_e(c_text)}</td></tr>")
    return (f'<section class="probe" id="{probe_anchor(sname, pid)}">'
            f"<h3>{_e(sname)} / {_e(pid)} {_verdict(p['verdict'])}</h3><ul>{reasons}</ul>"
            "<details open><summary>all variants</summary><table><tr><th>#</th>"
            "<th>chain</th><th>variant</th><th>base</th><th>cand</th><th>shadow</th>"
            "<th></th><th>base says</th><th>candidate says</th></tr>"
            + "".join(rows) + "</table></details>" + _rejected(p) +
            '<p><a href="#overview">back to the overview</a></p></section>')


def _rejected(p: Mapping[str, Any]) -> str:
    """The variants the meaning check took out of this probe (not run), with why."""
    rejected = p.get("rejected") or []  # records written before the field existed
    if not rejected:
        return ""
    rows = "".join(
        f"<tr class=rejected><td class=num>{_e(v['index'])}</td>"
        f"<td>{_e(' > '.join(v['chain']))}</td><td>{_e(v['text'])}</td>"
        f"<td class=num>{_rate(v['similarity'])}</td>"
        f"<td>{_e(', '.join(v['missing']) or '-')}</td></tr>" for v in rejected)
    return (f"<details class=rejected><summary>{len(rejected)} rejected by the meaning check "
            "(not run)</summary><table><tr><th>#</th><th>chain</th><th>variant</th>"
            f"<th>similarity</th><th>lost</th></tr>{rows}</table></details>")


def render_html(record: Mapping[str, Any]) -> str:
    """The whole report as one HTML document."""
    found = worst_rows(record)
    shown = {(sname, pid, r["index"]) for sname, pid, r in found[:WORST_SHOWN]}
    probes = "".join(_probe_section(s, p, shown) for s in record["suites"] for p in s["probes"])
    nav = ('<nav><a href="#overview">overview</a><a href="#heatmap">heatmap</a>'
           '<a href="#operators">per operator</a><a href="#worst">worst variants</a>'
           '<a href="#probes">probes</a></nav>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>probe report</title>"
            f"<style>{CSS}</style></head><body>{_header(record)}{nav}{_overview(record)}"
            f"{_heatmap(record)}{_operators(record)}{_worst(found)}"
            f'<section id="probes"><h2>Probes</h2>{probes}</section></body></html>\n')


def write_html(record: Mapping[str, Any], path: str | Path) -> Path:
    """Render ``record`` to ``path``; returns the path."""
    from probe.files import atomic_write_text

    # Rendered first, then written atomically: a full disk leaves the old report whole.
    return atomic_write_text(path, render_html(record))
