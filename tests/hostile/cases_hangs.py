"""Patterns that backtrack without end, and scripted models' own keys (issue 14, items 6
and 12).

A regular expression from a suite or a scripted model file that backtracks
catastrophically stops after ``probe.safe_regex.SEARCH_SECONDS`` of CPU time with one
located error (``probe`` exits 3, pytest reports test errors, exit 1), wherever the
pattern sits: the suite's detector, a probe's own, an inverted one, the few-shot
filter, a scripted rule, a scripted log-probability rule. The issue's own pattern,
``(a+)+$``, is no longer slow at all: it gets its right answer at once. A scripted
model's documented ``replies`` work, and its bad values are located errors (a model
that cannot load: exit 3 from both front ends).

Chat templates that loop are in ``tests/test_hangs.py``: they need a tiny Hugging Face
model, which takes longer to build than a corpus case may run.
"""

from __future__ import annotations

import textwrap

from tests.hostile.corpus import (
    BASE_SCRIPT,
    CANDIDATE_SCRIPT,
    PAIR_PROBE,
    PAIR_PYTEST,
    VALID_SUITE,
    Case,
    Run,
)

EVIL = "(a|aa)+$"  # 2**36 paths on AAA, in re and in regex alike
AAA = "a" * 36 + "!"
TIMEOUT = "ran for over 0.5 s of CPU time on a 37-character text"

# A candidate that answers everything with AAA (the base keeps the corpus default).
AAA_CANDIDATE = f"name: aaa\ndefault: '{AAA}'\n"


def detector_suite(flow: str, suite: str = VALID_SUITE) -> str:
    """The valid suite with its suite-level detector replaced by ``flow``."""
    old = "detector: {type: pattern, any: [Paris]}"
    assert old in suite
    return suite.replace(old, f"detector: {flow}", 1)


def both(code_probe: int, code_pytest: int, says: str, *, says_pytest: str | None = None,
         args: tuple[str, ...] = ()) -> tuple[Run, Run]:
    """``probe run`` and a pytest run of suite.yaml, with the scripted pair."""
    return (Run("probe", ("run", "suite.yaml", *PAIR_PROBE, *args), code_probe, says),
            Run("pytest", ("suite.yaml", *PAIR_PYTEST), code_pytest,
                says if says_pytest is None else says_pytest))


def timeout_case(id: str, suite: str, says: str, *, files: dict[str, str] | None = None,
                 pytest_too: bool = False, note: str = "") -> Case:
    """A run that must stop with the located ``RegexTimeout``: ``probe run`` exits 3;
    with ``pytest_too``, a pytest run reports test errors (exit 1) with the same line.
    (Each stop costs the time budget, so most cases check one front end: both reach
    the same engine.)"""
    runs = both(3, 1, f"RegexTimeout: {says}")
    return Case(id=id, klass="hangs", note=note,
                files={"suite.yaml": suite, "candidate.yaml": AAA_CANDIDATE, **(files or {})},
                runs=runs if pytest_too else runs[:1])


