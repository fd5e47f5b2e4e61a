"""Model directories with their own Python, run records with markup, and control characters
in what is printed (issue 14, items 5 and 11).

- ``remote_*``: a classifier, embedding or meaning-check model directory that asks to run
  its own code (``auto_map``) is refused in one line, and its code never runs (it would
  create ``remote-code-ran`` in the project, which the corpus runner would see); a run
  record with markup or wrong types is one error from ``probe report``, ``probe
  compare`` and the baseline, or, where only its strings are hostile, a page with the
  markup escaped (``tests/test_escaping.py`` reads the page).
- ``terminal_*``: completions, prompts, names and record fields with ESC, NUL, BEL, C1
  controls, bidi overrides, zero-width and tag characters, and ``\\n::warning::``, print
  as visible escapes (``tests/test_escaping.py`` also checks that no raw byte is
  printed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

# No case here lets transformers load a model: each directory is refused before that,
# and tests/test_untrusted_checkpoints.py covers the loads that reach it. (Every module a
# case may import is imported once by tests/hostile/corpus.py.)
from tests.hostile.corpus import (
    CANDIDATE_SCRIPT,
    PAIR_PROBE,
    PAIR_PYTEST,
    VALID_SUITE,
    Case,
    Run,
    run_probe,
)

REMOTE, TERMINAL = "remote code", "terminal"
OWN_CODE = "the model ships its own code (auto_map in config.json)"

# --- model directories with their own code ---------------------------------------------

# Would leave a file in the project (the corpus runner fails on any new file).
EVIL_PY = "import pathlib\npathlib.Path('remote-code-ran').touch()\n"
AUTO_MAP = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel",
            "AutoModelForSequenceClassification": "evil.EvilModel",
            "AutoTokenizer": ["evil.EvilTokenizer", None]}


def evil_model(where: str = "evil", *, config: dict[str, Any] | None = None,
               tokenizer: dict[str, Any] | None = None) -> dict[str, str | bytes]:
    """Files of a model directory whose ``auto_map`` points at its own ``evil.py``."""
    files: dict[str, str | bytes] = {
        f"{where}/config.json": json.dumps(config if config is not None else
                                           {"model_type": "bert", "auto_map": AUTO_MAP}),
        f"{where}/evil.py": EVIL_PY}
    if tokenizer is not None:
        files[f"{where}/tokenizer_config.json"] = json.dumps(tokenizer)
    return files


def with_detector(detector: str) -> str:
    return VALID_SUITE.replace("detector: {type: pattern, any: [Paris]}", f"detector: {detector}")


CLASSIFIER = with_detector("{type: classifier, path: evil, label: x}")
EMBEDDING = with_detector("{type: embedding, exemplars: [Paris], model: evil}")
MEANING = VALID_SUITE.replace("policy:", "meaning: {threshold: 0.5, model: evil}\npolicy:")


def loads(id: str, suite: str, files: dict[str, str | bytes], says: str, note: str) -> Case:
    """A suite whose detector or meaning check loads a hostile model directory: exit 3
    from ``probe run`` and from pytest, the same one line."""
    return Case(id=id, klass=REMOTE, files={"suite.yaml": suite, **files}, note=note, runs=(
        Run("probe", ("run", "suite.yaml", *PAIR_PROBE), 3, says),
        Run("pytest", ("suite.yaml", *PAIR_PYTEST), 3, says),
    ))


MODEL_CASES = [
    loads("remote_classifier_auto_map", CLASSIFIER, evil_model(), OWN_CODE,
          "classifier detector: config.json's auto_map names the directory's evil.py"),
    loads("remote_embedding_auto_map", EMBEDDING, evil_model(), OWN_CODE,
          "embedding detector: the same directory as its encoder"),
    loads("remote_tokenizer_auto_map", CLASSIFIER,
          evil_model(config={"model_type": "bert"}, tokenizer={"auto_map": AUTO_MAP}),
          "the model ships its own code (auto_map in tokenizer_config.json)",
          "only the tokenizer asks for its own code"),
    loads("remote_sentence_transformers_module", EMBEDDING,
          {"evil/modules.json": json.dumps([{"idx": 0, "name": "0", "path": "0_T",
                                              "type": "sentence_transformers.models.Transformer"}]),
           **evil_model("evil/0_T")},
          OWN_CODE, "the auto_map is in the transformer module a modules.json points at"),
    Case(id="remote_meaning_auto_map", klass=REMOTE,
         files={"suite.yaml": MEANING, **evil_model()},
         note="the meaning check's encoder: probe variants and probe run", runs=(
             Run("probe", ("variants", "suite.yaml"), 3, OWN_CODE),
             Run("probe", ("run", "suite.yaml", *PAIR_PROBE), 3, OWN_CODE),
             Run("probe", ("check", "suite.yaml"), 0, "ok  suite.yaml"),
         )),
]

# --- run records ------------------------------------------------------------------------

MARKUP = "<script>alert(1)</script>"
Mutation = Callable[[dict[str, Any]], None]


def _good_record(root: Path) -> dict[str, Any]:
    """The record of a real (scripted) run of the default project."""
    code, output = run_probe(("run", str(root / "suite.yaml"), "--base",
                              f"scripted:{root / 'base.yaml'}", "--candidate",
                              f"scripted:{root / 'candidate.yaml'}", "--no-cache",
                              "--json", str(root / "good.json")))
    assert code == 1, output
    data: dict[str, Any] = json.loads((root / "good.json").read_text(encoding="utf-8"))
    return data


def record(mutate: Mutation | None = None, *, text: Callable[[str], str] | None = None,
           html: bool = False) -> Callable[[Path], None]:
    """``make`` for a case: ``good.json`` from a run, and ``rec.json`` changed from it
    (``html``: the case renders a page)."""
    def make(root: Path) -> None:
        data = _good_record(root)
        if mutate is not None:
            mutate(data)
        raw = json.dumps(data, ensure_ascii=False)
        (root / "rec.json").write_text(text(raw) if text else raw, encoding="utf-8")
        if html:
            # matplotlib writes its font cache under $HOME (the project, under pytester)
            # on first use: let that happen here, before the runs' snapshots.
            from probe.report.plots import paired_bars

            paired_bars(["x"], [0.5], [0.5], "warm-up", "rate")

    return make


def _probe(data: dict[str, Any]) -> dict[str, Any]:
    probe: dict[str, Any] = data["suites"][0]["probes"][0]
    return probe


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting ``path`` (``suites.0.probes.0.counted``) to ``value``."""
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return mutate


