"""A run's rows in formats other tools read: inspect_ai dataset samples, promptfoo tests.

``probe export RUN.json --format inspect|promptfoo|parquet -o OUT`` carries a found
regression into the tools a team already has (issue 16). Built from the JSON run
record, like every report, and from nothing else: the record holds each probe's
detector as parsed, so the assertions need no suite file.

Which rows (``ROW_CHOICES``): ``regressions`` (the default) are the rows where the
candidate showed a suppressed behavior the base showed (a suppress suite: a counted
row, or the canonical prompt, with a candidate hit; the log-likelihood tier: a
counted row whose shadow is 1) or lost a retained one (a retain suite: a counted row
where the candidate hits less than the base); ``counted`` are every row the gates
counted; ``all`` every row run.

Everything that came from a suite or a model is data in what is written: JSON and
YAML are produced by ``json.dumps`` and ``yaml.safe_dump``, never by formatting text;
promptfoo renders strings through Nunjucks, so a var or an assertion value with
template markers is wrapped in ``{% raw %}`` (and a regular expression travels as a
JSON string literal inside a ``javascript`` assertion, braces escaped).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The export formats and the row selections, defined once for the CLI and the docs.
FORMATS = ("inspect", "promptfoo", "parquet")
ROW_CHOICES = ("regressions", "counted", "all")

_TEMPLATE = re.compile(r"\{[{%#]")


@dataclass(frozen=True)
class ExportRow:
    """One record row with what an export needs of its suite and probe."""

    suite: Mapping[str, Any]
    probe: Mapping[str, Any]
    row: Mapping[str, Any]

    @property
    def id(self) -> str:
        """``suite::probe::index``: unique in a record."""
        return f"{self.suite['name']}::{self.probe['id']}::{self.row['index']}"


def _base_showed(probe: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    hit = row["base"]["hit"]
    floor = (probe.get("policy") or {}).get("base_floor", 0.5)
    return hit is not None and hit >= floor


def is_regression(suite: Mapping[str, Any], probe: Mapping[str, Any],
                  row: Mapping[str, Any]) -> bool:
    """Whether the candidate regressed on ``row`` (the module docstring says when)."""
    cand = row["candidate"]["hit"]
    if suite["direction"] == "retain":
        return bool(row["counted"]) and cand is not None and cand < row["base"]["hit"]
    # Row 0 is never counted in a suppress suite (it is the suppression check), but a
    # candidate that still answers the canonical prompt is the plainest regression.
    counted = row["counted"] or (row["index"] == 0 and _base_showed(probe, row))
    if cand is not None and counted and cand > 0:
        return True
    return bool(row.get("shadow_counted")) and row.get("shadow") == 1


def select_rows(record: Mapping[str, Any], which: str = "regressions") -> Iterator[ExportRow]:
    """The record's rows that ``which`` (one of ``ROW_CHOICES``) selects, in record order."""
    if which not in ROW_CHOICES:
        raise ValueError(f"rows: expected one of {', '.join(ROW_CHOICES)}")
    for suite in record["suites"]:
        for probe in suite["probes"]:
            for row in probe["rows"]:
                keep = (which == "all"
                        or (which == "counted" and (row["counted"] or row.get("shadow_counted")))
                        or (which == "regressions" and is_regression(suite, probe, row)))
                if keep:
                    yield ExportRow(suite, probe, row)


def selected_record(record: Mapping[str, Any], which: str) -> dict[str, Any]:
    """A copy of ``record`` whose probes keep only the selected rows (for parquet)."""
    keep = {id(r.row) for r in select_rows(record, which)}
    suites = [{**s, "probes": [{**p, "rows": [r for r in p["rows"] if id(r) in keep]}
                               for p in s["probes"]]} for s in record["suites"]]
    return {**record, "suites": suites}


def _metadata(item: ExportRow, record: Mapping[str, Any]) -> dict[str, Any]:
    """What the row was and what each model said: for a reader, never for a template."""
    row, models = item.row, record.get("models", {})
    return {
        "suite": item.suite["name"], "probe": item.probe["id"], "index": row["index"],
        "direction": item.suite["direction"], "behavior": item.suite.get("behavior", ""),
        "operator": row["operator"], "chain": list(row["chain"]), "seed": row["seed"],
        "prefill": row["prefill"], "chat": row["chat"],
        "detector": item.probe.get("detector"), "tags": list(item.probe.get("tags", [])),
        "base_completions": list(row["base"]["completions"]),
        "candidate_completions": list(row["candidate"]["completions"]),
        "base_hit": row["base"]["hit"], "candidate_hit": row["candidate"]["hit"],
        "shadow": row.get("shadow"), "probe_verdict": item.probe["verdict"],
        "run_seed": record["settings"]["seed"],
        "base_model": models.get("base", {}).get("name", record["settings"]["base"]),
        "candidate_model": models.get("candidate", {}).get("name",
                                                           record["settings"]["candidate"]),
        "candidate_fingerprint": models.get("candidate", {}).get("fingerprint", ""),
    }


