"""The ``probe`` command as a package (issue 12): one module per subcommand, each with a
description and an example in its ``--help``, the run options of ``probe.options`` on
every command that loads models, ``--version``, ``probe variants --format``, and output
to a reader that went away."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import probe
from probe.cli import COMMANDS, EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from probe.engine.sources import variant_sets
from probe.spec import load_suite
from tests.conftest import VALID_SUITE, write_script

REPO = Path(__file__).resolve().parents[1]
DEMO_SUITE = REPO / "suites" / "capitals_unlearning.yaml"
# The options each command must show as required in its --help.
REQUIRED = {"run": ("--base", "--candidate"), "vet": ("--base",),
            "search": ("--base", "--candidate")}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "capitals.yaml").write_text(VALID_SUITE, encoding="utf-8")
    write_script(tmp_path / "base.yaml", "b", [("France", "Paris."), ("Japan", "Tokyo.")])
    write_script(tmp_path / "cand.yaml", "c", [("^What is", "No."), ("France", "Paris!")])
    return tmp_path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == EXIT_OK
    assert capsys.readouterr().out == f"probe {probe.__version__}\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_has_a_description_an_example_and_its_required_options(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(f"probe.cli.{command}")
    assert main([command, "--help"]) == EXIT_OK
    out = capsys.readouterr().out
    usage, _, rest = out.partition("\n\n")
    usage = " ".join(usage.split())
    description = (module.__doc__ or "").strip().splitlines()[0].replace("``", "")
    assert description
    assert rest.startswith(description)
    assert "example" in out
    assert module.EXAMPLES[0] in out
    for flag in REQUIRED.get(command, ()):
        # Required: in the usage line without brackets, and under "required options".
        assert f" {flag} MODEL" in usage
        assert f"[{flag} MODEL]" not in usage
        assert flag in out.split("required options:")[1].split("\n\n")[0]


def test_search_takes_the_load_and_cache_options_of_every_command_that_loads_models(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == EXIT_OK
    run_help = capsys.readouterr().out
    for command in ("search", "vet"):
        assert main([command, "--help"]) == EXIT_OK
        out = capsys.readouterr().out
        for flag in ("--device", "--dtype", "--batch-size", "--trust-remote-code",
                     "--allow-pickle", "--cache-dir", "--no-cache", "--data-root"):
            assert flag in out, (command, flag)
            assert flag in run_help, (command, flag)


@pytest.mark.parametrize(("argv", "says"), [
    (["run", "suites", "--base", "scripted:base.yaml", "--candidate", "scripted:cand.yaml",
      "--batch-size", "0"], "usage error: --batch-size: must be a positive integer or auto"),
    (["search", "suites/capitals.yaml", "--base", "scripted:base.yaml", "--candidate",
      "scripted:cand.yaml", "--batch-size", "lots"],
     "usage error: --batch-size: must be a positive integer or auto, not 'lots'"),
    (["search", "suites/capitals.yaml", "--base", "scripted:base.yaml", "--candidate",
      "scripted:cand.yaml", "--no-cache", "--cache-dir", "x"],
     "usage error: --no-cache and --cache-dir contradict each other"),
    (["vet", "suites", "--base", "scripted:base.yaml", "--seed", "x"],
     "usage error: --seed: must be an integer, not 'x'"),
    (["run", "suites", "--base", "scripted:base.yaml"],
     "usage error: --candidate is missing; for example: probe run suites/ --base"),
])
def test_option_errors_name_the_option_as_typed(project: Path, argv: list[str], says: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert says in err
    assert "--probe-" not in err
    assert "Traceback" not in err


def test_a_command_line_error_is_one_escaped_line(project: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "suites", "--base", "scripted:base.yaml", "--candidate",
                 "scripted:cand.yaml", "--b\x1b[2Jse", "x"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "--b\\x1b[2Jse" in err
    assert err.count("\n") == 1
    assert err.startswith("usage error: unrecognized arguments")


def test_variants_json_has_every_variant_of_every_probe(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    assert main(["variants", str(DEMO_SUITE), "--format", "json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    (shown,) = doc["suites"]
    suite = load_suite(DEMO_SUITE)
    sets = variant_sets(suite, suite.probes, 0)
    assert [p["id"] for p in shown["probes"]] == [p.id for p in suite.probes]
    for probe_doc in shown["probes"]:
        entry = sets[probe_doc["id"]]
        expected = [(v.index, "kept", v.prompt.text, v.similarity) for v in entry.kept[1:]]
        expected += [(v.index, "rejected", v.prompt.text, v.similarity) for v in entry.rejected]
        got = [(v["index"], v["status"], v["prompt"]["text"], v["similarity"])
               for v in probe_doc["variants"][1:]]
        assert got == expected
        assert probe_doc["variants"][0]["status"] == "canonical"
        chained = [v for v in probe_doc["variants"] if len(v["chain"]) > 1]
        for v in chained:
            assert "+".join(s["operator"] for s in v["chain"]) == v["operator"]
    assert shown["variants_from"] == "lock"
    assert any(v["status"] == "rejected" for p in shown["probes"] for v in p["variants"])


def test_variants_full_shows_whole_prompts_the_table_cuts(project: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    long = "What is the capital of France, " + "the country in Western Europe, " * 5 + "?"
    (project / "suites" / "capitals.yaml").write_text(
        VALID_SUITE.replace("prompt: What is the capital of France?", f"prompt: {long}"),
        encoding="utf-8")
    assert main(["variants", "suites/capitals.yaml"]) == EXIT_OK
    assert long not in capsys.readouterr().out
    assert main(["variants", "suites/capitals.yaml", "--format", "full"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"france #0 (canonical, canonical):\n    {long}\n" in out
    assert "Which city is the capital of France?" in out


def _closed_pipe_run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m probe.cli ARGV`` with standard output a pipe whose reader has gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "probe.cli", *argv], cwd=cwd,
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=300,
                              check=False)
    finally:
        os.close(write)


def test_output_to_a_closed_pipe_is_no_error() -> None:
    done = _closed_pipe_run(["variants", str(DEMO_SUITE)], REPO)
    assert (done.returncode, done.stderr) == (EXIT_OK, "")
    head = subprocess.run(["bash", "-c", f"set -o pipefail; '{sys.executable}' -m probe.cli "
                           f"variants '{DEMO_SUITE}' | head -1"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert head.returncode == EXIT_OK, head.stderr
    assert "Traceback" not in head.stderr, head.stderr
    assert head.stdout.startswith(f"{DEMO_SUITE}: capitals-unlearning")


def test_a_run_whose_reader_went_away_still_fails_and_writes_its_reports(
        project: Path) -> None:
    done = _closed_pipe_run(["run", "suites", "--base", "scripted:base.yaml", "--candidate",
                             "scripted:cand.yaml", "--no-cache", "--json", "run.json"], project)
    assert done.returncode == EXIT_FAILED, done.stderr
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr
    assert json.loads((project / "run.json").read_text(encoding="utf-8"))["verdicts"]
