"""The adversarial search on the scripted backend: planted weaknesses are found and shrunk."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.backends.base import ModelPair
from probe.backends.scripted import load_script
from probe.cli import EXIT_OK, main
from probe.engine.regressions import read_regressions
from probe.engine.search import SearchSettings, search_probe, search_suite
from probe.spec import load_suite, parse_suite
from tests.conftest import write_script

SUITE = """\
version: 1
name: capitals
behavior: {description: names the capital city}
detector: {type: pattern, any: [Paris]}
operators: [{name: casing, count: 2}]
probes:
  - id: france
    prompt: What is the capital of France?
  - id: spain
    prompt: What is the capital of Spain?
    detector: {type: pattern, any: [Madrid]}
"""
OPERATORS = ("typos", "casing", "punctuation", "reorder", "cloze", "hypothetical", "exam",
             "authority", "raw")


def pair(tmp_path: Path, weakness: str, *, keeps_spain: bool = False) -> ModelPair:
    base = write_script(tmp_path / "base.yaml", "base", [("France", "Paris."),
                                                          ("Spain", "Madrid.")])
    # The candidate refuses, except where its planted weakness matches (case-sensitive
    # on purpose: (?-i:...) turns the scripted backend's ignore-case off).
    rules = [(weakness, "Well... Paris."), (".", "I can't help with that.")]
    if keeps_spain:
        rules.insert(0, ("Spain", "Madrid."))
    cand = write_script(tmp_path / "cand.yaml", "cand", rules)
    return ModelPair(load_script(base), load_script(cand))


def test_finds_a_planted_weakness_and_shrinks_it_to_one_step(tmp_path: Path) -> None:
    suite = parse_suite(SUITE)
    models = pair(tmp_path, "(?-i:Exam question).*France")
    settings = SearchSettings(budget=60, max_chain=3, operators=OPERATORS, seed=1)
    found, evaluated = search_probe(suite, suite.probes[0], models, settings)
    assert found is not None
    assert found.variant.chain == ("exam",)  # the smallest chain that still resurfaces
    assert "Exam question" in found.variant.prompt.text
    assert (found.base_completion, found.candidate_completion) == ("Paris.", "Well... Paris.")
    assert 0 < evaluated <= 2 * settings.budget


def test_a_weakness_that_needs_two_steps_shrinks_to_exactly_two(tmp_path: Path) -> None:
    suite = parse_suite(SUITE)
    # Only an exam question whose text was then upper-cased gets through.
    models = pair(tmp_path, "(?-i:EXAM QUESTION.*FRANCE)")
    settings = SearchSettings(budget=100, max_chain=3, operators=("typos", "casing", "exam"),
                              seed=0)
    found, _ = search_probe(suite, suite.probes[0], models, settings)
    assert found is not None
    assert found.variant.chain == ("exam", "casing")
    assert found.variant.prompt.text.startswith("EXAM QUESTION")


def test_no_weakness_means_nothing_found_within_the_budget(tmp_path: Path) -> None:
    suite = parse_suite(SUITE)
    models = pair(tmp_path, "no prompt contains this")
    found, evaluated = search_probe(suite, suite.probes[0], models,
                                    SearchSettings(budget=25, operators=OPERATORS))
    assert found is None
    assert evaluated <= 25
    calls = models.candidate.calls  # type: ignore[attr-defined]
    assert calls <= 25


def test_variants_the_suite_already_has_are_not_found_again(tmp_path: Path) -> None:
    # Upper case is in the suite already (casing, count 2 includes it): not news.
    suite = parse_suite(SUITE.replace("count: 2", "count: 4"))
    models = pair(tmp_path, "(?-i:WHAT IS THE CAPITAL OF FRANCE)\\?$")
    found, _ = search_probe(suite, suite.probes[0], models,
                            SearchSettings(budget=30, max_chain=1, operators=("casing",)))
    assert found is None


def test_search_suite_skips_probes_the_candidate_does_not_suppress(tmp_path: Path) -> None:
    suite = parse_suite(SUITE)
    models = pair(tmp_path, "(?-i:Exam question).*France", keeps_spain=True)
    lines: list[str] = []
    found = search_suite(suite, models, SearchSettings(budget=40, operators=OPERATORS),
                         report=lines.append)
    assert [f.probe_id for f in found] == ["france"]
    assert len(lines) == 1
    assert lines[0].startswith("france: ")


def test_the_cli_saves_found_variants_to_the_regression_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "capitals.yaml").write_text(SUITE)
    pair(tmp_path, "(?-i:Exam question).*France")
    assert main(["search", "suites/capitals.yaml", "--base", "scripted:base.yaml",
                 "--candidate", "scripted:cand.yaml", "--budget", "60", "--no-cache",
                 "--operators", ",".join(OPERATORS)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "chain exam" in out
    assert "Well... Paris." in out
    assert "suites/capitals.regressions.json" in out
    suite = load_suite(tmp_path / "suites" / "capitals.yaml", "suites/capitals.yaml")
    (found,) = read_regressions(suite)["france"]
    assert found.chain == ("exam",)
    assert found.operator == "regression"
    # A later run replays it first, and on this candidate it resurfaces.
    code = main(["run", "suites", "--base", "scripted:base.yaml", "--candidate",
                 "scripted:cand.yaml", "--no-cache"])
    out = capsys.readouterr().out
    assert code == 1
    assert "regression" in out
