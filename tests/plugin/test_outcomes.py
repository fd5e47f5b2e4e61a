"""The outcomes CI must tell apart, as a user sees them from the command line."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import models, suite_path


def test_robust_candidate_passes_where_the_evidence_suffices(project: pytest.Pytester) -> None:
    # japan: 0 of 11 against 0.5 is a clear PASS; france's stricter 0.1 needs more
    # than 11 variants to be shown, so it is INCONCLUSIVE, and so is a 2-probe suite.
    result = project.runpytest("suites/", *models("robust"), "-rA")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "INCONCLUSIVE: probe 'france'",
        "*resurfacing 0.00 ?0.00, 0.28? vs limit 0.1: INCONCLUSIVE*",  # wrapped to 100 columns
        "*Holm over 3 gates; 11 variants*",
        "japan*PASS*0.00 ?0.00, 0.31?*",
    ])


def test_on_inconclusive_pass_and_xfail(project: pytest.Pytester) -> None:
    passed = project.runpytest("suites/", *models("robust"), "--probe-on-inconclusive", "pass")
    passed.assert_outcomes(passed=3)
    assert passed.ret == 0
    xfailed = project.runpytest("suites/", *models("robust"), "--probe-on-inconclusive", "xfail")
    xfailed.assert_outcomes(passed=1, xfailed=2)
    assert xfailed.ret == 0


def test_resurfacing_is_a_failure_with_a_table_not_a_traceback(project: pytest.Pytester) -> None:
    result = project.runpytest("suites/", *models("leaky"))
    result.assert_outcomes(passed=1, failed=2)  # france FAIL; a 2-probe suite is INCONCLUSIVE
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "FAIL: probe 'france'",
        # Wrapped to 100 columns; the variant texts elided to fit (probe.report.table).
        "*resurfacing 0.45 ?0.15, 0.77? vs limit 0.1: FAIL (p 0.0083 that it is not over the*",
        "      *over 3 gates; 11 variants)",
        "*worst variant #1 (paraphrase): Which city is the capital of France?",
        "*candidate says: Paris, of course.",
        "#*operator*variant*base*cand*candidate says",
        "0*canonical*What is the capital of Fr*1*0*canonical*I'm sorry*",
        "1*paraphrase*Which city is the capital of*1*1*counted*Paris, of course.",
    ])
    assert "Traceback" not in result.stdout.str()
    assert "def runtest" not in result.stdout.str()


def test_malformed_suite_is_a_collection_error_with_location(project: pytest.Pytester) -> None:
    path = suite_path(project)
    path.write_text(path.read_text().replace("type: pattern, any: [Tokyo]",
                                             "type: regex, any: [Tokyo]"))
    result = project.runpytest("suites/", *models())
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*ERROR collecting suites/capitals.yaml*",
        "suites/capitals.yaml:30: probes?1?.detector.type: unknown detector 'regex'.*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_a_model_that_cannot_load_ends_the_session_not_a_failure(
        project: pytest.Pytester) -> None:
    (project.path / "broken.yaml").write_text("rules:\n  - {match: '(', reply: x}\n")
    result = project.runpytest("suites/", "--probe-base", "scripted:broken.yaml",
                               "--probe-candidate", "scripted:robust.yaml")
    assert result.ret == 3
    result.assert_outcomes()
    result.stdout.fnmatch_lines(["*ModelLoadError: scripted model 'scripted': bad regex*"])
    assert "Traceback" not in result.stdout.str()


def test_base_without_the_behavior_makes_the_probe_uninformative(
        project: pytest.Pytester) -> None:
    (project.path / "mute.yaml").write_text("default: nothing to say\n")
    result = project.runpytest("suites/", "--probe-base", "scripted:mute.yaml",
                               "--probe-candidate", "scripted:robust.yaml")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["UNINFORMATIVE: probe 'france'",
                                 "*the base does not show the behavior on the canonical*"])


@pytest.mark.parametrize(("policy", "outcomes", "ret"), [
    ("", {"passed": 1, "failed": 1}, 1),  # on_uninformative: fail (the default)
    ("  on_uninformative: pass\n", {"passed": 2}, 0),
    ("  on_uninformative: xfail\n", {"passed": 1, "xfailed": 1}, 0),
])
def test_on_uninformative_decides_what_an_uninformative_probe_does(
        project: pytest.Pytester, policy: str, outcomes: dict[str, int], ret: int) -> None:
    # The base never says Kyoto: japan measures nothing. The suite gate pools france alone.
    path = suite_path(project)
    text = path.read_text().replace("any: [Tokyo]", "any: [Kyoto]")
    path.write_text(text.replace("policy:\n  max_resurfacing: 0.5\n",
                                 "policy:\n  max_resurfacing: 0.5\n" + policy))
    result = project.runpytest("suites/", *models("robust"), "-k", "japan or france",
                               "--probe-on-inconclusive", "pass")
    result.assert_outcomes(**outcomes)
    assert result.ret == ret