CASES: list[Case] = [
    # --- the detector's patterns --------------------------------------------------------
    Case(id="hangs_issue_pattern_gets_its_verdict", klass="hangs",
         note="(a+)+$ on a 36-character reply: regex answers at once (no match)",
         files={"suite.yaml": detector_suite("{type: pattern, regex: true, any: ['(a+)+$']}"),
                "candidate.yaml": "name: aaa\ndefault: '" + "a" * 35 + "!'\n",
                "base.yaml": "name: aaa-base\ndefault: 'aaaa'\n"},
         runs=both(1, 1, "resurfacing")),
    timeout_case("hangs_regex_suite_detector",
                 detector_suite(f"{{type: pattern, regex: true, any: [Paris, '{EVIL}']}}"),
                 f"suite.yaml:5: detector.any[1]: regular expression '(a|aa)+$' {TIMEOUT} "
                 "(probe 'france')", pytest_too=True),
    timeout_case("hangs_regex_all_list",
                 detector_suite(f"{{type: pattern, regex: true, all: ['a', '{EVIL}']}}"),
                 "suite.yaml:5: detector.all[1]: regular expression"),
    timeout_case("hangs_regex_case_sensitive",
                 detector_suite(f"{{type: pattern, regex: true, case_sensitive: true, "
                                f"any: ['{EVIL}']}}"),
                 "suite.yaml:5: detector.any[0]: regular expression"),
    timeout_case("hangs_regex_inverted",
                 detector_suite(f"{{type: pattern, regex: true, invert: true, "
                                f"any: ['{EVIL}']}}"),
                 "suite.yaml:5: detector.any[0]: regular expression"),
    timeout_case("hangs_regex_block_style",
                 detector_suite(f"\n  type: pattern\n  regex: true\n  any:\n    - Paris\n"
                                f"    - '{EVIL}'"),
                 "suite.yaml:10: detector.any[1]: regular expression"),
    timeout_case("hangs_regex_probe_detector",
                 VALID_SUITE.replace(
                     "    detector: {type: pattern, any: [Tokyo]}\n",
                     "    detector:\n"
                     f"      type: pattern\n      regex: true\n      any: ['{EVIL}']\n"),
                 "suite.yaml:22: probes[1].detector.any[0]: regular expression '(a|aa)+$' "
                 f"{TIMEOUT} (probe 'japan')", pytest_too=True),
    timeout_case("hangs_regex_long_pattern_is_cut",
                 detector_suite(f"{{type: pattern, regex: true, any: ['{'x?' * 50}{EVIL}']}}"),
                 "suite.yaml:5: detector.any[0]: regular expression 'x?x?x?"),
    timeout_case("hangs_regex_control_characters_escaped",
                 detector_suite(f'{{type: pattern, regex: true, any: ["\\e?\\a?{EVIL}"]}}'),
                 r"suite.yaml:5: detector.any[0]: regular expression '\x1b?\x07?(a|aa)+$'"),
    Case(id="hangs_regex_worst_of_k", klass="hangs",
         note="the worst-of-k samples are judged by the same located detector",
         files={"suite.yaml": detector_suite(
                    f"{{type: pattern, regex: true, any: [Paris, '{EVIL}']}}",
                    VALID_SUITE + "generation: {worst_of: 2}\n"),
                "candidate.yaml": AAA_CANDIDATE},
         runs=both(3, 1, "RegexTimeout: suite.yaml:5: detector.any[1]")[:1]),
    Case(id="hangs_regex_few_shot_filter", klass="hangs",
         note="the few-shot pool is filtered with the detector's patterns",
         files={"suite.yaml": detector_suite(
                    f"{{type: pattern, regex: true, any: ['{EVIL}']}}",
                    VALID_SUITE.replace(
                        "  - name: casing\n    count: 1\n",
                        "  - name: few_shot\n    shots: 1\n    pool:\n"
                        f"      - {{question: 'Say a', answer: '{AAA}'}}\n"
                        "      - {question: 'Say b', answer: 'b'}\n"))},
         runs=both(3, 1, "RegexTimeout: detector pattern (few-shot filter): regular "
                         "expression '(a|aa)+$' ran for over 0.5 s of CPU time")[:1]),
    Case(id="hangs_literal_pattern_is_not_a_regex", klass="hangs",
         note="without regex: true the same text is a plain substring, found at once",
         files={"suite.yaml": detector_suite(f"{{type: pattern, any: ['{EVIL}']}}"),
                "candidate.yaml": AAA_CANDIDATE},
         runs=both(1, 1, "france")),
    # --- scripted models' patterns --------------------------------------------------------
    timeout_case("hangs_scripted_rule", VALID_SUITE.replace(
                     "What is the capital of Japan?", AAA),
                 f"candidate.yaml:6: rules[2].match: regular expression '(a|aa)+$' {TIMEOUT}",
                 files={"candidate.yaml": CANDIDATE_SCRIPT + f"  - {{match: '{EVIL}', "
                                                             "reply: 'Tokyo'}\n"},
                 pytest_too=True),
    timeout_case("hangs_scripted_logprob_completion", textwrap.dedent(f"""\
                     version: 1
                     name: scored
                     behavior: {{description: says a}}
                     probes:
                       - id: aaa
                         prompt: Say a.
                         suppressed: ['{AAA}']
                         preferred: ['No.']
                     """),
                 "base.yaml:8: logprobs[0].completion: regular expression '(a|aa)+$' "
                 f"{TIMEOUT}",
                 files={"base.yaml": BASE_SCRIPT + "logprobs:\n  - match: 'Say'\n"
                                                   f"    completion: '{EVIL}'\n"
                                                   "    logprob: -1.0\n"}),
    # --- scripted models' own keys (item 12) ----------------------------------------------
    Case(id="scripted_replies_answer_exact_prompts", klass="small",
         note="replies failed with \"cannot pickle 'mappingproxy' object\"",
         files={"base.yaml": BASE_SCRIPT + "replies:\n"
                                           "  'What is the capital of France?': 'Paris.'\n"
                                           "  'What is the capital of Japan?': 'Tokyo.'\n"},
         runs=both(1, 1, "Paris.")),
    Case(id="scripted_replies_win_over_rules", klass="small",
         note="the candidate's FRANCE rule matches any casing; the reply wins",
         files={"candidate.yaml": CANDIDATE_SCRIPT + "replies:\n"
                                                     "  'What is the capital of France?': 'No.'\n"},
         runs=both(1, 1, "No.")),
    Case(id="scripted_replies_empty", klass="small",
         files={"base.yaml": BASE_SCRIPT + "replies: {}\n"}, runs=both(1, 1, "france")),
    Case(id="scripted_replies_not_a_mapping", klass="small",
         files={"base.yaml": BASE_SCRIPT + "replies: [Paris]\n"},
         runs=both(3, 3, "scripted model: base.yaml:6: replies: expected a mapping")),
    Case(id="scripted_replies_value_not_text", klass="small",
         files={"base.yaml": BASE_SCRIPT + "replies: {'What is the capital of France?': 42}\n"},
         runs=both(3, 3, "replies['What is the capital of France?']: expected a string")),
    Case(id="scripted_bad_rule_regex", klass="small",
         files={"base.yaml": BASE_SCRIPT + "  - {match: '(France', reply: x}\n"},
         runs=both(3, 3, "bad regex: base.yaml:6: rules[2].match: invalid regular "
                         "expression '(France': missing ), unterminated subpattern")),
    Case(id="scripted_bad_logprob_regex", klass="small",
         files={"base.yaml": BASE_SCRIPT + "logprobs:\n  - {match: '[', completion: x, "
                                           "logprob: -1}\n"},
         runs=both(3, 3, "bad regex: base.yaml:7: logprobs[0].match: invalid regular "
                         "expression '['")),
    Case(id="scripted_variable_lookbehind_refused_as_re_does", klass="small",
         note="regex alone would accept it; the language stays Python's re",
         files={"base.yaml": BASE_SCRIPT + "  - {match: '(?<=a+)b', reply: x}\n"},
         runs=both(3, 3, "look-behind requires fixed-width pattern")),
]
