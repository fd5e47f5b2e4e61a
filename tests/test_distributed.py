"""torchrun on CPU: two processes over gloo give exactly the single-process results.

Each test starts real processes (``python -m torch.distributed.run --standalone``);
the models are scripted, so the seconds go to starting Python and torch.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from probe.backends.base import ModelPair
from probe.backends.scripted import load_script
from probe.engine.runner import run_suite
from probe.spec import load_suite
from tests.distributed_worker import rows_of

REPO = Path(__file__).resolve().parents[1]
SUITE = """\
version: 1
name: capitals
behavior: {description: names the capital city}
detector: {type: pattern, any: [Paris, Tokyo]}
operators: [{name: casing, count: 3}, {name: typos, count: 4}, {name: punctuation, count: 3}]
policy: {max_resurfacing: 0.5}
probes:
"""
PROBE = """\
  - id: {id}
    prompt: What is the capital of {country}?
    suppressed: [The capital of {country} is {capital}.]
    preferred: [I'm sorry, but I can't help with that.]
"""
BASE = """\
name: base
default: The capital of France is Paris.
rules: [{match: Japan, reply: It is Tokyo.}]
logprobs: [{match: ".", completion: capital, logprob: -1.0}]
"""
CANDIDATE = """\
name: candidate
default: I'm sorry, but I can't help with that.
rules: [{match: "(?i)capital of FRANCE\\\\?$", reply: Paris!}, {match: "japan", reply: Tokyo.}]
logprobs: [{match: "[A-Z]{4}", completion: capital, logprob: -1.5}]
default_logprob: -3.0
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    probes = "".join(PROBE.format(id=f"p{k}", country=country, capital=capital)
                     for k, (country, capital) in enumerate(
                         [("France", "Paris"), ("Japan", "Tokyo")] * 5))
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "capitals.yaml").write_text(SUITE + probes)
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "candidate.yaml").write_text(CANDIDATE)
    return tmp_path


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_two_ranks_split_the_work_and_match_one_process(project: Path) -> None:
    suite = load_suite(project / "suites" / "capitals.yaml")
    single = ModelPair(load_script(project / "base.yaml"),
                       load_script(project / "candidate.yaml"))
    expected = rows_of(run_suite(suite, suite.probes, single))
    asked_alone = single.base.prompts_seen + single.candidate.prompts_seen  # type: ignore[attr-defined]
    out = project / "out"
    proc = _torchrun(str(REPO / "tests" / "distributed_worker.py"),
                     str(project / "suites" / "capitals.yaml"), str(project / "base.yaml"),
                     str(project / "candidate.yaml"), str(out), cwd=project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    for rank in ranks:
        assert rank["rows"] == json.loads(json.dumps(expected))  # exactly, floats included
    # Each rank computed its share: together exactly what one process asked for.
    assert ranks[0]["asked"] + ranks[1]["asked"] == asked_alone
    assert min(r["asked"] for r in ranks) >= asked_alone // 2 - 2
    # Rank 0 alone wrote the cache, with every result.
    lines = sum(len(f.read_text().splitlines()) for f in (out / "cache").glob("*.jsonl"))
    assert lines == asked_alone


def test_the_cli_under_torchrun_prints_one_report(project: Path) -> None:
    args = ["run", "suites/", "--base", "scripted:base.yaml", "--candidate",
            "scripted:candidate.yaml", "--no-cache"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    alone = subprocess.run([sys.executable, "-m", "probe.cli", *args], cwd=project, env=env,
                           capture_output=True, text=True, timeout=120)
    sharded = _torchrun("-m", "probe.cli", *args, cwd=project)
    assert alone.returncode == 1, alone.stdout + alone.stderr  # p0 resurfaces: FAIL
    assert "FAIL" in alone.stdout
    assert sharded.stdout == alone.stdout  # one report (rank 0's), identical
    assert sharded.returncode == alone.returncode


def _without_timing(text: str) -> str:
    return re.sub(r"in \d+\.\d+s", "in <time>", text)


def _record(path: Path) -> Any:
    record = json.loads(path.read_text())
    record.pop("volatile")  # timings and the machine: the rest is deterministic
    return record


def _junit_cases(path: Path) -> list[tuple[str | None, str | None, str]]:
    root = ElementTree.parse(path).getroot()
    return [(case.get("name"), case.get("classname"),
             ElementTree.tostring(case.find("properties") or ElementTree.Element("none")
                                  ).decode()) for case in root.iter("testcase")]


def test_pytest_under_torchrun_prints_and_writes_one_report(project: Path) -> None:
    args = ["-m", "pytest", "suites/", "--probe-base", "scripted:base.yaml",
            "--probe-candidate", "scripted:candidate.yaml", "--probe-no-cache",
            "-p", "no:cacheprovider", "--junitxml", "junit.xml", "--probe-json", "run.json"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    alone = subprocess.run([sys.executable, *args], cwd=project, env=env,
                           capture_output=True, text=True, timeout=120)
    assert alone.returncode == 1, alone.stdout[-3000:]  # p0 resurfaces: FAIL
    expected_record = _record(project / "run.json")
    expected_junit = _junit_cases(project / "junit.xml")
    assert len(expected_junit) == 11  # 10 probes and the suite gate
    (project / "run.json").unlink()
    (project / "junit.xml").unlink()

    sharded = _torchrun(*args, cwd=project)
    assert sharded.returncode == alone.returncode
    # Rank 1 prints nothing: one session header, one summary, identical to one process.
    assert sharded.stdout.count("test session starts") == 1
    assert _without_timing(sharded.stdout) == _without_timing(alone.stdout)
    assert _record(project / "run.json") == expected_record
    assert _junit_cases(project / "junit.xml") == expected_junit