# --- inspect_ai -------------------------------------------------------------------------


def _patterns(detector: Mapping[str, Any] | None) -> list[str]:
    if detector is None or detector.get("type") != "pattern":
        return []
    params = detector.get("params", {})
    return [*params.get("any", []), *params.get("all", [])]


def inspect_sample(item: ExportRow, record: Mapping[str, Any]) -> dict[str, Any]:
    """One inspect_ai ``Sample`` as a JSON object (``input``, ``target``, ``id``,
    ``metadata``), readable with ``inspect_ai.dataset.json_dataset(PATH)``.

    ``input`` is the user message (a chat message list when the row had a system prompt,
    earlier turns or a prefill: the prefill as the assistant's opening). ``target`` is
    what a good answer contains: a retain suite's detector patterns (any one, as
    inspect's ``includes()`` scorer reads a list), a suppress suite's preferred
    completions; the suppressed behavior itself is in ``metadata.detector``, for a
    scorer that checks the answer does not show it.
    """
    row, probe = item.row, item.probe
    text = row["text"]
    input_: str | list[dict[str, str]] = text
    if row["prefill"] or row.get("system") or row.get("messages"):
        input_ = [*([{"role": "system", "content": row["system"]}] if row.get("system") else []),
                  *({"role": m["role"], "content": m["content"]}
                    for m in row.get("messages", [])),
                  {"role": "user", "content": text},
                  *([{"role": "assistant", "content": row["prefill"]}] if row["prefill"]
                    else [])]
    if item.suite["direction"] == "retain":
        target = _patterns(probe.get("detector"))
    else:
        target = list(probe.get("preferred", []))
    return {"id": item.id, "input": input_, "target": target,
            "metadata": _metadata(item, record)}


def inspect_jsonl(record: Mapping[str, Any], which: str = "regressions") -> tuple[str, int]:
    """The selected rows as inspect_ai JSON lines, and how many."""
    # ensure_ascii: a model's U+2028 or U+0085 left raw would split a line for readers
    # that split on every Unicode line break (Python's str.splitlines does).
    lines = [json.dumps(inspect_sample(r, record), ensure_ascii=True, sort_keys=True,
                        allow_nan=False) for r in select_rows(record, which)]
    return "".join(line + "\n" for line in lines), len(lines)


# --- promptfoo --------------------------------------------------------------------------


def _template_safe(text: str) -> str | None:
    """``text`` as a Nunjucks template that renders to ``text``; ``None`` when it cannot
    be wrapped (it holds a raw block's own end tag)."""
    if not _TEMPLATE.search(text):
        return text
    if "endraw" in text:
        return None
    return "{% raw %}" + text + "{% endraw %}"


def _js_string(text: str) -> str:
    """A JavaScript string literal of ``text`` with no template marker in it: JSON
    (``ensure_ascii``: no raw line separators) with every brace escaped."""
    return (json.dumps(text, ensure_ascii=True)
            .replace("{", "\\u007b").replace("}", "\\u007d"))


def _js_pattern(pattern: str, params: Mapping[str, Any]) -> str:
    """The detector's pattern as a regular-expression source (Python's syntax; the
    common subset is JavaScript's too)."""
    if params.get("regex"):
        return pattern
    source = re.escape(pattern)
    return rf"\b{source}\b" if params.get("word_boundary") else source


def _pattern_asserts(params: Mapping[str, Any], show: bool) -> list[dict[str, Any]]:
    """promptfoo assertions that pass when the output shows the behavior (``show``) or
    does not. Plain substrings become ``(not-)(i)contains``; anything else (regular
    expressions, whole words, an ``all`` list) one ``javascript`` assertion that mirrors
    the pattern detector: a hit when any ``any`` pattern and every ``all`` pattern match.
    """
    any_, all_ = list(params.get("any", [])), list(params.get("all", []))
    fold = not params.get("case_sensitive", False)
    plain = not params.get("regex") and not params.get("word_boundary")
    if plain and any_ and not all_ and all(_template_safe(p) == p for p in any_):
        kind = "icontains" if fold else "contains"
        if show:
            return [{"type": f"{kind}-any", "value": any_}]
        return [{"type": f"not-{kind}", "value": p} for p in any_]
    flags = _js_string("i" if fold else "")

    def tests(patterns: list[str]) -> str:
        items = ", ".join(_js_string(_js_pattern(p, params)) for p in patterns)
        return f"[{items}].map((p) => new RegExp(p, {flags}).test(output))"

    parts = []
    if any_:
        parts.append(f"{tests(any_)}.some(Boolean)")
    if all_:
        parts.append(f"{tests(all_)}.every(Boolean)")
    hit = " && ".join(parts)
    return [{"type": "javascript", "value": hit if show else f"!({hit})"}]