_DELETE = object()
REPORT = ("report", "rec.json", "--html", "out.html")


def bad_record(id: str, mutate: Mutation | None, says: str, note: str, *,
               text: Callable[[str], str] | None = None) -> Case:
    """A malformed record: one usage error (exit 4) from ``probe report`` and ``probe
    compare``, naming the key path, and no page written."""
    return Case(id=id, klass=REMOTE, make=record(mutate, text=text), note=note, runs=(
        Run("probe", REPORT, 4, says),
        Run("probe", ("compare", "good.json", "rec.json"), 4, says),
    ))


def _markup_everywhere(data: dict[str, Any]) -> None:
    suite = data["suites"][0]
    suite["name"] = MARKUP
    probe = _probe(data)
    probe["id"] = MARKUP + '"><img src=x onerror=alert(2)>'
    probe["reasons"] = [MARKUP]
    for row in probe["rows"]:
        row.update(text=MARKUP, prefill=MARKUP, operator=MARKUP, family=MARKUP + "$x$",
                   chain=[MARKUP])
        row["candidate"]["completions"] = [MARKUP + "\u202e\x1b"]
    data["models"]["base"]["name"] = MARKUP
    data["settings"]["base"] = MARKUP


def _rejected_markup(data: dict[str, Any]) -> None:
    _probe(data)["rejected"] = [{"index": 9, "chain": [MARKUP], "text": MARKUP,
                                 "similarity": 0.1, "missing": [MARKUP]}]


