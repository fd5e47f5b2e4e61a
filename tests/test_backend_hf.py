"""The Hugging Face backend on a tiny random Llama built in a fixture (seconds, no weights).

The model is random, so its completions are gibberish; the tests compare outputs
between code paths (batched vs one by one, base view vs plain base...), which is
what the backend promises, rather than judging the text itself.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hf_fixtures import CPU, PROMPTS, SETTINGS, StandInGenerator

from probe.backends import LoadOptions
from probe.backends.base import Completion, GenerationSettings, ModelPair, Prompt
from probe.backends.hf import HFBackend, load_backend, load_pair, resolve_model_ref
from probe.errors import ModelLoadError, UsageError

pytest_plugins = ["hf_fixtures"]  # the tiny model, its adapters, and backends on them

REPO = Path(__file__).resolve().parents[1]



@pytest.fixture(scope="session")
def base_out(base: HFBackend) -> list[Completion]:
    return base.generate(PROMPTS, SETTINGS)


@pytest.fixture(scope="session")
def tuned_out(pair: ModelPair) -> list[Completion]:
    return pair.candidate.generate(PROMPTS, SETTINGS)


def test_importing_the_backend_does_not_import_torch() -> None:
    code = "import sys, probe.backends.hf; print(sorted({'torch', 'transformers', 'peft'} & " \
           "set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_generation_is_deterministic(base: HFBackend, base_out: list[str],
                                     tiny: dict[str, Path]) -> None:
    assert all(base_out), "the tiny model should produce some text for every prompt"
    assert base.generate(PROMPTS, SETTINGS) == base_out
    assert load_backend(str(tiny["model"]), CPU).generate(PROMPTS, SETTINGS) == base_out


def test_batching_and_left_padding_do_not_change_outputs(base: HFBackend, base_out: list[str],
                                                         tiny: dict[str, Path]) -> None:
    lengths = {len(base.tokenizer(base.render(p)[0])["input_ids"]) for p in PROMPTS}
    assert len(lengths) > 3, "prompts must differ in length for padding to happen"
    # batch_size=1: one by one, no padding at all; 16: one left-padded batch; 3: several
    # batches whose answers must be put back in the caller's order.
    one = load_backend(str(tiny["model"]), LoadOptions(device="cpu", batch_size=1))
    three = load_backend(str(tiny["model"]), LoadOptions(device="cpu", batch_size=3))
    singles = one.generate(PROMPTS, SETTINGS)
    assert base_out == singles
    assert three.generate(PROMPTS, SETTINGS) == singles


def test_empty_prompt_list(base: HFBackend) -> None:
    assert base.generate([], SETTINGS) == []


def test_base_view_equals_plain_base(pair: ModelPair, base_out: list[str]) -> None:
    assert pair.base.generate(PROMPTS, SETTINGS) == base_out


def test_candidate_view_differs_and_views_do_not_leak(pair: ModelPair, base_out: list[str],
                                                      tuned_out: list[str]) -> None:
    assert sum(a != b for a, b in zip(base_out, tuned_out, strict=True)) >= 1
    # Toggling back and forth leaves each view as it was.
    assert pair.base.generate(PROMPTS, SETTINGS) == base_out
    assert pair.candidate.generate(PROMPTS, SETTINGS) == tuned_out


def test_fingerprints(pair: ModelPair, base: HFBackend, tiny: dict[str, Path],
                      tmp_path: Path) -> None:
    assert pair.base.info.fingerprint != pair.candidate.info.fingerprint
    # The base view of an adapter pair is the base model: its results are reusable.
    assert pair.base.info.fingerprint == base.info.fingerprint
    again = load_pair(str(tiny["model"]), str(tiny["adapter"]), CPU)
    assert again.candidate.info.fingerprint == pair.candidate.info.fingerprint
    # Content, not location, decides.
    moved = tmp_path / "moved"
    shutil.copytree(tiny["model"], moved)
    assert load_backend(str(moved), CPU).info.fingerprint == base.info.fingerprint
    bf16 = load_backend(str(tiny["model"]), LoadOptions(device="cpu", dtype="bf16"))
    assert bf16.info.fingerprint != base.info.fingerprint
    assert (pair.base.info.name, pair.candidate.info.name) == (
        str(tiny["model"]), str(tiny["adapter"]))


def test_fingerprint_follows_chat_template(tiny: dict[str, Path], base: HFBackend,
                                           tmp_path: Path) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(tiny["model"], edited)
    template = edited / "chat_template.jinja"
    template.write_text(template.read_text() + "{# changed #}")
    assert load_backend(str(edited), CPU).info.fingerprint != base.info.fingerprint


def test_prefill_is_sent_and_not_echoed(base: HFBackend) -> None:
    text, add_special = base.render(Prompt("Tell me a joke", prefill="Sure,"))
    assert text.endswith("<|im_start|>assistant\nSure,")
    assert add_special is False
    # The same text sent raw gives the same completion: the prefill is part of the
    # prompt, and only tokens after it come back.
    chat = base.generate([Prompt("Tell me a joke", prefill="Sure,")], SETTINGS)
    raw = base.generate([Prompt(text, chat=False)], SETTINGS)
    assert chat == raw
    plain = base.generate([Prompt("Tell me a", prefill=" joke", chat=False)], SETTINGS)
    assert plain == base.generate([Prompt("Tell me a joke", chat=False)], SETTINGS)


def test_chat_false_skips_the_template(base: HFBackend) -> None:
    assert base.render(Prompt("hello", prefill=" there", chat=False)) == ("hello there", True)
    assert "<|im_start|>" in base.render(Prompt("hello"))[0]


def test_each_sequence_stops_at_its_own_eos(base: HFBackend) -> None:
    tok = base.tokenizer
    word = tok("Paris", add_special_tokens=False)["input_ids"]
    eos, pad = tok.eos_token_id, tok.pad_token_id
    first = [*word, eos, *word, pad]  # text after eos must not leak into the answer
    second = [*word, *word, pad, pad][: len(first)]
    model = StandInGenerator([first, second])
    backend = HFBackend(model, tok, name="scripted", fingerprint="x", batch_size=8)
    out = backend.generate([Prompt("a", chat=False), Prompt("b", chat=False)], SETTINGS)
    assert [c.text for c in out] == ["Paris", "ParisParis"]
    assert model.configs[0].do_sample is False
    assert model.configs[0].num_beams == 1


def test_pickle_only_weights_are_refused(tiny: dict[str, Path], base_out: list[str]) -> None:
    with pytest.raises(ModelLoadError, match=r"pickle.*allow_pickle=True"):
        load_backend(str(tiny["pickled"]), CPU)
    allowed = load_backend(str(tiny["pickled"]), LoadOptions(device="cpu", allow_pickle=True))
    assert allowed.generate(PROMPTS, SETTINGS) == base_out


def test_missing_path(tmp_path: Path) -> None:
    message = re.escape("model path './no/such-model' does not exist")
    with pytest.raises(ModelLoadError, match=message):
        load_pair("./no/such-model", "./no/such-model", CPU)
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_model_ref(str(tmp_path / "nothing" / "model.gguf"))


def test_directory_without_a_model(tmp_path: Path) -> None:
    (tmp_path / "x.gguf").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"neither config.json.*x.gguf"):
        resolve_model_ref(str(tmp_path))


def test_refs_resolve_by_kind(tiny: dict[str, Path], tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_model_ref(str(tiny["model"])).kind == "model"
    assert resolve_model_ref(str(tiny["adapter"])).kind == "adapter"
    gguf = tmp_path / "m.Q4.gguf"
    gguf.write_bytes(b"")
    resolved = resolve_model_ref(str(gguf))
    assert (resolved.kind, resolved.location, resolved.gguf_file) == (
        "gguf", str(tmp_path), "m.Q4.gguf")
    monkeypatch.setattr("probe.backends.hf.refs.ensure_smollm2", lambda: tiny["model"])
    assert resolve_model_ref("SmolLM2-135M").location == str(tiny["model"])
    hub = resolve_model_ref("acme-not-cached/some-model")
    assert (hub.kind, hub.location, hub.local) == ("hub", "acme-not-cached/some-model", False)


def test_bad_dtype_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"'fp8'.*auto, float32, fp32, bfloat16"):
        LoadOptions(dtype="fp8")
    with pytest.raises(UsageError, match="batch_size: must be a positive integer"):
        LoadOptions(batch_size=0)
    with pytest.raises(UsageError, match="not a device"):
        LoadOptions(device="toaster")


def test_adapter_for_another_base_is_refused(tiny: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError, match=r"does not fit base model.*different base model"):
        load_pair(str(tiny["model"]), str(tiny["other_adapter"]), CPU)


def test_adapter_for_another_architecture_is_refused(tiny: dict[str, Path],
                                                     tmp_path: Path) -> None:
    adapter = tmp_path / "gpt2-adapter"
    shutil.copytree(tiny["adapter"], adapter)
    config_path = adapter / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config.update(target_modules=["c_attn"], base_model_name_or_path="gpt2")
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"targets modules \['c_attn'\].*gpt2"):
        load_pair(str(tiny["model"]), str(adapter), CPU)


def test_adapter_naming_another_base_warns_but_loads(tiny: dict[str, Path],
                                                     tuned_out: list[str],
                                                     tmp_path: Path) -> None:
    adapter = tmp_path / "renamed-adapter"
    shutil.copytree(tiny["adapter"], adapter)
    config_path = adapter / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = "acme/other-model"
    config_path.write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="names 'acme/other-model' as its base"):
        pair = load_pair(str(tiny["model"]), str(adapter), CPU)
    assert pair.candidate.generate(PROMPTS, SETTINGS) == tuned_out


def test_adapter_as_base_is_refused(tiny: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError, match="is a peft adapter"):
        load_pair(str(tiny["adapter"]), str(tiny["model"]), CPU)


def test_same_model_twice_is_loaded_once(tiny: dict[str, Path]) -> None:
    same = load_pair(str(tiny["model"]), str(tiny["model"]), CPU)
    assert isinstance(same.base, HFBackend)
    assert isinstance(same.candidate, HFBackend)
    assert same.base.model is same.candidate.model
    assert same.base.info.fingerprint == same.candidate.info.fingerprint


def test_hub_id_loads_from_the_local_cache_offline(tiny: dict[str, Path], base: HFBackend,
                                                   base_out: list[str],
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    commit = "0" * 40
    repo = tmp_path / "hub" / "models--acme--tiny"
    shutil.copytree(tiny["model"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    backend = load_backend("acme/tiny", CPU)
    assert backend.info.name == "acme/tiny"
    assert backend.info.fingerprint == base.info.fingerprint
    assert backend.generate(PROMPTS, SETTINGS) == base_out
    with pytest.raises(ModelLoadError, match="hf download acme/missing"):
        load_backend("acme/missing", CPU)


def test_a_completion_knows_whether_generation_cut_it(base: HFBackend) -> None:
    tok = base.tokenizer
    word = tok("Paris", add_special_tokens=False)["input_ids"]
    space = tok(" \n", add_special_tokens=False)["input_ids"]
    eos = tok.eos_token_id
    limit = len(word) + len(space)
    # Row 1 uses every token it may and ends in whitespace, which the text drops, so
    # counting the text's tokens would call it short: only the decoder knows it was cut.
    # Row 2 ends at an eos one token before the limit.
    cut_row = [*word, *space]
    ended_row = [*word, eos, *([eos] * (limit - len(word) - 1))]
    model = StandInGenerator([cut_row, ended_row])
    backend = HFBackend(model, tok, name="stand-in", fingerprint="x", batch_size=8)
    cut, ended = backend.generate([Prompt("a", chat=False), Prompt("b", chat=False)],
                                  GenerationSettings(max_new_tokens=limit))
    assert cut.text == ended.text == "Paris"
    assert isinstance(cut, Completion)
    assert isinstance(ended, Completion)
    assert len(tok(cut.text, add_special_tokens=False)["input_ids"]) < limit
    assert (cut.cut, ended.cut) == (True, False)


def test_the_split_decoder_marks_cut_completions(base: HFBackend) -> None:
    settings = GenerationSettings(max_new_tokens=3)
    split = base.split()
    assert split is not None
    eos = base.tokenizer.eos_token_id
    original = split.head.forward
    steps: list[int] = []

    def head(states: Any) -> Any:
        logits = original(states)
        steps.append(states.shape[0])
        logits[:, eos] = logits.min() - 10  # row 1 never ends: it runs into the limit
        if len(steps) == 1:  # row 0 ends at once
            logits[0, eos] = logits[0].max() + 10
        return logits

    split.head.forward = head
    try:
        ended, cut = base.generate([PROMPTS[2], PROMPTS[0]], settings)
    finally:
        del split.head.forward
    assert isinstance(ended, Completion)
    assert isinstance(cut, Completion)
    assert ended == Completion("", cut=False)
    assert steps == [2, 1, 1]  # row 0 left the batch after the first step
    assert cut.cut is True