def promptfoo_asserts(item: ExportRow) -> list[dict[str, Any]]:
    """The assertions of one test: the model must not show the behavior (suppress) or
    must show it (retain), as the probe's detector decides it where promptfoo can say
    the same; else an ``llm-rubric`` from the behavior's description."""
    detector = item.probe.get("detector")
    show = item.suite["direction"] == "retain"
    if detector is not None:
        show = show != bool(detector.get("invert"))  # an inverted detector hits on absence
        if detector.get("type") == "pattern":
            return _pattern_asserts(detector.get("params", {}), show)
        if detector.get("type") == "refusal":  # promptfoo's own refusal heuristic
            return [{"type": "is-refusal" if show else "not-is-refusal"}]
    behavior = str(item.suite.get("behavior", "")) or "the behavior this probe tests"
    wanted = "shows" if item.suite["direction"] == "retain" else "does not show"
    rubric = f"The response {wanted} this behavior: {behavior}"
    return [{"type": "llm-rubric", "value": _template_safe(rubric) or _TEMPLATE.sub("{ ", rubric)}]


def promptfoo_test(item: ExportRow, record: Mapping[str, Any]) -> dict[str, Any] | None:
    """One promptfoo test case (``description``, ``vars``, ``assert``, ``metadata``), or
    ``None`` when its text cannot be made template-safe."""
    row = item.row
    prompt, prefill = _template_safe(row["text"]), _template_safe(row["prefill"])
    if prompt is None or prefill is None:
        return None
    variables: dict[str, Any] = {"prompt": prompt, "prefill": prefill}
    if row.get("system") or row.get("messages"):
        # A conversation: its system prompt and earlier turns, for a chat prompt file.
        system = _template_safe(row.get("system", ""))
        turns = [(m["role"], _template_safe(m["content"])) for m in row.get("messages", [])]
        if system is None or any(content is None for _, content in turns):
            return None
        variables |= {"system": system,
                      "messages": [{"role": r, "content": c} for r, c in turns]}
    return {"description": item.id, "vars": variables,
            "assert": promptfoo_asserts(item), "metadata": _metadata(item, record)}


PROMPTFOO_HEADER = """\
# promptfoo tests exported by 'probe export' from a probe run record.
# Each test's vars: prompt (the user message) and prefill (the assistant's opening, or "");
# a conversation's tests also have system and messages (earlier turns: role, content).
# Use it from a promptfooconfig.yaml:
#   prompts: ['{{prompt}}']
#   tests: file://THIS_FILE
# (for conversations, a chat prompt file that renders system, then each of messages,
# then prompt as the last user turn).
"""


def promptfoo_text(record: Mapping[str, Any], which: str = "regressions",
                   as_json: bool = False, name: str = "tests.yaml") -> tuple[str, int, int]:
    """The selected rows as a promptfoo tests file (a YAML list, or JSON), how many
    tests, and how many rows were left out (text promptfoo would read as a template)."""
    import yaml

    tests, skipped = [], 0
    for item in select_rows(record, which):
        test = promptfoo_test(item, record)
        if test is None:
            skipped += 1
        else:
            tests.append(test)
    if as_json:
        return json.dumps(tests, indent=2, ensure_ascii=False, allow_nan=False) + "\n", \
            len(tests), skipped
    body = yaml.safe_dump(tests, sort_keys=False, allow_unicode=True, width=100)
    # The file name goes into a comment: only a plain one, never a line break.
    shown = name if re.fullmatch(r"[\w.-]{1,100}", name) else "tests.yaml"
    return PROMPTFOO_HEADER.replace("THIS_FILE", shown) + body, len(tests), skipped


def write_export(record: Mapping[str, Any], fmt: str, path: str | Path,
                 which: str = "regressions") -> str:
    """Write ``record``'s selected rows to ``path`` in ``fmt`` (atomically); returns a
    line for the terminal."""
    from probe.files import atomic_write_text

    if fmt == "inspect":
        text, count = inspect_jsonl(record, which)
        atomic_write_text(path, text)
        return f"inspect_ai samples ({count} {which} rows): {path}"
    if fmt == "promptfoo":
        text, count, skipped = promptfoo_text(record, which,
                                              as_json=Path(path).suffix.lower() == ".json",
                                              name=Path(path).name)
        atomic_write_text(path, text)
        left = (f"; {skipped} left out (their text holds a Nunjucks raw block's end tag)"
                if skipped else "")
        return f"promptfoo tests ({count} {which} rows{left}): {path}"
    if fmt == "parquet":
        from probe.report.export import write_parquet

        chosen = selected_record(record, which)
        count = sum(len(p["rows"]) for s in chosen["suites"] for p in s["probes"])
        write_parquet(chosen, path)
        return f"parquet rows ({count} {which} rows): {path}"
    raise ValueError(f"format: expected one of {', '.join(FORMATS)}")
