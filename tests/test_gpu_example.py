"""The documented GPU workflow stays valid: it parses, uses only options that exist,
installs the project from its repository, and its server job reaches the server it starts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "docs" / "examples" / "gpu-after-finetune.yml"


def test_workflow_parses_and_uploads_the_reports() -> None:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    steps = data["jobs"]["probe"]["steps"]
    names = [s.get("name", s.get("uses")) for s in steps]
    assert "run the probe suites" in names
    assert "upload the reports" in names
    upload = next(s for s in steps if s.get("name") == "upload the reports")
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "reports/"


def test_workflow_options_are_real(pytester: pytest.Pytester) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    used = set(re.findall(r"(--probe-[a-z-]+)", text))
    assert {"--probe-json", "--probe-html", "--probe-baseline", "--probe-base"} <= used
    help_text = pytester.runpytest("--help").stdout.str()
    assert sorted(o for o in used if o not in help_text) == []


def _jobs() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    jobs: dict[str, Any] = data["jobs"]
    return {name: {**job, "env": {**data.get("env", {}), **job.get("env", {})}}
            for name, job in jobs.items()}


def _run(job: dict[str, Any], name: str) -> str:
    step = next(s for s in job["steps"] if s.get("name") == name)
    return " ".join(str(step["run"]).replace("\\\n", " ").split())


def _flag(command: str, flag: str) -> str:
    match = re.search(rf"{re.escape(flag)}[ =](\S+)", command)
    assert match, f"{flag} missing from: {command}"
    return match.group(1).strip("\"'")


def test_the_project_is_installed_from_its_repository() -> None:
    for name, job in _jobs().items():
        install = _run(job, "install")
        assert "-e ." not in install, name  # not from a checkout of the project
        assert "$PROBE_PACKAGE" in install, name
        package = job["env"]["PROBE_PACKAGE"]
        assert re.fullmatch(r"probe-resurface\[[a-z,]*vllm[a-z,]*\] @ "
                            r"git\+https://github\.com/[^/\s]+/[^/\s@]+@\S+", package)


def test_the_in_process_job_runs_vllm() -> None:
    from probe.options import check_value

    run = _run(_jobs()["probe"], "run the probe suites")
    assert check_value("engine", _flag(run, "--probe-engine")) == "vllm"
    assert int(_flag(run, "--probe-tensor-parallel-size")) >= 1
    assert 0 < float(_flag(run, "--probe-memory-fraction")) <= 1
    assert int(_flag(run, "--probe-max-model-len")) >= 16


def test_the_server_job_serves_the_adapter_and_probes_through_it() -> None:
    from probe.options import check_value

    job = _jobs()["probe-server"]
    names = [s.get("name") for s in job["steps"]]
    assert names.index("start the server") < names.index("run the probe suites") < \
        names.index("stop the server")
    stop = next(s for s in job["steps"] if s.get("name") == "stop the server")
    assert stop["if"] == "always()"  # the server never outlives a failed run
    serve = _run(job, "start the server")
    run = _run(job, "run the probe suites")
    assert serve.startswith('vllm serve "$BASE"')
    assert "--enable-lora" in serve
    lora_name, lora_dir = _flag(serve, "--lora-modules").split("=", 1)
    assert lora_dir == "$CANDIDATE_DIR"
    assert check_value("engine", _flag(run, "--probe-engine")) == "openai"
    # The pytest run reaches the server it started, by the names it serves.
    assert _flag(run, "--probe-server-url") == f"http://127.0.0.1:{_flag(serve, '--port')}/v1"
    assert _flag(run, "--probe-base") == _flag(serve, "--served-model-name")
    assert _flag(run, "--probe-candidate") == lora_name
    # Revisions for both sides (otherwise nothing is cached), and a tokenizer for scoring.
    assert _flag(run, "--probe-base-revision") == "$BASE_REVISION"
    assert _flag(run, "--probe-candidate-revision") == "$ADAPTER_DIGEST"
    assert _flag(run, "--probe-tokenizer") == "$BASE"
    assert _flag(run, "--probe-api-key-env") in job["env"]


def test_every_engine_option_is_shown() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    shown = {"--probe-engine", "--probe-tensor-parallel-size", "--probe-memory-fraction",
             "--probe-max-model-len", "--probe-server-url", "--probe-candidate-server-url",
             "--probe-api-key-env", "--probe-base-revision", "--probe-candidate-revision",
             "--probe-tokenizer"}
    assert shown <= set(re.findall(r"(--probe-[a-z-]+)", text))
