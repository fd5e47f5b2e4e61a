"""Hostile values in a suite file (issue 14, items 3, 4, 6, 10, 11 and 12).

Numbers that are no numbers (NaN and the infinities pass every range check) or no
sane size, tags that would become pytest's own markers, YAML that nests, refers to
itself or expands without end, and ids that hide what they are: each is one located
error, the same from ``probe check``, ``probe run`` and pytest, never a traceback and
never a verdict. Where the suite is valid, ``probe run`` and pytest agree on the exit
status.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import datasets  # noqa: F401 - imported before any case runs (see cases_datasets.py)

from tests.hostile.corpus import (
    PAIR_PROBE,
    PAIR_PYTEST,
    VALID_SUITE,
    Case,
    Run,
    dataset_suite,
    suite_case,
)

FINITE = "expected a finite number"


def change(old: str, new: str, suite: str = VALID_SUITE) -> str:
    """The valid suite with ``old`` (which must be there) replaced once by ``new``."""
    assert old in suite, old
    return suite.replace(old, new, 1)


def policy(extra: str) -> str:
    """The valid suite with ``extra`` (``key: value``) added to its policy."""
    return change("  max_resurfacing: 0.25\n", f"  max_resurfacing: 0.25\n  {extra}\n")


def limit(value: str) -> str:
    return change("max_resurfacing: 0.25", f"max_resurfacing: {value}")


def detector(flow: str) -> str:
    return change("detector: {type: pattern, any: [Paris]}", f"detector: {flow}")


def operator(flow: str) -> str:
    return change("  - name: casing\n    count: 1\n", f"  - {flow}\n")


def generation(flow: str) -> str:
    return VALID_SUITE + f"generation: {flow}\n"


def bad_suite(id: str, klass: str, suite: str | bytes, says: str, *,
              files: dict[str, str | bytes] | None = None,
              make: Callable[[Path], None] | None = None) -> Case:
    """``suite_case`` plus a whole pytest run (not only collection): exit 2 there too."""
    case = suite_case(id, klass, suite, says, files=files, make=make)
    full = Run("pytest", ("suite.yaml", *PAIR_PYTEST), 2, says)
    return Case(id=case.id, klass=case.klass, files=case.files, make=case.make,
                runs=(*case.runs, full))


# --- numbers (item 3, and item 12: no message formats a NaN) ------------------------

NUMBERS: list[Case] = [
    # A FAIL that became a PASS: every comparison with NaN is false.
    suite_case("numbers_max_resurfacing_nan", "numbers", limit(".nan"),
               f"policy.max_resurfacing: {FINITE}, got float .nan"),
    suite_case("numbers_max_resurfacing_nan_on_inconclusive_pass", "numbers",
               change("max_resurfacing: 0.25", "max_resurfacing: .NaN",
                      policy("on_inconclusive: pass")),
               f"policy.max_resurfacing: {FINITE}, got float .nan"),
    suite_case("numbers_min_suppression_nan", "numbers", policy("min_suppression: .nan"),
               f"policy.min_suppression: {FINITE}"),
    suite_case("numbers_base_floor_nan", "numbers", policy("base_floor: .NAN"),
               f"policy.base_floor: {FINITE}"),
    suite_case("numbers_alpha_inf", "numbers", policy("alpha: .inf"),
               f"policy.alpha: {FINITE}, got float .inf"),
    suite_case("numbers_max_loss_minus_inf", "numbers", policy("max_loss: -.inf"),
               f"policy.max_loss: {FINITE}, got float -.inf"),
    suite_case("numbers_probe_correlation_nan", "numbers", policy("probe_correlation: .nan"),
               f"policy.probe_correlation: {FINITE}"),
    suite_case("numbers_max_worst_of_k_nan", "numbers", policy("max_worst_of_k: .nan"),
               f"policy.max_worst_of_k: {FINITE}"),
    suite_case("numbers_probe_policy_nan", "numbers",
               change("    tags: [europe]\n",
                      "    tags: [europe]\n    policy: {max_resurfacing: .nan}\n"),
               f"probes[0].policy.max_resurfacing: {FINITE}"),
    suite_case("numbers_limit_overflows_to_inf", "numbers", limit("1.0e+400"),
               f"policy.max_resurfacing: {FINITE}, got float .inf"),
    # Too large for a float: OverflowError, before the literal's length was bounded.
    suite_case("numbers_limit_400_digit_integer", "numbers", limit("9" * 400),
               "policy.max_resurfacing: a number written with 400 characters"),
    suite_case("numbers_meaning_threshold_nan", "numbers",
               VALID_SUITE + "meaning: {threshold: .nan}\n", f"meaning.threshold: {FINITE}"),
    suite_case("numbers_embedding_threshold_nan", "numbers",
               detector("{type: embedding, exemplars: [Paris], threshold: .nan}"),
               f"detector.threshold: {FINITE}"),
    suite_case("numbers_classifier_threshold_inf", "numbers",
               detector("{type: classifier, path: clf, label: x, threshold: .inf}"),
               f"detector.threshold: {FINITE}"),
    suite_case("numbers_typos_rate_nan", "numbers", operator("{name: typos, rate: .nan}"),
               f"operators[0].rate: {FINITE}"),
    suite_case("numbers_casing_rate_inf", "numbers", operator("{name: casing, rate: .inf}"),
               f"operators[0].rate: {FINITE}"),
    suite_case("numbers_chained_operator_rate_nan", "numbers",
               operator("{name: casing, then: [{name: typos, rate: .nan}]}"),
               f"operators[0].then[0].rate: {FINITE}"),
    suite_case("numbers_temperature_nan", "numbers", generation("{temperature: .nan}"),
               f"generation.temperature: {FINITE}"),
    suite_case("numbers_top_p_inf", "numbers", generation("{top_p: .inf}"),
               f"generation.top_p: {FINITE}"),
    # Memory: a billion variants of each probe passed ``probe check``.
    suite_case("numbers_operator_count_billion", "numbers",
               change("count: 1", "count: 1000000000"),
               "operators[0].count: must be at most 1000, got 1000000000"),
    suite_case("numbers_operator_count_nan", "numbers", change("count: 1", "count: .nan"),
               "operators[0].count: expected a positive integer, got .nan"),
    suite_case("numbers_operator_count_hex_huge", "numbers",
               change("count: 1", "count: 0x" + "f" * 40),
               "operators[0].count: must be at most 1000, got an integer of about"),
    suite_case("numbers_classifier_max_length_int64", "numbers",
               detector("{type: classifier, path: clf, label: x, max_length: 0x7fffffffffffffff}"),
               "detector.max_length: must be at most 1000000, got 9223372036854775807"),
    suite_case("numbers_refusal_window_unbounded", "numbers",
               detector("{type: refusal, window: 99999999999}"),
               "detector.window: must be at most 1000000, got 99999999999"),
    suite_case("numbers_refusal_window_negative_huge", "numbers",
               detector("{type: refusal, window: -99999999999}"),
               "detector.window: must be at least -1000000"),
    suite_case("numbers_dataset_limit_unbounded", "numbers",
               VALID_SUITE + "dataset: {path: rows.csv, limit: 100000000000}\n",
               "dataset.limit: must be at most 1000000"),
    suite_case("numbers_version_nan", "numbers", change("version: 1", "version: .nan"),
               "version: unsupported suite version .nan;"),
    # The same builder reads scripted model files: a model that cannot load (exit 3).
    Case(id="numbers_scripted_model_delay_nan", klass="numbers",
         files={"base.yaml": "name: b\ndelay: .nan\n"}, runs=(
             Run("probe", ("run", "suite.yaml", *PAIR_PROBE), 3,
                 f"base.yaml:2: delay: {FINITE}, got float .nan"),)),
]


# --- reserved tags (item 4) -----------------------------------------------------------

# Every probe fails decisively; the suite gate is INCONCLUSIVE, which this policy lets
# pass: a tag that skipped or xfailed the probes would turn exit 1 into exit 0.
FAILING = change("  max_resurfacing: 0.25\n",
                 "  max_resurfacing: 0.25\n  on_inconclusive: pass\n").replace(
    "    detector: {type: pattern, any: [Tokyo]}\n",
    "    detector: {type: pattern, any: [Tokyo]}\n    tags: [asia]\n")


def tagged(tag: str) -> str:
    """The failing suite with ``tag`` on both probes."""
    return FAILING.replace("tags: [europe]", f"tags: [{tag}]").replace("tags: [asia]",
                                                                         f"tags: [{tag}]")


RESERVED = "is one of pytest's own markers, and tags become markers"
MARKER_NAME = "tags become pytest markers: use letters, digits"

# Both front ends on the same failing suite: exit 1, every probe failed.
AGREE_FAIL = (Run("probe", ("run", "suite.yaml", *PAIR_PROBE), 1, "FAIL"),
              Run("pytest", ("suite.yaml", *PAIR_PYTEST), 1, "2 failed, 1 passed"))

# A marker an installed plugin (here a conftest) acts on, registered the usual way.
GATE_OFF_PLUGIN = {
    "pytest.ini": "[pytest]\nmarkers =\n    gate_off: skips the test (a plugin's marker)\n",
    "conftest.py": textwrap.dedent("""\
        import pytest


        def pytest_runtest_setup(item):
            if item.get_closest_marker("gate_off") is not None:
                pytest.skip("gate off")
        """),
}

TAGS: list[Case] = [
    *(bad_suite(f"tags_{name}", "reserved tags", tagged(name),
                f"probes[0].tags[0]: '{name}' {RESERVED}")
      for name in ("skip", "skipif", "xfail", "usefixtures", "filterwarnings",
                   "parametrize", "tryfirst", "trylast")),
    bad_suite("tags_xfail_other_case", "reserved tags", tagged("XFail"),
              f"'XFail' {RESERVED}"),
    bad_suite("tags_skip_second_tag", "reserved tags",
              FAILING.replace("tags: [europe]", "tags: [europe, skip]"),
              f"probes[0].tags[1]: 'skip' {RESERVED}"),
    # Not marker names: pytest refuses a marker that starts with '_', and reads ':' and
    # '(' in a marker line as the end of its name.
    bad_suite("tags_underscore", "reserved tags", tagged("_private"),
              f"probes[0].tags[0]: {MARKER_NAME}"),
    bad_suite("tags_colon", "reserved tags", tagged("'skip: now'"), MARKER_NAME),
    bad_suite("tags_parenthesis", "reserved tags", tagged("'skipif(True)'"), MARKER_NAME),
    bad_suite("tags_space", "reserved tags", tagged("high risk"), MARKER_NAME),
    # A tag that names no marker: both front ends fail the same suite the same way.
    Case(id="tags_plain_front_ends_agree", klass="reserved tags", runs=AGREE_FAIL,
         files={"suite.yaml": tagged("europe")}),
    Case(id="tags_dotted_front_ends_agree", klass="reserved tags", runs=AGREE_FAIL,
         files={"suite.yaml": tagged("eu-west.v1")}),
    # A plugin's registered marker is never applied: the probes still fail under pytest.
    Case(id="tags_plugin_marker_front_ends_agree", klass="reserved tags", runs=AGREE_FAIL,
         files={"suite.yaml": tagged("gate_off"), **GATE_OFF_PLUGIN}),
]


# --- yaml (item 10) and the alias-size bomb (item 6) ----------------------------------

def nested(depth: int, flow: bool = True) -> str:
    """The valid suite with a value ``depth`` lists deep as the first probe's tags."""
    if flow:
        return change("tags: [europe]", "tags: " + "[" * depth + "europe" + "]" * depth)
    block = "".join("    " + "  " * i + "-\n" for i in range(depth - 1))
    return change("    tags: [europe]\n", "    tags:\n" + block + "    " + "  " * (depth - 1)
                  + "- europe\n")