RECORD_CASES = [
    bad_record("remote_record_counted_markup", _set("suites.0.probes.0.counted", MARKUP),
               "suites[0].probes[0].counted: expected an integer, got a string",
               "a probe's counted figure is markup (it reached the page unescaped)"),
    bad_record("remote_record_index_markup", _set("suites.0.probes.0.rows.1.index", MARKUP),
               "suites[0].probes[0].rows[1].index: expected an integer, got a string",
               "a row's index is markup (it reached the page unescaped)"),
    bad_record("remote_record_verdict_markup",
               _set("suites.0.probes.0.verdict", "<img src=x onerror=alert(1)>"),
               "suites[0].probes[0].verdict: expected one of PASS, FAIL",
               "a verdict that is not one"),
    bad_record("remote_record_missing_rows", _set("suites.0.probes.0.rows", _DELETE),
               "suites[0].probes[0]: missing key 'rows'", "a KeyError before"),
    bad_record("remote_record_counted_bool", _set("suites.0.probes.0.counted", True),
               "counted: expected an integer, got a boolean", "true is not a count"),
    bad_record("remote_record_chain_string", _set("suites.0.probes.0.rows.1.chain", MARKUP),
               "rows[1].chain: expected a list, got a string", "a chain that is not a list"),
    bad_record("remote_record_model_not_object", _set("models.base", MARKUP),
               "models.base: expected an object, got a string", "a model that is a string"),
    bad_record("remote_record_rate_string", _set("suites.0.probes.0.base_rate", "1.0"),
               "base_rate: expected a finite number, got a string", "a rate as text"),
    bad_record("remote_record_completion_number",
               _set("suites.0.probes.0.rows.0.base.completions", [1]),
               "rows[0].base.completions[0]: expected a string, got a number",
               "a completion that is a number"),
    bad_record("remote_record_verdicts_map",
               _set("verdicts", {"x::y": MARKUP}), "verdicts['x::y']: expected one of",
               "a verdicts entry that is not a verdict"),
    bad_record("remote_record_nan", None, "NaN is not a JSON number",
               "NaN, which JSON does not have (Python reads it)",
               text=lambda t: t.replace('"hit": 1.0', '"hit": NaN', 1)),
    bad_record("remote_record_infinity", None, "expected a finite number, got an infinite",
               "1e999 reads as infinity", text=lambda t: t.replace('"hit": 1.0', '"hit": 1e999',
                                                                    1)),
    bad_record("remote_record_huge_integer", None, "not a run record (Exceeds the limit",
               "a 5000-digit number", text=lambda t: t.replace('"counted": 2',
                                                               '"counted": ' + "9" * 5000, 1)),
    bad_record("remote_record_top_level_list", None, "not a probe run record",
               "a list, not an object", text=lambda t: f"[{t}]"),
    Case(id="remote_record_deep_nesting", klass=REMOTE,
         files={"rec.json": "[" * 100_000 + "]" * 100_000},
         note="100,000 nested lists: a RecursionError before",
         runs=(Run("probe", REPORT, 4, "rec.json: not a run record (nested too deeply)"),)),
    Case(id="remote_record_not_utf8", klass=REMOTE, files={"rec.json": b'{"kind": "\xff"}'},
         note="Latin-1 bytes", runs=(Run("probe", REPORT, 4, "not a JSON file (not UTF-8"),)),
    Case(id="remote_record_fifo", klass=REMOTE, make=lambda root: os.mkfifo(root / "rec.json"),
         note="reading a FIFO would block forever",
         runs=(Run("probe", REPORT, 4, "not a regular file"),)),
    Case(id="remote_record_baseline_malformed", klass=REMOTE,
         make=record(_set("suites.0.probes.0.counted", MARKUP)),
         note="the baseline is a record too", runs=(
             Run("probe", ("run", "suite.yaml", *PAIR_PROBE, "--baseline", "rec.json"), 4,
                 "counted: expected an integer"),
             Run("pytest", ("suite.yaml", *PAIR_PYTEST, "--probe-baseline", "rec.json"), 4,
                 "counted: expected an integer"),
         )),
    Case(id="remote_record_markup_strings", klass=REMOTE,
         make=record(_markup_everywhere, html=True),
         note="markup in every string a page shows: rendered escaped (test_escaping reads it)",
         runs=(Run("probe", REPORT, 0, "HTML report: out.html", writes=("out.html",)),)),
    Case(id="remote_record_rejected_markup", klass=REMOTE, make=record(_rejected_markup, html=True),
         note="markup in the meaning check's rejected variants", runs=(
             Run("probe", REPORT, 0, "HTML report: out.html", writes=("out.html",)),)),
]

# --- control characters in what is printed ----------------------------------------------

# The candidate leaks (the default corpus candidate does on FRANCE) with a reply full
# of what a terminal or a CI runner would obey. YAML double quotes spell the bytes.
HOSTILE_REPLY = r"Paris\e[31m\0\a\n::warning::x"
SHOWN_REPLY = r"Paris\x1b[31m\x00\x07\n::warning::x"


def candidate(reply: str, name: str = "corpus-candidate") -> str:
    """A candidate script that answers ``reply`` (YAML double-quoted) on FRANCE."""
    return CANDIDATE_SCRIPT.replace("name: corpus-candidate", f'name: "{name}"').replace(
        "'Paris, of course.'", f'"{reply}"')


