"""Damaged model files: truncated or empty weights, headers that lie, configs that are not
JSON, pickles that are not checkpoints, GGUF files cut short (issue 14, item 9).

Each case copies one tiny random model and an adapter for it (built once, when this
module is imported) into the project, damages one file, and runs ``probe run`` and
pytest on it: one ``ModelLoadError`` line that names the file, exit 3, no traceback.
"""

from __future__ import annotations

import atexit
import json
import shutil
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.hostile.corpus import Case, Run

KLASS = "model files"
PAIR = ("./model", "./adapter")
Damage = Callable[[Path], None]


def _build() -> Path:
    """A tiny model's files (config, random weights, tokenizer), an adapter for it, and
    its weights as a torch.save pickle, in a temporary directory removed at exit.

    Every case fails on its damaged file before any weights load, so the files are
    written directly, without building the model (seconds saved at collection). torch
    and transformers are imported here, at import, never inside a case: pytester puts
    ``sys.modules`` back after each in-process run, and torch cannot be imported twice
    in one process.
    """
    import torch
    from hf_fixtures import _tokenizer
    from safetensors.torch import save_file
    from transformers import LlamaConfig


    root = Path(tempfile.mkdtemp(prefix="probe-corpus-models-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    tokenizer = _tokenizer()
    hidden, vocab = 16, len(tokenizer)
    LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                max_position_embeddings=64).save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    generator = torch.Generator().manual_seed(0)
    weights = {name: torch.randn(*shape, generator=generator) for name, shape in (
        ("model.embed_tokens.weight", (vocab, hidden)), ("lm_head.weight", (vocab, hidden)),
        ("model.layers.0.self_attn.q_proj.weight", (hidden, hidden)),
        ("model.layers.0.self_attn.v_proj.weight", (hidden, hidden)))}
    save_file(weights, str(root / "model" / "model.safetensors"), metadata={"format": "pt"})
    torch.save(weights, root / "weights.bin")
    adapter = root / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8,
        "target_modules": ["q_proj", "v_proj"], "base_model_name_or_path": "tiny"}),
        encoding="utf-8")
    prefix = "base_model.model.model.layers.0.self_attn"
    save_file({f"{prefix}.{module}.lora_{half}.weight": torch.randn(*shape, generator=generator)
               for module in ("q_proj", "v_proj")
               for half, shape in (("A", (4, hidden)), ("B", (hidden, 4)))},
              str(adapter / "adapter_model.safetensors"))
    return root


TINY = _build()


def _copy(root: Path) -> None:
    for name in ("model", "adapter"):
        shutil.copytree(TINY / name, root / name)


def cut(rel: str, keep: int | float) -> Damage:
    """Keep the first ``keep`` bytes (a fraction: that share of the file)."""
    def damage(root: Path) -> None:
        data = (root / rel).read_bytes()
        (root / rel).write_bytes(data[: int(len(data) * keep) if isinstance(keep, float)
                                      else keep])
    return damage


def write(rel: str, data: bytes) -> Damage:
    def damage(root: Path) -> None:
        (root / rel).write_bytes(data)
    return damage


def header_length(rel: str, length: int) -> Damage:
    """A safetensors file whose first 8 bytes claim ``length`` bytes of header."""
    def damage(root: Path) -> None:
        data = (root / rel).read_bytes()
        (root / rel).write_bytes(struct.pack("<Q", length) + data[8:])
    return damage


def header_garbage(rel: str) -> Damage:
    """The header's bytes replaced, its length kept: the header is not JSON."""
    def damage(root: Path) -> None:
        data = (root / rel).read_bytes()
        (length,) = struct.unpack("<Q", data[:8])
        (root / rel).write_bytes(data[:8] + b"\x00" * length + data[8 + length:])
    return damage


def header_edit(rel: str, edit: Callable[[dict[str, object]], None]) -> Damage:
    """Rewrite the JSON header (keeping its length, padded with spaces)."""
    def damage(root: Path) -> None:
        data = (root / rel).read_bytes()
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + length])
        edit(header)
        raw = json.dumps(header, separators=(",", ":")).encode().ljust(length)
        assert len(raw) == length
        (root / rel).write_bytes(data[:8] + raw + data[8 + length:])
    return damage