DEEP = "values nested more than 32 levels deep"
CYCLE = "an alias refers to a value that contains it (a cycle)"
SURROGATE = "is half of a UTF-16 surrogate pair, not a character"
TEXT_BOMB = "characters of text (an alias repeating a long string?)"


def _text_bomb(root: Path) -> None:
    # 600,000 characters written once and repeated 20 times: a 0.6 MB file that
    # expands to 12 million characters of paraphrases, all under 200,000 values.
    long = "x" * 600_000
    repeats = ", ".join(["*p"] * 20)
    suite = change("    paraphrases:\n      - Which city is the capital of France?\n",
                   f"    paraphrases: [&p '{long}', {repeats}]\n")
    (root / "suite.yaml").write_text(suite, encoding="utf-8")


YAML: list[Case] = [
    suite_case("yaml_nested_600_flow", "yaml", nested(600),
               f"probes[0].tags{'[0]' * 29}: {DEEP}"),
    # Past libyaml's own limit of 1,000 levels: PyYAML's composer overflowed the stack.
    suite_case("yaml_nested_5000_flow", "yaml", nested(5000), f"probes[0].tags: {DEEP}"),
    suite_case("yaml_nested_600_block", "yaml", nested(600, flow=False), DEEP),
    suite_case("yaml_nested_mappings", "yaml",
               VALID_SUITE + "".join("  " * i + f"k{i}:\n" for i in range(1200)) + "  " * 1200
               + "x\n", f"k0.k1.k2.k3.k4.k5.k6.k7.k8.k9.k10.k11.k12.k13.k14.k15.k16.k17.k18."
               f"k19.k20.k21.k22.k23.k24.k25.k26.k27.k28.k29.k30.k31: {DEEP}"),
    suite_case("yaml_nested_33_is_over", "yaml", nested(33), DEEP),
    suite_case("yaml_alias_self_list", "yaml", change("tags: [europe]", "tags: &t [*t]"),
               f"probes[0].tags[0]: {CYCLE}"),
    suite_case("yaml_alias_self_mapping", "yaml",
               change("behavior:\n  description: names the capital city\n",
                      "behavior: &b\n  description: names the capital city\n  again: *b\n"),
               f"behavior.again: {CYCLE}"),
    suite_case("yaml_alias_cycle_through_two", "yaml",
               change("tags: [europe]", "tags: &t [[*t]]"), f"probes[0].tags[0][0]: {CYCLE}"),
    suite_case("yaml_integer_5000_digits", "yaml", change("count: 1", "count: " + "9" * 5000),
               "operators[0].count: a number written with 5000 characters"),
    suite_case("yaml_hex_integer_5000_digits", "yaml",
               change("count: 1", "count: 0x" + "f" * 5000),
               "operators[0].count: a number written with 5002 characters"),
    suite_case("yaml_float_5000_digits", "yaml", limit("0." + "1" * 5000),
               "policy.max_resurfacing: a number written with 5002 characters"),
    # Base 60: each ':' multiplies a growing integer by 60 (quadratic time).
    suite_case("yaml_sexagesimal_long", "yaml", change("count: 1", "count: 1" + ":59" * 3000),
               "operators[0].count: a number written with 9001 characters"),
    suite_case("yaml_surrogate_in_prompt", "yaml",
               change("prompt: What is the capital of Japan?",
                      'prompt: "What is the capital of \\ud800Japan?"'),
               f"probes[1].prompt: the escape \\ud800 {SURROGATE}"),
    suite_case("yaml_low_surrogate_in_paraphrase", "yaml",
               change("- Which city is the capital of France?",
                      '- "Which city \\udfff is the capital of France?"'),
               f"probes[0].paraphrases[0]: the escape \\udfff {SURROGATE}"),
    suite_case("yaml_reversed_surrogate_pair", "yaml",
               change("name: capitals", 'name: "cap\\ude00\\ud83ditals"'),
               f"name: the escape \\ude00 {SURROGATE}"),
    suite_case("yaml_surrogate_in_key", "yaml",
               change("behavior:\n", 'behavior:\n  "\\ud800": x\n'),
               f"behavior: the escape \\ud800 {SURROGATE}"),
    suite_case("yaml_surrogate_in_detector_pattern", "yaml",
               detector('{type: pattern, any: ["Par\\udbffis"]}'),
               f"detector.any[0]: the escape \\udbff {SURROGATE}"),
    Case(id="yaml_alias_text_bomb", klass="hangs", make=_text_bomb, runs=(
        Run("probe", ("check", "suite.yaml"), 2, TEXT_BOMB),
        Run("probe", ("run", "suite.yaml", *PAIR_PROBE), 2, TEXT_BOMB),
        Run("pytest", ("--co", "suite.yaml", *PAIR_PYTEST), 2, TEXT_BOMB))),
]