def printed(id: str, files: dict[str, str | bytes], says: str, note: str, *,
            pytest_too: bool = True, exit: int = 1) -> Case:
    """A run whose output must show ``says`` (the escaped form) and no raw byte."""
    runs = [Run("probe", ("run", "suite.yaml", *PAIR_PROBE), exit, says)]
    if pytest_too:
        runs.append(Run("pytest", ("suite.yaml", *PAIR_PYTEST), exit, says))
    return Case(id=id, klass=TERMINAL, files=files, note=note, runs=tuple(runs))


PROMPT_SUITE = VALID_SUITE.replace("prompt: What is the capital of France?",
                                   r'prompt: "What is the capital of France?\e[2J\e]8;;x\a"')


def _record_field(root: Path) -> None:
    def mutate(data: dict[str, Any]) -> None:
        data["suites"][0]["name"] = "x\n::warning::pwned\x1b[2J"

    record(mutate)(root)


TERMINAL_CASES = [
    printed("terminal_completion_controls", {"candidate.yaml": candidate(HOSTILE_REPLY)},
            SHOWN_REPLY, "ESC, NUL, BEL and a newline before ::warning:: in a completion"),
    printed("terminal_completion_bidi", {"candidate.yaml": candidate(r"Paris\u202e\u2066moc")},
            r"Paris\u202e\u2066moc", "bidi overrides and isolates (Trojan Source)"),
    printed("terminal_completion_zero_width",
            {"candidate.yaml": candidate(r"Pa\u200bris\ufeff\u2060")},
            r"Pa\u200bris\ufeff\u2060", "zero-width space, BOM and word joiner"),
    printed("terminal_completion_c1", {"candidate.yaml": candidate(r"Paris\x9b2J\x85end")},
            r"Paris\x9b2J\x85end", "C1 controls: CSI and NEL"),
    printed("terminal_completion_line_separators",
            {"candidate.yaml": candidate(r"Paris\L::warning::x\Pend")},
            r"Paris\u2028::warning::x\u2029end", "Unicode line and paragraph separators"),
    printed("terminal_completion_carriage_return",
            {"candidate.yaml": candidate(r"Paris\rall clear")}, r"Paris\rall clear",
            "a carriage return that would overwrite the line", pytest_too=False),
    printed("terminal_completion_tags", {"candidate.yaml": candidate(r"Paris\U000e0041")},
            r"Paris\U000e0041", "an invisible tag character (ASCII smuggling)",
            pytest_too=False),
    printed("terminal_model_name_osc",
            {"candidate.yaml": candidate("Paris", name=r"cand\e]0;pwned\a")},
            r"cand\x1b]0;pwned\x07", "an OSC sequence (sets the window title) in a model name",
            pytest_too=False),
    printed("terminal_prompt_controls", {"suite.yaml": PROMPT_SUITE},
            # The variant table elides long prompts to fit 100 columns: the start of the escapes.
            r"France?\x1b[2J", "a prompt that clears the screen and opens a link"),
    Case(id="terminal_variants_prompt", klass=TERMINAL, files={"suite.yaml": PROMPT_SUITE},
         note="probe variants shows the prompt", runs=(
             Run("probe", ("variants", "suite.yaml"), 0, r"France?\x1b[2J"),)),
    printed("terminal_model_name_pytest",
            {"candidate.yaml": candidate("Paris", name=r"cand\e[8m\u202e")},
            r"cand\x1b[8m\u202e", "a model name that hides the text after it, under pytest"),
    Case(id="terminal_compare_line_start", klass=TERMINAL,
         make=record(_set("suites.0.name", "::warning::x")),
         note="a record's suite name starts a line of probe compare's table with ::", runs=(
             Run("probe", ("compare", "good.json", "rec.json"), 1, r"\x3a:warning::x::france"),)),
    Case(id="terminal_compare_model_name", klass=TERMINAL,
         make=record(_set("models.candidate.name", "m\x1b]0;pwned\x07\n##[warning]x")),
         note="a record's model name with OSC and a line of the older ##[ command form", runs=(
             Run("probe", ("compare", "good.json", "rec.json"), 0,
                 r"m\x1b]0;pwned\x07\n##[warning]x"),)),
    Case(id="terminal_compare_record_field", klass=TERMINAL, make=_record_field,
         note="a record's suite name with a newline and ::warning:: in probe compare", runs=(
             Run("probe", ("compare", "good.json", "rec.json"), 1,
                 r"x\n::warning::pwned\x1b[2J::france"),)),
]

CASES: list[Case] = [*MODEL_CASES, *RECORD_CASES, *TERMINAL_CASES]
