"""The HTML report: one self-contained file rendered from a JSON run record.

Sections (each an element with a stable id, which the browser test checks):

- ``#outcome``: the answer first: whether the build passes, and which entries fail it;
- ``#overview``: models, fingerprints, seed, and one line per probe and suite gate,
  with the reason wherever nothing was measured (UNINFORMATIVE);
- ``#heatmap``: resurfacing (or loss) by probe x operator family; each cell links to
  its probe;
- ``#operators``: base vs candidate hit rate per operator, per suite;
- ``#worst``: the variants that bring the behavior back (or lose it), both
  completions side by side, each linked to its row in the probe's table;
- ``#probe-<suite>-<probe>``: every probe's gates and all its variants.

Completions show what the detector matched (``<mark>``) and whether generation cut
them at ``max_new_tokens``. Every figure is read from the record, which carries the
engine's figures (``probe.engine.figures``): nothing is recomputed here. No script, no
external file: styles are inline and charts are inline SVG.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from probe.engine.variants import one_line
from probe.report import plots
from probe.report.safe_text import escape_hidden
from probe.spec.model import SUITE_GATE_ID

WORST_SHOWN = 20
# Failing entries named in the top line; the rest are counted.
NAMED_FAILURES = 5
# Colours of the answer and of a detector's match (the browser test looks for them).
PASS_COLOR = "#2e7d32"
FAIL_COLOR = "#c62828"
MATCH_COLOR = "#ffe066"

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
.PASS {{ background: {PASS_COLOR}; }} .FAIL {{ background: {FAIL_COLOR}; }}
#outcome {{ color: white; font-size: 1.15em; padding: .6em 1em; border-radius: .4em;
           margin: .5em 0 1em; }}
#outcome.pass {{ background: {PASS_COLOR}; }} #outcome.fail {{ background: {FAIL_COLOR}; }}
#outcome b {{ font-size: 1.2em; margin-right: .4em; }}
mark.match {{ background: {MATCH_COLOR}; color: inherit; padding: 0 .1em; }}
.cut {{ font-size: .8em; font-style: italic; color: #8a4b00; background: #fff3e0;
        border: 1px dashed #ef6c00; border-radius: .3em; padding: 0 .3em;
        white-space: nowrap; }}
.why {{ font-size: .85em; color: #555; margin-top: .2em; }}
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


def _worst_operator(probe: Mapping[str, Any]) -> str:
    worst = probe["worst_operator"]
    return "-" if worst is None else f"{worst['operator']} {_rate(worst['share'])}"


def _entry_label(key: str) -> str:
    suite, _, probe = key.rpartition("::")
    return f"{suite} suite gate" if probe == SUITE_GATE_ID else f"{suite} / {probe}"


def _failures(record: Mapping[str, Any]) -> tuple[list[str], int, int]:
    """What fails the build, one phrase each (``suite / probe (FAIL: resurfacing 1.00
    over 0.10)``), how many entries there are, and how many are expected failures."""
    failing, total, xfail = [], 0, 0
    for suite in record["suites"]:
        retain = suite["direction"] == "retain"
        for item, key in [*((p, f"{suite['name']}::{p['id']}") for p in suite["probes"]),
                          (suite, f"{suite['name']}::{SUITE_GATE_ID}")]:
            total += 1
            xfail += item["outcome"] == "xfail"
            if item["outcome"] != "fail":
                continue
            why = item["uninformative_reason"]
            if why is None:
                gates = [g for g in item["gates"] if g["decision"] != "PASS"]
                main = gates[0] if gates else _gate(item, "loss" if retain else "resurfacing")
                limit = None if main is None else main["estimate"].get("limit")
                why = ("" if main is None else
                       f"{main['metric']} {_interval(main)}, limit {_rate(limit)}")
            failing.append(f"{_entry_label(key)} ({item['verdict']}{': ' + why if why else ''})")
    return failing, total, xfail


def _outcome(record: Mapping[str, Any]) -> str:
    """The answer first: the build's outcome and, in one sentence, why."""
    failing, total, xfail = _failures(record)
    expected = (f"; {xfail} expected {'failure' if xfail == 1 else 'failures'} "
                "(xfail by policy) do not count" if xfail else "")
    if not failing:
        return (f'<p id="outcome" class="pass"><b>PASS</b>none of the {total} probes and '
                f"suite gates fails the build{_e(expected)}.</p>")
    named = "; ".join(failing[:NAMED_FAILURES])
    more = (f"; and {len(failing) - NAMED_FAILURES} more (see the overview)"
            if len(failing) > NAMED_FAILURES else "")
    return (f'<p id="outcome" class="fail"><b>FAIL</b>{len(failing)} of {total} probes and '
            f"suite gates fail the build: {_e(named + more + expected)}.</p>")


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
    return (f"<table class=\"meta\"><tr><th>model</th><th>given as</th>"
            f"<th>name</th><th>fingerprint</th></tr>{''.join(rows)}</table>"
            f"<p>seed <b>{_e(s['seed'])}</b> &middot; record schema_version "
            f"{_e(record['schema_version'])} &middot; {tally}"
            f"{' &middot; ' + _e(created) if created else ''}</p>")