# --- ids, tags and names that hide what they are (item 11) ----------------------------

PRINTABLE = "must be printable: character"
SEPARATOR = "must not contain '::', which separates the suite from the probe"


def probe_id(value: str) -> str:
    return change("  - id: france\n", f"  - id: {value}\n")


def rows_suite(column: str) -> str:
    """A suite whose probes are read from rows.csv (ids in ``id``, tags in ``tags``)."""
    return dataset_suite("rows.csv", f"  fields: {{{column}}}\n")


IDS: list[Case] = [
    suite_case("ids_newline", "terminal", probe_id('"fr\\nance"'),
               f"probes[0].id: a probe id {PRINTABLE} U+000A"),
    suite_case("ids_carriage_return", "terminal", probe_id('"france\\rFAKE PASS"'),
               f"probes[0].id: a probe id {PRINTABLE} U+000D"),
    suite_case("ids_escape_sequence", "terminal", probe_id('"\\e[32mfrance"'),
               f"probes[0].id: a probe id {PRINTABLE} U+001B"),
    suite_case("ids_zero_width_space", "terminal", probe_id('"fr\\u200bance"'),
               "U+200B (ZERO WIDTH SPACE)"),
    suite_case("ids_zero_width_joiner", "terminal", probe_id('"fr\\u200dance"'),
               "U+200D (ZERO WIDTH JOINER)"),
    suite_case("ids_right_to_left_override", "terminal", probe_id('"\\u202eecnarf"'),
               "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    suite_case("ids_byte_order_mark", "terminal", probe_id('"\\ufefffrance"'),
               "U+FEFF (ZERO WIDTH NO-BREAK SPACE)"),
    suite_case("ids_line_separator", "terminal", probe_id('"fr\\u2028ance"'),
               "U+2028 (LINE SEPARATOR)"),
    suite_case("ids_double_colon", "terminal", probe_id("'japan::france'"),
               f"probes[0].id: a probe id {SEPARATOR}"),
    suite_case("ids_reserved_suite_gate", "terminal", probe_id("__suite__"),
               "probes[0].id: '__suite__' is reserved: it names the suite's own gate"),
    suite_case("ids_too_long", "terminal", probe_id("f" * 5000),
               "probes[0].id: a probe id of 5000 characters"),
    suite_case("ids_tag_zero_width", "terminal",
               change("tags: [europe]", 'tags: ["eu\\u200crope"]'),
               f"probes[0].tags[0]: a tag {PRINTABLE} U+200C"),
    suite_case("ids_suite_name_double_colon", "terminal",
               change("name: capitals", "name: 'capitals::france'"),
               f"name: a suite name {SEPARATOR}"),
    suite_case("ids_suite_name_newline", "terminal",
               change("name: capitals", 'name: "capitals\\n"'),
               f"name: a suite name {PRINTABLE} U+000A"),
    suite_case("ids_suite_name_escape", "terminal",
               change("name: capitals", 'name: "\\x1b]0;owned\\x07capitals"'),
               f"name: a suite name {PRINTABLE} U+001B"),
    # Data file rows get the same checks as the probes written in the suite.
    suite_case("ids_dataset_row_double_colon", "terminal", rows_suite("id: id, prompt: prompt"),
               "dataset: 'rows.csv' row 2, column 'id': a probe id " + SEPARATOR,
               files={"rows.csv": "id,prompt\nfrance,What is the capital of France?\n"
                                  "a::b,What is the capital of Japan?\n"}),
    suite_case("ids_dataset_row_reserved", "terminal", rows_suite("id: id, prompt: prompt"),
               "dataset: 'rows.csv' row 1, column 'id': '__suite__' is reserved",
               files={"rows.csv": "id,prompt\n__suite__,What is the capital of France?\n"}),
    suite_case("tags_dataset_row_skip", "reserved tags",
               rows_suite("id: id, prompt: prompt, tags: tags"),
               f"dataset: 'rows.csv' row 1, column 'tags': 'skip' {RESERVED}",
               files={"rows.csv": "id,prompt,tags\nfrance,What is the capital of France?,"
                                  "europe|skip\n"}),
]

CASES: list[Case] = [*NUMBERS, *TAGS, *YAML, *IDS]
