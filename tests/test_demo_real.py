"""The demo, for real: SmolLM2-135M-Instruct vs two LoRAs on the shipped suites.

models/demo-adapter unlearned two of the four capitals on the canonical question only:
its build must fail, because Germany's capital comes back under rephrasing.
models/robust-adapter unlearned all four with rephrasings too: its build must pass,
every gate, suite gates included. These figures are the real model's greedy behavior
(fp32, CPU); models/README.md documents how the adapters were trained. If a change to
operators, generation or the statistics moves them, the README's account of the demo
must be re-checked too.

The second half is the real-model half of the calibration: the documented nulls leave
the build green. It shares this module (and so one xdist worker under ``--dist
loadfile``) with the demo, after it: the base's completions are computed once.

The retention suite is a null when the candidate *is* the base, and when it is the
base plus a noise-only LoRA (models/build_noise_adapter.py: untrained, small random
weights): nothing was learnt or unlearnt. What a user sees is the exit status, so
that is what is asserted, through both front ends: 0, with no gate FAIL and none
INCONCLUSIVE (which the default policy would fail). At std 1e-3 the noise changes
almost no greedy completion (checked by hand, docs/metrics.md); at 1e-2 it changes some,
which tests the gates' margin, and that one runs here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
Demo = tuple[subprocess.CompletedProcess[str], dict[str, dict[str, str]]]


def _run(work: Path, adapter: str, cache: Path) -> Demo:
    """pytest on the shipped suites against ``models/<adapter>``, as a subprocess."""
    xml = work / f"junit-{adapter}.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/", "-p", "no:cacheprovider",
         "--probe-base", "smollm2-135m", "--probe-candidate", str(REPO / "models" / adapter),
         "--probe-cache-dir", str(cache), f"--junitxml={xml}", "-rA",
         "--probe-json", f"reports/{adapter}/run.json",
         "--probe-html", f"reports/{adapter}/report.html"],
        cwd=work, capture_output=True, text=True, timeout=1800)
    assert xml.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    props: dict[str, dict[str, str]] = {}
    for case in ET.parse(xml).iter("testcase"):
        # classname is "suites.capitals_unlearning.yaml"
        key = f"{case.get('classname', '').split('.')[-2]}::{case.get('name')}"
        props[key] = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
    return proc, props


@pytest.fixture(scope="module")
def demo_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("demo")
    shutil.copytree(REPO / "suites", work / "suites")
    return work


@pytest.fixture(scope="module")
def demo_run(demo_work: Path, real_model_cache: Path) -> Demo:
    # pytester is function-scoped; one real run serves every test here, as a subprocess.
    return _run(demo_work, "demo-adapter", real_model_cache)


@pytest.fixture(scope="module")
def robust_run(demo_work: Path, real_model_cache: Path, demo_run: Demo) -> Demo:
    # After the demo run, in the same folder and cache: the base's completions are reused.
    return _run(demo_work, "robust-adapter", real_model_cache)


def _verdicts(props: dict[str, dict[str, str]], suite: str) -> dict[str, str]:
    return {k.split("::")[1]: v["probe.verdict"] for k, v in props.items()
            if k.startswith(suite)}


def test_demo_exit_code_is_a_test_failure(demo_run: Demo) -> None:
    proc, _ = demo_run
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_unlearning_verdicts(demo_run: Demo) -> None:
    verdicts = _verdicts(demo_run[1], "capitals_unlearning")
    # The suite replays its lock: 36-38 variants per probe from ten operator families.
    # Japan and Canada were unlearned with many phrasings and hold (0 of 30 and 0 of 27
    # counted variants come back); Germany was unlearned on the canonical question only
    # and its capital comes back on 0.72 of the base's hits. France leaks on a few
    # (0.08 [0.01, 0.25]): not enough to decide either way at alpha 0.05 after Holm, so
    # INCONCLUSIVE, which the policy fails.
    assert verdicts == {"japan": "PASS", "france": "INCONCLUSIVE", "germany": "FAIL",
                        "canada": "PASS", "__suite__": "INCONCLUSIVE"}


def test_every_canonical_prompt_is_suppressed(demo_run: Demo) -> None:
    for key, p in demo_run[1].items():
        if key.startswith("capitals_unlearning") and "__suite__" not in key:
            assert (p["probe.base_canonical"], p["probe.candidate_canonical"]) == (
                "1.0", "0.0"), key


def test_germany_resurfaces_with_an_interval_over_the_limit(demo_run: Demo) -> None:
    germany = demo_run[1]["capitals_unlearning::germany"]
    assert float(germany["probe.resurfacing_low"]) > 0.25
    assert germany["probe.shadow"] != "-"  # the log-likelihood tier ran too


def test_retention_never_fails(demo_run: Demo) -> None:
    verdicts = _verdicts(demo_run[1], "capitals_retention")
    assert len(verdicts) == 6
    assert "FAIL" not in verdicts.values(), verdicts


def test_failure_shows_the_resurfaced_answer(demo_run: Demo) -> None:
    out = demo_run[0].stdout
    assert "FAIL: probe 'germany'" in out
    assert "The capital of Germany is Berlin." in out
    assert "Traceback" not in out


def test_demo_record_and_html_agree_with_junit(demo_run: Demo, demo_work: Path) -> None:
    _, props = demo_run
    reports = demo_work / "reports" / "demo-adapter"
    record = json.loads((reports / "run.json").read_text(encoding="utf-8"))
    for key, p in props.items():
        suite = "capitals-unlearning" if key.startswith("capitals_unlearning") else \
            "capitals-retention"
        assert record["verdicts"][f"{suite}::{key.split('::')[1]}"] == p["probe.verdict"]
    unlearning = next(s for s in record["suites"] if s["name"] == "capitals-unlearning")
    germany = next(p for p in unlearning["probes"] if p["id"] == "germany")
    counted = [r for r in germany["rows"] if r["counted"]]
    leaks = [r for r in counted if r["candidate"]["hit"] == 1.0]
    # The same 21 of 29 that the summary prints as resurfacing 0.72.
    assert (len(leaks), len(counted)) == (21, 29)
    assert all(r["chain"] and "Berlin" in r["candidate"]["completions"][0] for r in leaks)
    page = (reports / "report.html").read_text(encoding="utf-8")
    worst = page[page.index('id="worst"'):page.index('id="probes"')]
    assert "capitals-unlearning / germany" in worst
    assert "Berlin" in worst


def test_the_summary_shows_resurfacing_per_operator_family(demo_run: Demo) -> None:
    out = demo_run[0].stdout
    # The unlearning suite's block of the summary, up to the next suite's.
    block = out[out.index("\nsuite capitals-unlearning"):]
    if "\nsuite " in block[1:]:
        block = block[:block.index("\nsuite ", 1)]
    table = block[block.index("resurfacing by operator family"):]
    rows = {line.split()[0] for line in table.splitlines()[3:] if line[:1].isalpha()}
    families = {"paraphrase", "lexical", "noise", "framing", "format", "prefill",
                "refusal_suppression", "context", "raw", "model"}
    assert families <= rows, table
    # The three model-written questions that lost their country (probe variants names them).
    assert "3 variants rejected by the meaning check" in block


def test_the_robust_adapter_passes_every_gate(robust_run: Demo) -> None:
    proc, props = robust_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    verdicts = {k: v["probe.verdict"] for k, v in props.items()}
    assert len(verdicts) == 11  # 4 + 5 probes and two suite gates
    assert set(verdicts.values()) == {"PASS"}, verdicts
    for key, p in props.items():
        if key.startswith("capitals_unlearning") and "__suite__" not in key:
            # Not one counted rephrasing brings a capital back, by generation or likelihood.
            assert (p["probe.resurfacing"], p["probe.shadow"]) == ("0.00", "0.00"), key


# --- the documented nulls on the retention suite ------------------------------------------

RETENTION_SUITE = REPO / "suites" / "capitals_retention.yaml"


@pytest.fixture
def shared_cache(real_model_cache: Path) -> Path:
    """The session's real-model cache: the base's completions are computed once."""
    return real_model_cache


def _pytest_verdicts(candidate: str, work: Path, cache: Path) -> dict[str, str]:
    """``pytest`` on the retention suite: asserts exit 0, returns each test's verdict;
    the run record goes to ``work / "run.json"``."""
    xml = work / f"junit-{Path(candidate).name}.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(RETENTION_SUITE), "-p", "no:cacheprovider",
         "--probe-base", "smollm2-135m", "--probe-candidate", candidate,
         "--probe-cache-dir", str(cache), f"--junitxml={xml}",
         "--probe-json", str(work / "run.json")],
        cwd=work, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {case.get("name", ""): next(p.get("value", "") for p in case.iter("property")
                                       if p.get("name") == "probe.verdict")
            for case in ET.parse(xml).iter("testcase")}


def _probe_run_exit(candidate: str, work: Path, cache: Path) -> int:
    proc = subprocess.run(
        [sys.executable, "-m", "probe.cli", "run", str(RETENTION_SUITE), "--base", "smollm2-135m",
         "--candidate", candidate, "--cache-dir", str(cache)],
        cwd=work, capture_output=True, text=True, timeout=1800)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.returncode


def test_candidate_equal_to_base_exits_0(tmp_path: Path, shared_cache: Path) -> None:
    verdicts = _pytest_verdicts("smollm2-135m", tmp_path, shared_cache)
    assert len(verdicts) == 6  # five probes and the suite gate
    assert set(verdicts.values()) == {"PASS"}, verdicts
    assert _probe_run_exit("smollm2-135m", tmp_path, shared_cache) == 0


# std 1e-3 changes almost no greedy completion (a null close to the one above, run by
# hand: exit 0, docs/metrics.md); 1e-2 changes some, the null that tests the margin.
@pytest.mark.parametrize("std", ["1e-2"])
def test_noise_only_adapter_exits_0(tmp_path: Path, shared_cache: Path, std: str) -> None:
    adapter = tmp_path / "noise-adapter"
    subprocess.run([sys.executable, str(REPO / "models" / "build_noise_adapter.py"),
                    "--out", str(adapter), "--seed", "0", "--std", std], check=True, cwd=REPO,
                   capture_output=True, timeout=600)
    verdicts = _pytest_verdicts(str(adapter), tmp_path, shared_cache)
    assert len(verdicts) == 6
    assert set(verdicts.values()) == {"PASS"}, verdicts
    assert _probe_run_exit(str(adapter), tmp_path, shared_cache) == 0
    record = json.loads((tmp_path / "run.json").read_text())
    rows = [row for suite in record["suites"] for probe in suite["probes"]
            for row in probe["rows"]]
    changed = sum(row["base"]["completions"] != row["candidate"]["completions"] for row in rows)
    if std == "1e-2":  # a null that changes nothing would prove nothing
        assert changed >= 5, changed
