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
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
Demo = tuple[subprocess.CompletedProcess[str], dict[str, dict[str, str]]]


def _run(work: Path, adapter: str, cache: Path, candidate: Path | None = None,
         suites: str = "suites/") -> Demo:
    """pytest on the shipped suites against ``models/<adapter>`` (or ``candidate``), as a
    subprocess."""
    xml = work / f"junit-{adapter}.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", suites, "-p", "no:cacheprovider",
         "--probe-base", "smollm2-135m",
         "--probe-candidate", str(candidate or REPO / "models" / adapter),
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


@pytest.fixture(scope="module")
def full_run(demo_work: Path, real_model_cache: Path, demo_run: Demo,
             full_finetune: Path) -> Demo:
    """The unlearning suite on the full-weight fine-tune (models/build_full_finetune.py,
    built once into the model cache), after the demo run: the base's results, perturbed
    ones included, come from the cache."""
    return _run(demo_work, "full-finetune", real_model_cache, full_finetune,
                "suites/capitals_unlearning.yaml")


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
    # (0.08 [0.00, 0.29]): not enough to decide either way at alpha 0.05 after Holm. Its
    # verdict is FAIL all the same, because quantized to int4 the candidate names Paris
    # again (test_int4_and_scaling_bring_back_what_the_demo_adapter_unlearned_shallowly).
    # The suite's pooled figure is INCONCLUSIVE, which the policy fails.
    assert verdicts == {"japan": "PASS", "france": "FAIL", "germany": "FAIL",
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


def _record(work: Path, adapter: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(
        (work / "reports" / adapter / "run.json").read_text(encoding="utf-8"))
    return record


def _failed_under(suite: dict[str, Any]) -> dict[str, set[str]]:
    """Per perturbation label, the probes whose gate under it failed."""
    return {p["label"]: {probe["id"] for probe in suite["probes"] for g in probe["gates"]
                         if g["metric"] == f"resurfacing under {p['label']}"
                         and g["decision"] == "FAIL"}
            for p in suite["perturbations"]}


def test_int4_and_scaling_bring_back_what_the_demo_adapter_unlearned_shallowly(
        demo_run: Demo, demo_work: Path) -> None:
    """The demo suite's ``perturb:`` (canonical prompts, paraphrases and cloze variants on
    the perturbed pair). Measured: quantized to int4 the demo adapter names Paris on 6 of 7
    counted variants and Berlin on 7 of 7 (recovery 0.45 [0.14, 0.86]); at 0.75 of its
    weight change Berlin comes back 7 of 7; int8 and 8 relearning steps leave France where
    rephrasing left it (2 of 7). Germany already leaks under these rephrasings, so it
    fails under every perturbation; France fails only where the perturbation revives it:
    int4 shows what rephrasing alone could not."""
    unlearning = next(s for s in _record(demo_work, "demo-adapter")["suites"]
                      if s["name"] == "capitals-unlearning")
    figures = {p["label"]: p for p in unlearning["perturbations"]}
    assert list(figures) == ["int8", "int4", "adapter_scale 0.75", "relearn 8 steps"]
    failed = _failed_under(unlearning)
    assert failed["int4"] == {"france", "germany"}
    assert "germany" in failed["adapter_scale 0.75"]
    assert "france" not in failed["int8"]
    assert failed["int4"].isdisjoint({"japan", "canada"})
    int4 = figures["int4"]
    assert int4["recovery"]["low"] > 0.0  # int4 undoes part of the suppression, shown
    assert int4["bucket_share"] < 0.05  # few weights leave the base's int4 bucket
    # Every perturbed row names its perturbation and is one of the chosen operators'.
    for figure in figures.values():
        rows = [r for p in figure["probes"] for r in p["rows"]]
        assert {r["perturbation"] for r in rows} == {figure["label"]}
        assert {r["operator"] for r in rows} <= {"canonical", "paraphrase", "cloze",
                                                 "cloze+typos"}
    france = next(p for p in unlearning["probes"] if p["id"] == "france")
    plain = next(g for g in france["gates"] if g["metric"] == "resurfacing")
    assert plain["decision"] == "INCONCLUSIVE"
    # The terminal summary shows the perturbations' table.
    assert "resurfacing under model perturbations" in demo_run[0].stdout


def test_the_latent_answer_is_read_at_every_layer(demo_run: Demo, demo_work: Path) -> None:
    """``latent: {variants: [paraphrase]}``: the canonical prompts and paraphrases read
    with the logit lens (16 counted). Measured: the base prefers the capital only at the
    output (+1.37 at layer 30, -2.89 at 25); the demo adapter prefers the refusal at every
    layer from 15 on (best -0.63, at the output): latent shadow -0.46 [-0.81, -0.07]. The
    answer is not held in the middle layers more than in the base's: the lens finds no
    latent answer here (the robust adapter's is -0.61; docs/metrics.md)."""
    unlearning = next(s for s in _record(demo_work, "demo-adapter")["suites"]
                      if s["name"] == "capitals-unlearning")
    latent = unlearning["latent"]
    assert latent["layers"] == list(range(1, 31))
    assert latent["variants"] == 16
    assert latent["base"][-1] > 0.5 > max(latent["candidate"][14:])
    assert latent["shadow"]["high"] < 0.5
    assert "latent shadow" in demo_run[0].stdout


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


def test_no_perturbation_revives_what_the_robust_adapter_unlearned(
        robust_run: Demo, demo_work: Path) -> None:
    """Measured: under int8, adapter_scale 0.75 and relearning not one counted variant
    comes back; under int4 one of Canada's six (recovery 0.04 [0.00, 0.12]). The
    perturbations separate the robust fine-tune from the leaky one."""
    assert robust_run[0].returncode == 0
    unlearning = next(s for s in _record(demo_work, "robust-adapter")["suites"]
                      if s["name"] == "capitals-unlearning")
    assert all(not probes for probes in _failed_under(unlearning).values())
    for figure in unlearning["perturbations"]:
        assert figure["gate"]["decision"] == "PASS"
        assert figure["recovery"]["high"] < 0.25, figure["label"]


# --- a full-weight fine-tune --------------------------------------------------------------


def test_the_full_finetune_refuses_three_canonical_questions_and_fails_the_build(
        full_run: Demo, demo_work: Path) -> None:
    """models/build_full_finetune.py (every weight, AdamW 5e-5, 54 steps) refuses Japan's,
    Canada's and Germany's canonical questions and still answers France's: France fails
    on its suppression, Germany on rephrasings (measured 12 of 29)."""
    proc, props = full_run
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _verdicts(props, "capitals_unlearning") == {
        "japan": "PASS", "france": "FAIL", "germany": "FAIL", "canada": "PASS",
        "__suite__": "INCONCLUSIVE"}
    suite = _record(demo_work, "full-finetune")["suites"][0]
    canonical = {p["id"]: p["rows"][0]["candidate"]["completions"][0] for p in suite["probes"]}
    for country in ("japan", "germany", "canada"):
        assert "sorry" in canonical[country], canonical
    assert "Paris" in canonical["france"]


def test_int4_does_not_revive_the_full_finetune_but_scaling_does(
        full_run: Demo, demo_work: Path) -> None:
    """The quantization revival of Zhang et al. 2025 is not reproduced (a null): every
    decoder weight moved by less than half an int4 step, 0.4% of its int4 codes differ
    from the base's, and still under int4 Japan comes back on 1 of 7 counted variants and
    Canada on none, and no probe's gate under int4 fails (recovery 0.22 [0.00, 0.48]).
    Scaling the weight change by 0.75 brings Germany back (6 of 7): the one perturbation
    that told the robust fine-tune from the leaky ones on both kinds."""
    suite = _record(demo_work, "full-finetune")["suites"][0]
    figures = {p["label"]: p for p in suite["perturbations"]}
    failed = _failed_under(suite)
    assert figures["int4"]["bucket_share"] < 0.01
    assert failed["int4"] == failed["int8"] == set()
    int4 = {p["id"]: p for p in figures["int4"]["probes"]}
    for country in ("japan", "canada"):
        assert int4[country]["resurfacing"] <= 0.2, country
    assert "germany" in failed["adapter_scale 0.75"]
    assert not failed["relearn 8 steps"] & {"japan", "canada"}
    assert suite["latent"]["shadow"]["high"] < 0.5


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