def _first_tensor_offsets(header: dict[str, object]) -> None:
    key = next(k for k in header if k != "__metadata__")
    entry = header[key]
    assert isinstance(entry, dict)
    entry["data_offsets"] = "x"


def config_edit(rel: str, **fields: object) -> Damage:
    def damage(root: Path) -> None:
        config = json.loads((root / rel).read_text(encoding="utf-8"))
        config.update(fields)
        (root / rel).write_text(json.dumps(config), encoding="utf-8")
    return damage


def pickled(data: bytes | None) -> Damage:
    """The model's weights as pytorch_model.bin only (``data``, or a real torch.save)."""
    def damage(root: Path) -> None:
        (root / "model" / "model.safetensors").unlink()
        weights = (TINY / "weights.bin").read_bytes()
        (root / "model" / "pytorch_model.bin").write_bytes(weights if data is None else data)
    return damage


def both(*damages: Damage) -> Damage:
    def damage(root: Path) -> None:
        for one in damages:
            one(root)
    return damage


def model_case(id: str, damage: Damage, says: str, note: str, *,
               models: tuple[str, str] = PAIR, extra: tuple[str, ...] = ()) -> Case:
    """``probe run`` and pytest on the damaged pair: one line, exit 3. ``says`` follows
    the project's own path, which differs from run to run."""
    def make(root: Path) -> None:
        _copy(root)
        damage(root)

    base, candidate = models
    return Case(id=f"models_{id}", klass=KLASS, make=make, note=note, runs=(
        Run("probe", ("run", "suite.yaml", "--base", base, "--candidate", candidate,
                      "--no-cache", *extra), 3, says),
        Run("pytest", ("suite.yaml", "--probe-base", base, "--probe-candidate", candidate,
                       "--probe-no-cache", *(f"--probe-{e[2:]}" for e in extra)), 3, says),
    ))


ST = "model/model.safetensors"
AD = "adapter/adapter_model.safetensors"
GGUF_HEADER = b"GGUF" + struct.pack("<IQQ", 3, 0, 5)  # 5 metadata entries, none there


def _gguf(data: bytes) -> Damage:
    return write("m.gguf", data)


GGUF = ("./m.gguf", "./m.gguf")

