"""``probe.run``: the one entry point the CLI and the plugin call, tested as a user of the
Python API would use it (scripted models, so each run takes a second)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import probe
from probe.backends.scripted import load_script
from probe.cli import main as cli_main
from probe.errors import UsageError
from tests.plugin.conftest import lay_out


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return lay_out(tmp_path)


def _run(candidate: str, **options: object) -> probe.Run:
    return probe.run("suites/", "scripted:base.yaml", f"scripted:{candidate}.yaml",
                     options=probe.RunOptions(no_cache=True, **options))  # type: ignore[arg-type]


def test_a_leaky_candidate_fails_and_a_robust_one_does_not(project: Path) -> None:
    leaky, robust = _run("leaky"), _run("robust")
    assert (leaky.exit_code, leaky.failed) == (1, True)
    assert leaky.outcome("capitals::france").action == "fail"
    assert leaky.outcome("capitals::france").verdict.value == "FAIL"
    assert {o.key for o in leaky.outcomes} == {"capitals::france", "capitals::japan",
                                              "capitals::__suite__"}
    # 0 leaks in 11 variants cannot show france under its 0.1 limit: INCONCLUSIVE, which
    # fails by default and passes when the policy says so.
    assert all(o.verdict.value != "FAIL" for o in robust.outcomes)
    assert robust.outcome("capitals::france").verdict.value == "INCONCLUSIVE"
    assert robust.exit_code == 1
    assert _run("robust", on_inconclusive="pass").exit_code == 0
    assert _run("leaky", on_inconclusive="pass").exit_code == 1
    # The results behind the outcomes: france's leak is measured, not just labelled.
    france = leaky.probe_result("suites/capitals.yaml", "france")
    assert france.verdict.value == "FAIL"
    assert leaky.suite_result("suites/capitals.yaml").probes[0] is france


@pytest.mark.parametrize(("candidate", "policy", "expected"), [
    ("leaky", "fail", 1), ("robust", "fail", 1), ("robust", "pass", 0), ("leaky", "pass", 1)])
def test_the_api_the_cli_and_the_plugin_give_one_exit_status(
        pytester: pytest.Pytester, candidate: str, policy: str, expected: int) -> None:
    """One rule for the build: the three front ends agree (the plugin and the CLI call
    probe.run, so they cannot drift)."""
    lay_out(pytester.path)  # pytester runs in its own directory
    api = _run(candidate, on_inconclusive=policy).exit_code
    cli = cli_main(["run", "suites/", "--base", "scripted:base.yaml", "--candidate",
                    f"scripted:{candidate}.yaml", "--no-cache", "--on-inconclusive", policy])
    plugin = pytester.runpytest("suites/", "--probe-base", "scripted:base.yaml",
                                "--probe-candidate", f"scripted:{candidate}.yaml",
                                "--probe-no-cache", "--probe-on-inconclusive", policy,
                                "-p", "no:cacheprovider").ret
    assert api == cli == int(plugin) == expected


def test_backends_can_be_given_already_built(project: Path) -> None:
    by_reference = _run("leaky")
    built = probe.run(["suites/capitals.yaml"], load_script("base.yaml"),
                      load_script("leaky.yaml"), options=probe.RunOptions(no_cache=True))
    assert [(o.key, o.action) for o in built.outcomes] == [
        (o.key, o.action) for o in by_reference.outcomes]
    assert built.settings.candidate == "fake-leaky"  # the backend's own name


def test_suites_can_be_given_loaded(project: Path) -> None:
    [suite] = probe.load_suites("suites/")
    result = probe.run([suite], "scripted:base.yaml", "scripted:leaky.yaml",
                       options=probe.RunOptions(no_cache=True))
    assert result.exit_code == 1


def test_reports_are_written_when_asked_and_the_record_is_the_run(project: Path) -> None:
    result = _run("leaky", json="out/run.json")
    assert not (project / "out" / "run.json").exists()  # only write_reports writes
    (project / "out").mkdir()
    [line] = result.write_reports()
    assert "run.json" in line
    written = json.loads((project / "out" / "run.json").read_text(encoding="utf-8"))
    assert written["volatile"]["refs"] == {"base": "scripted:base.yaml",
                                           "candidate": "scripted:leaky.yaml"}
    assert written["verdicts"] == result.record()["verdicts"]


def test_a_baseline_turns_known_failures_into_expected_ones(project: Path) -> None:
    assert _run("leaky").outcome("capitals::france").action == "fail"
    accepted = _run("leaky", baseline="base.json", update_baseline=True)
    assert accepted.exit_code == 0  # every failure accepted
    assert accepted.outcome("capitals::france").action == "xfail"
    assert accepted.outcome("capitals::france").by_baseline
    accepted.write_reports()
    again = _run("leaky", baseline="base.json")
    assert again.exit_code == 0
    assert "baseline" in again.outcome("capitals::france").reason


@pytest.mark.parametrize(("options", "message"), [
    ({"batch_size": 0}, "batch_size: must be a positive integer or auto"),
    ({"dtype": "fp8"}, "dtype: unknown dtype 'fp8'"),
    ({"alpha": 1.5}, "alpha: must be between 0 and 1"),
    ({"on_inconclusive": "maybe"}, "on_inconclusive: must be one of fail, pass, xfail"),
    ({"no_cache": True, "cache_dir": "c"}, "no_cache=True and cache_dir contradict each other"),
    ({"update_baseline": True}, "update_baseline=True needs baseline PATH"),
    ({"device": "gpu0"}, "device: 'gpu0' is not a device"),
])
def test_bad_options_name_the_keyword(options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        probe.RunOptions(**options)  # type: ignore[arg-type]


def test_bad_engine_and_seed_are_usage_errors(project: Path) -> None:
    with pytest.raises(UsageError, match=r"engine: unknown engine 'hff'.*Did you mean 'hf'"):
        probe.run("suites/", "scripted:base.yaml", "scripted:leaky.yaml",
                  options=probe.RunOptions(engine="hff"))
    with pytest.raises(UsageError, match=r"engine vllm runs real models, not 'scripted:"):
        probe.run("suites/", "scripted:base.yaml", "scripted:leaky.yaml",
                  options=probe.RunOptions(engine="vllm"))
    with pytest.raises(UsageError, match="seed: must be an integer"):
        probe.run("suites/", "scripted:base.yaml", "scripted:leaky.yaml",
                  seed="x")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="no such file or directory"):
        probe.run("nowhere/", "scripted:base.yaml", "scripted:leaky.yaml")