def _verdict_why(item: Mapping[str, Any]) -> str:
    """The verdict badge, with the reason under it when nothing was measured."""
    why = item["uninformative_reason"]
    return _verdict(item["verdict"]) + ("" if why is None else
                                        f'<div class="why">{_e(why)}</div>')


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
                f"<td>{_verdict_why(p)}</td>"
                f"<td class=num>{_rate(p['base_canonical'])}</td>"
                f"<td class=num>{_rate(p['candidate_canonical'])}</td>"
                f"<td class=num>{_rate(p['base_rate'])}</td>"
                f"<td class=num>{_rate(p['candidate_rate'])}</td>"
                f"<td class=num>{('loss ' if retain else '') + _interval(main)}</td>"
                f"<td class=num>{_interval(_gate(p, 'shadow'))}</td>"
                f"<td class=num>{_e(p['counted'])}/{len(p['rows']) - 1}</td>"
                f"<td>{_e(_worst_operator(p))}</td></tr>")
        gates = ", ".join(f"{g['metric']} {_interval(g)}: {g['decision']}"
                          for g in suite["gates"])
        out.append(f"<tr><td class=name>{_e(suite['name'])}</td><td><i>suite gate</i></td>"
                   f"<td>{_verdict_why(suite)}</td><td colspan=8>{_e(gates)}</td></tr>")
        # Judge detectors' agreement beside the verdicts they gave (records before judges
        # existed have no such key).
        for judge in suite.get("judges", []):
            trust = ("not measured" if judge["agreement"] is None else
                     f"agreement {_rate(judge['agreement'])} on {len(judge['examples'])} "
                     f"labelled examples, min_agreement {judge['min_agreement']:g}")
            out.append(f"<tr><td class=name>{_e(suite['name'])}</td><td><i>judge</i></td>"
                       f"<td colspan=9>{_e(judge['model'])}: {_e(trust)}</td></tr>")
    out.append("</table></section>")
    return "".join(out)


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
        families: list[str] = []
        for _, p in probes:
            for f in p["families"]:
                if f["family"] not in families:
                    families.append(f["family"])
        if not families:
            continue
        values = []
        for _, p in probes:
            rates = {f["family"]: f["rate"] for f in p["families"]}
            values.append([rates.get(f) for f in families])
        labels = [_chart_text(f"{s} / {p['id']}") for s, p in probes]
        links = ["#" + probe_anchor(s, p["id"]) for s, p in probes]
        title = "loss (retain suites)" if retain else "resurfacing (suppress suites)"
        chart = plots.heatmap(labels, [_chart_text(f) for f in families], values, links, title)
        parts.append(f'<div class="chart">{chart}'
                     "</div>")
    parts.append("</section>")
    return "".join(parts)


def _op_interval(estimate: Mapping[str, Any] | None) -> str:
    return "-" if estimate is None else _interval({"estimate": estimate})