CASES: list[Case] = [
    model_case("safetensors_cut_at_5_bytes", cut(ST, 5),
               "/model/model.safetensors: truncated safetensors header: the file has 5 bytes",
               "a download stopped after five bytes"),
    model_case("safetensors_cut_mid_data", cut(ST, 0.5),
               "/model/model.safetensors: truncated safetensors file: its header lists",
               "a download stopped half-way through the tensors"),
    model_case("safetensors_cut_in_header", cut(ST, 40),
               "/model/model.safetensors: truncated, or not a safetensors file: its header "
               "length", "a download stopped inside the header"),
    model_case("safetensors_empty", write(ST, b""),
               "/model/model.safetensors: empty file (0 bytes), not a safetensors file",
               "a zero-byte weights file"),
    model_case("safetensors_header_longer_than_file", header_length(ST, 10**12),
               "its header length (1000000000000 bytes) is larger than the rest of the file",
               "a header length that points past the end"),
    model_case("safetensors_header_not_json", header_garbage(ST),
               "/model/model.safetensors: not a safetensors file: its header is not JSON",
               "NUL bytes where the JSON header should be"),
    model_case("safetensors_is_text", write(ST, b"version https://git-lfs.github.com/spec/v1\n"
                                                b"oid sha256:" + b"0" * 64 + b"\nsize 161496\n"),
               "/model/model.safetensors: truncated, or not a safetensors file",
               "a Git LFS pointer checked out instead of the weights"),
    model_case("safetensors_trailing_bytes",
               lambda root: (root / ST).write_bytes((root / ST).read_bytes() + b"\x00" * 3),
               "/model/model.safetensors: damaged safetensors file: 3 bytes follow the last "
               "tensor", "bytes appended after the last tensor"),
    model_case("safetensors_bad_offsets", header_edit(ST, _first_tensor_offsets),
               "damaged safetensors header: tensor 1 has no valid data_offsets",
               "a header whose tensor offsets are not numbers"),
    model_case("config_not_json", write("model/config.json", b'{"model_type": "llama",'),
               "/model/config.json: not valid JSON (line 1, column 24)",
               "config.json cut short"),
    model_case("config_is_a_list", write("model/config.json", b"[1, 2, 3]"),
               "/model/config.json: not a JSON object but a list", "config.json is a list"),
    model_case("config_latin1", write("model/config.json", b'{"name": "caf\xe9"}'),
               "/model/config.json: not valid JSON: it is not UTF-8 text",
               "config.json in Latin-1"),
    model_case("tokenizer_not_json", cut("model/tokenizer.json", 0.5),
               "/model/tokenizer.json: not valid JSON", "tokenizer.json cut in half"),
    model_case("tokenizer_config_not_json", write("model/tokenizer_config.json", b"{"),
               "/model/tokenizer_config.json: not valid JSON (line 1, column 2)",
               "tokenizer_config.json with one brace"),
    model_case("pickle_garbage", pickled(b"this is not a pickle at all" * 4),
               "/model/pytorch_model.bin: not a PyTorch checkpoint: neither a torch.save zip "
               "archive nor a pickle", "a pytorch_model.bin that is text, with --allow-pickle",
               extra=("--allow-pickle",)),
    model_case("pickle_cut", both(pickled(None), cut("model/pytorch_model.bin", 0.5)),
               "/model/pytorch_model.bin: truncated PyTorch checkpoint: a zip archive without "
               "the directory at its end", "a torch.save zip cut in half, with --allow-pickle",
               extra=("--allow-pickle",)),
    model_case("adapter_config_not_json", write("adapter/adapter_config.json", b"{'r': 4}"),
               "/adapter/adapter_config.json: not valid JSON (line 1, column 2)",
               "an adapter config with Python quotes"),
    model_case("adapter_config_rank_is_text", config_edit("adapter/adapter_config.json",
                                                          r="four"),
               "/adapter/adapter_config.json: 'r' must be a positive integer, not a string",
               "a LoRA rank that is a string"),
    model_case("adapter_config_targets_a_number",
               config_edit("adapter/adapter_config.json", target_modules=5),
               "'target_modules' must be a module name, a regular expression or a list of "
               "names, not a number", "target modules that are a number"),
    model_case("adapter_config_alpha_is_a_list",
               config_edit("adapter/adapter_config.json", lora_alpha=[8]),
               "'lora_alpha' must be a number, not a list", "a LoRA alpha that is a list"),
    model_case("adapter_safetensors_cut_at_5_bytes", cut(AD, 5),
               "/adapter/adapter_model.safetensors: truncated safetensors header",
               "the adapter's weights cut at five bytes (the pair check reads this header)"),
    model_case("adapter_safetensors_cut_mid_data", cut(AD, 0.6),
               "/adapter/adapter_model.safetensors: truncated safetensors file",
               "the adapter's weights cut inside the tensors"),
    model_case("adapter_safetensors_empty", write(AD, b""),
               "/adapter/adapter_model.safetensors: empty file (0 bytes)",
               "a zero-byte adapter"),
    model_case("adapter_safetensors_header_not_json", header_garbage(AD),
               "/adapter/adapter_model.safetensors: not a safetensors file: its header is "
               "not JSON", "the adapter's header overwritten"),
    model_case("gguf_bad_magic", _gguf(b"GGML" + b"\x00" * 60),
               "/m.gguf: not a GGUF file: it does not start with the GGUF magic bytes",
               "an old GGML file named .gguf", models=GGUF),
    model_case("gguf_empty", _gguf(b""), "/m.gguf: empty file (0 bytes), not a GGUF file",
               "a zero-byte GGUF file", models=GGUF),
    model_case("gguf_cut_in_header", _gguf(GGUF_HEADER[:10]),
               "/m.gguf: truncated GGUF file: 10 bytes, fewer than its 24-byte header",
               "a GGUF file cut inside its fixed header", models=GGUF),
    model_case("gguf_cut_in_metadata", _gguf(GGUF_HEADER + b"\x10\x00"),
               "m.gguf is a truncated or damaged GGUF file",
               "a GGUF file cut inside its metadata (the reader's struct error)", models=GGUF),
    model_case("damaged_base_and_adapter", both(cut(ST, 5), write(AD, b"")),
               "/model/model.safetensors: truncated safetensors header",
               "both damaged: the base, checked first, is named"),
]