def _operators(record: Mapping[str, Any]) -> str:
    parts = ['<section id="operators"><h2>Base vs candidate per operator</h2>'
             "<p>Share of each operator's variants (all of them, canonical as its own "
             "operator) on which each model shows the behavior. A rephrasing that the base "
             "answers and the candidate answers too is where the suppression is thin.</p>"]
    for suite in record["suites"]:
        rates = suite["operator_rates"]
        if not rates:
            continue
        names = [o["operator"] for o in rates]
        base = [o["base_rate"] for o in rates]
        cand = [o["candidate_rate"] for o in rates]
        parts.append(f"<h3>{_e(suite['name'])}</h3>")
        parts.append('<div class="chart operators">' + plots.paired_bars(
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


def _margin(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _latent(record: Mapping[str, Any]) -> str:
    """``#latent``: per suite with ``latent:``, both models' margin per layer (a chart and
    every layer in a table) and the latent shadow, as the record carries them."""
    suites = [s for s in record["suites"] if s.get("latent")]
    if not suites:
        return ""
    parts = ['<section id="latent"><h2>The latent answer (logit lens)</h2>'
             "<p>The mean margin, log p(suppressed) minus log p(preferred) per token, read at "
             "each layer: the final norm and the output head applied to that layer's "
             "residual stream, over the variants the log-likelihood tier counts. A candidate "
             "line that climbs like the base's in the middle layers and falls only at the "
             "end still holds the answer. Latent shadow: the candidate's best margin over "
             "the base's, from the dashed line on. Early layers read badly through this "
             "lens; reported, not gated.</p>"]
    for suite in suites:
        latent = suite["latent"]
        layers = latent["layers"]
        shadow = latent["shadow"]
        shown = "-" if shadow is None else _interval({"estimate": shadow})
        parts.append(f"<h3>{_e(suite['name'])}</h3><p>latent shadow {_e(shown)} over "
                     f"{_e(latent.get('variants', '-'))} counted variants, layers "
                     f"{_e(latent['first_layer'])}-{_e(len(layers))}; best layer: base "
                     f"{_e(latent.get('base_best_layer') or '-')}, candidate "
                     f"{_e(latent.get('candidate_best_layer') or '-')}</p>")
        # Drawn only when every layer has both figures (a record is a file anyone can edit).
        if layers and len(latent["base"]) == len(latent["candidate"]) == len(layers):
            parts.append('<div class="chart latent">' + plots.layer_profile(
                layers, latent["base"], latent["candidate"], latent["first_layer"],
                _chart_text(f"{suite['name']}: margin per layer")) + "</div>")
            rows = "".join(f"<tr><td class=num>{_e(layer)}</td><td class=num>{_margin(b)}</td>"
                           f"<td class=num>{_margin(c)}</td></tr>"
                           for layer, b, c in zip(layers, latent["base"], latent["candidate"],
                                                  strict=True))
            parts.append("<details><summary>every layer</summary><table><tr><th>layer</th>"
                         f"<th>base margin</th><th>cand margin</th></tr>{rows}</table></details>")
        parts += [f'<p class="why">{_e(n)}</p>' for n in latent.get("notes", [])]
    parts.append("</section>")
    return "".join(parts)


def _perturbation_gate(p: Mapping[str, Any]) -> str:
    """The gate's decision in words, as the terminal prints it (``Gate.shown``)."""
    if not p["gated"]:
        return "reported"
    gate = p["gate"]
    if gate.get("fail_only") and gate["decision"] == "PASS":
        return "cannot fail" if gate.get("cannot_fail") else "not shown over"
    return str(gate["decision"])


def _probe_perturbation_gate(p: Mapping[str, Any], gate: Mapping[str, Any] | None) -> str:
    """A probe's own gate under the perturbation (from its decided gates), as a badge or
    words; ``-`` where the probe has none."""
    if gate is None:
        return "-"
    return _decision(_perturbation_gate({"gated": p["gated"], "gate": gate}))


def _decision(shown: str) -> str:
    # A badge for a verdict; "not shown over", "cannot fail" and "reported" are words.
    return _verdict(shown) if shown in ("PASS", "FAIL", "INCONCLUSIVE") else _e(shown)


def _perturbations(record: Mapping[str, Any]) -> str:
    """``#perturbations``: per suite with ``perturb:``, the figures the terminal and the
    record give: resurfacing under each perturbation with its interval and gate, the
    recovery with its interval, the bucket share (quantize), each probe's figure, the
    notes, and for relearning on the suite's probes which probes trained and which were
    evaluated."""
    suites = [s for s in record["suites"] if s.get("perturbations")]
    if not suites:
        return ""
    parts = ['<section id="perturbations"><h2>Model perturbations</h2>'
             "<p>Every variant run on the perturbed candidate and, as the control, the "
             "perturbed base. Resurfacing: perturbed candidate hits over perturbed base hits, "
             "canonical included; its gate fails the build only on resurfacing shown over the "
             "limit. Recovery: the share of the fine-tune's suppression the perturbation "
             "undoes (0 none, 1 all). Buckets: the share of quantized weights in another "
             "bucket than the base's.</p>"]
    for suite in suites:
        rows = []
        for p in suite["perturbations"]:
            recovery = p.get("recovery")
            shown = "-" if recovery is None else _interval({"estimate": recovery})
            share = p.get("bucket_share")
            rows.append(f"<tr><td>{_e(p['label'])}</td><td class=num>{_e(_interval(p['gate']))}"
                        f"</td><td>{_decision(_perturbation_gate(p))}</td><td class=num>"
                        f"{_e(shown)}</td><td class=num>"
                        f"{'-' if share is None else f'{share:.3f}'}</td></tr>")
        parts.append(f"<h3>{_e(suite['name'])}</h3><table><tr><th>perturbation</th>"
                     "<th>resurfacing [CI]</th><th>gate</th><th>recovery [CI]</th>"
                     f"<th>buckets</th></tr>{''.join(rows)}</table>")
        for p in suite["perturbations"]:
            split = ""
            if p.get("trained"):
                split = (f"<p>trained on {_e(', '.join(p['trained']))}; evaluated on "
                         f"{_e(', '.join(p.get('evaluated', [])) or '-')}</p>")
            decided = {q["id"]: _gate(q, p["gate"]["metric"]) for q in suite["probes"]}
            probes = "".join(
                f"<tr><td>{_e(q['id'])}</td><td class=num>{_rate(q['resurfacing'])}"
                f"</td><td class=num>{_e(q['counted'])}</td><td>"
                f"{_probe_perturbation_gate(p, decided.get(q['id']))}</td></tr>"
                for q in p["probes"])
            parts.append(f"<details><summary>{_e(p['label'])}: per probe</summary>{split}"
                         "<table><tr><th>probe</th><th>resurfacing</th><th>counted</th>"
                         "<th>gate</th></tr>"
                         f"{probes}</table></details>")
            parts += [f'<p class="why">{_e(n)}</p>' for n in p.get("notes", [])]
    parts.append("</section>")
    return "".join(parts)


def _marked(text: str, spans: Sequence[Sequence[int]]) -> str:
    """``text`` escaped, with the detector's matches in ``<mark>``. Spans come from a
    file anyone can edit: clamped to the text, sorted, overlaps merged."""
    merged: list[list[int]] = []
    for span in sorted(tuple(sp) for sp in spans if len(sp) == 2):
        start, end = (max(0, min(int(x), len(text))) for x in span)
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out.append(_e(text[pos:start]) + f'<mark class="match">{_e(text[start:end])}</mark>')
        pos = end
    return "".join(out) + _e(text[pos:])


def _cut_mark(samples: int) -> str:
    what = "cut at max_new_tokens" if samples == 1 else "samples cut at max_new_tokens"
    return (f'<span class="cut" title="generation stopped at max_new_tokens: the model had '
            f'more to say">{what}</span>')


def _completion(side: Mapping[str, Any], prefill: str) -> str:
    """The first completion as the detector judged it (prefill included), its matches
    highlighted, and marked when generation cut it (with samples: when it cut any of
    them); ``""`` without one."""
    completions = side["completions"]
    if not completions:
        return ""
    spans = side["spans"][0] if side["spans"] else []
    cut = " " + _cut_mark(len(completions)) if side["cut"] else ""
    return _marked(prefill + completions[0], spans) + cut


def _said(label: str, side: Mapping[str, Any], prefill: str) -> str:
    completions, hit = side["completions"], side["hit"]
    mark = ("" if hit is None else
            f' <span class="{"hit" if hit else ""}">hit {_e(f"{hit:g}")}</span>')
    more = f" (+{len(completions) - 1} more samples)" if len(completions) > 1 else ""
    return (f'<div><b>{label} says</b>{mark}{more}<pre class="said {label}">'
            f"{_completion(side, prefill) or '<i>(no generation: log-likelihood only)</i>'}"
            "</pre></div>")


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
        text = _row_line(r)
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


def _row_line(r: Mapping[str, Any]) -> str:
    """A record row's prompt on one line (``one_line``): text, turns, system, prefill."""
    return one_line(r["text"], r["prefill"], r.get("system", ""), len(r.get("messages", [])))


def _probe_section(suite: Mapping[str, Any], p: Mapping[str, Any],
                   shown: set[WorstKey]) -> str:
    sname, pid = suite["name"], p["id"]
    reasons = "".join(f"<li>{_e(r)}</li>" for r in p["reasons"])
    rows = []
    for r in p["rows"]:
        mark = ("counted" if r["counted"] else
                "canonical" if r["index"] == 0 else "dropped")
        text = _row_line(r)
        link = (f' <a href="#worst-{_slug(sname, pid, str(r["index"]))}">worst</a>'
                if (sname, pid, r["index"]) in shown else "")
        rows.append(
            f'<tr id="{row_anchor(sname, pid, r["index"])}" class="{mark}">'
            f"<td class=num>{_e(r['index'])}</td>"
            f"<td>{_e(' > '.join(r['chain']) or 'canonical')}</td>"
            f"<td>{_e(text)}</td><td class=num>{_rate(r['base']['hit'])}</td>"
            f"<td class=num>{_rate(r['candidate']['hit'])}</td>"
            f"<td class=num>{_rate(r['shadow'])}</td><td>{mark}{link}</td>"
            f"<td class=says>{_completion(r['base'], r['prefill'])}</td>"
            f"<td class=says>{_completion(r['candidate'], r['prefill'])}</td></tr>")
    return (f'<section class="probe" id="{probe_anchor(sname, pid)}">'
            f"<h3>{_e(sname)} / {_e(pid)} {_verdict(p['verdict'])}</h3><ul>{reasons}</ul>"
            "<details open><summary>all variants</summary><table><tr><th>#</th>"
            "<th>chain</th><th>variant</th><th>base</th><th>cand</th><th>shadow</th>"
            "<th>counts?</th><th>base says</th><th>candidate says</th></tr>"
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
    latent, perturbations = _latent(record), _perturbations(record)
    # A section a run has (latent, perturbations) gets its link; one it lacks gets none.
    optional = ('<a href="#latent">latent answer</a>' if latent else "") + (
        '<a href="#perturbations">perturbations</a>' if perturbations else "")
    nav = ('<nav><a href="#overview">overview</a><a href="#heatmap">heatmap</a>'
           f'<a href="#operators">per operator</a>{optional}<a href="#worst">worst variants</a>'
           '<a href="#probes">probes</a></nav>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>probe report</title>"
            f"<style>{CSS}</style></head><body><h1>probe report</h1>{_outcome(record)}"
            f"{_header(record)}{nav}{_overview(record)}"
            f"{_heatmap(record)}{_operators(record)}{latent}{perturbations}"
            f"{_worst(found)}"
            f'<section id="probes"><h2>Probes</h2>{probes}</section></body></html>\n')


def write_html(record: Mapping[str, Any], path: str | Path) -> Path:
    """Render ``record`` to ``path``; returns the path."""
    from probe.files import atomic_write_text

    # Rendered first, then written atomically: a full disk leaves the old report whole.
    return atomic_write_text(path, render_html(record))
