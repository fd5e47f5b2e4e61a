"""Damaged model files are one ``ModelLoadError`` line naming the file, exit 3 (issue 14).

Truncated, empty or lying safetensors files, configs and tokenizer files that are not
JSON, adapter configs with wrong types, pickles that are not checkpoints and GGUF files
cut short: each is found before (or instead of) a traceback from safetensors, torch or
transformers. The corpus (``tests/hostile/cases_models.py``) runs the same through both
front ends; these tests pin the library's messages on a real tiny model.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hf_fixtures import CPU

from probe.backends import LoadOptions
from probe.backends.hf import load_backend, load_pair, resolve_model_ref
from probe.backends.hf.compat import check_pair
from probe.backends.hf.integrity import check_safetensors
from probe.backends.hf.model import damaged_error
from probe.cli import main as probe_main
from probe.errors import ModelLoadError, UsageError
from tests.conftest import VALID_SUITE

pytest_plugins = ["hf_fixtures"]

Damage = Callable[[Path], None]
ST, AD = "model/model.safetensors", "adapter/adapter_model.safetensors"


def _cut(rel: str, keep: int) -> Damage:
    def damage(root: Path) -> None:
        data = (root / rel).read_bytes()
        (root / rel).write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])
    return damage


def _write(rel: str, data: bytes) -> Damage:
    def damage(root: Path) -> None:
        (root / rel).write_bytes(data)
    return damage


def _header_length(length: int) -> Damage:
    def damage(root: Path) -> None:
        data = (root / ST).read_bytes()
        (root / ST).write_bytes(struct.pack("<Q", length) + data[8:])
    return damage


def _header_not_json(rel: str) -> Damage:
    def damage(root: Path) -> None:
        data = (root / rel).read_bytes()
        (length,) = struct.unpack("<Q", data[:8])
        (root / rel).write_bytes(data[:8] + b"\xff" * length + data[8 + length:])
    return damage


def _adapter_config(**fields: object) -> Damage:
    def damage(root: Path) -> None:
        path = root / "adapter" / "adapter_config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))
    return damage


def _pickle_only(data: bytes | None) -> Damage:
    """Only pytorch_model.bin: ``data``, or half of a real torch.save archive."""
    def damage(root: Path) -> None:
        import torch
        from safetensors.torch import load_file

        weights = root / "model" / "pytorch_model.bin"
        torch.save(load_file(str(root / ST)), weights)
        (root / ST).unlink()
        whole = weights.read_bytes()
        weights.write_bytes(whole[: len(whole) // 2] if data is None else data)
    return damage


@pytest.fixture
def copy(tiny: dict[str, Path], tmp_path: Path) -> Path:
    """The tiny model and its adapter, copied to be damaged."""
    for name in ("model", "adapter"):
        shutil.copytree(tiny[name], tmp_path / name)
    return tmp_path


@pytest.mark.parametrize(("damage", "file", "problem"), [
    (_cut(ST, 5), ST, "truncated safetensors header: the file has 5 bytes, fewer than the 8 "
                      "that give the header's length"),
    (_cut(ST, -1000), ST, "truncated safetensors file: its header lists"),
    (_write(ST, b""), ST, "empty file (0 bytes), not a safetensors file"),
    (_header_length(2**40), ST, "truncated, or not a safetensors file: its header length "
                                "(1099511627776 bytes) is larger than the rest of the file"),
    (_header_not_json(ST), ST, "not a safetensors file: its header is not JSON"),
    (_write("model/config.json", b"{not json"), "model/config.json",
     "not valid JSON (line 1, column 2)"),
    (_write("model/tokenizer.json", b'{"version": "1.0",'), "model/tokenizer.json",
     "not valid JSON (line 1, column 19)"),
    (_write("adapter/adapter_config.json", b"[]"), "adapter/adapter_config.json",
     "not a JSON object but a list"),
    (_adapter_config(r="4"), "adapter/adapter_config.json",
     "'r' must be a positive integer, not a string"),
    (_adapter_config(target_modules={"q_proj": 1}), "adapter/adapter_config.json",
     "'target_modules' must be a module name, a regular expression or a list of names, "
     "not an object"),
    (_cut(AD, 5), AD, "truncated safetensors header"),
    (_cut(AD, -10), AD, "truncated safetensors file: its header lists"),
    (_header_not_json(AD), AD, "not a safetensors file: its header is not JSON"),
])
def test_a_damaged_file_is_one_line_that_names_it(copy: Path, damage: Damage, file: str,
                                                  problem: str) -> None:
    damage(copy)
    with pytest.raises(ModelLoadError) as info:
        load_pair(str(copy / "model"), str(copy / "adapter"), CPU)
    # A damaged file is not a wrong pair: exit 3, not the usage error of a mismatch.
    assert not isinstance(info.value, UsageError)
    message = str(info.value)
    assert message.startswith(f"{copy / file}: {problem}")
    assert "\n" not in message


@pytest.mark.parametrize(("data", "problem"), [
    (b"garbage, not a pickle" * 5, "not a PyTorch checkpoint: neither a torch.save zip "
                                   "archive nor a pickle"),
    (b"", "empty file (0 bytes), not a PyTorch checkpoint"),
    (None, "truncated PyTorch checkpoint: a zip archive without the directory at its end"),
])
def test_a_damaged_pickle_is_named_before_anything_unpickles_it(
        copy: Path, data: bytes | None, problem: str) -> None:
    _pickle_only(data)(copy)
    with pytest.raises(ModelLoadError) as info:
        load_backend(str(copy / "model"), LoadOptions(device="cpu", allow_pickle=True))
    assert str(info.value) == f"{copy / 'model' / 'pytorch_model.bin'}: {problem}"


def test_a_pickle_that_fails_to_load_is_one_line_too(copy: Path) -> None:
    # A pickle (the magic byte) that is not a checkpoint gets past the cheap check:
    # torch's loader fails on it, and that failure is the same kind of line.
    _pickle_only(pickle.dumps([1, 2, 3], protocol=2))(copy)
    with pytest.raises(ModelLoadError) as info:
        load_backend(str(copy / "model"), LoadOptions(device="cpu", allow_pickle=True))
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"cannot load model {str(copy / 'model')!r}: ")


@pytest.mark.parametrize(("data", "problem"), [
    (b"", "m.gguf: empty file (0 bytes), not a GGUF file"),
    (b"GGML" + b"\0" * 40, "m.gguf: not a GGUF file: it does not start with the GGUF magic "
                            "bytes"),
    (b"GGUF\x03\0\0\0", "m.gguf: truncated GGUF file: 8 bytes, fewer than its 24-byte header"),
    # Past the fixed header, the GGUF reader fails (a struct error): the same kind of line.
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 5) + b"\x10\0",
     "cannot load model '{ref}': m.gguf is a truncated or damaged GGUF file"),
])
def test_a_damaged_gguf_file_is_one_line(tmp_path: Path, data: bytes, problem: str) -> None:
    (tmp_path / "m.gguf").write_bytes(data)
    ref = str(tmp_path / "m.gguf")
    with pytest.raises(ModelLoadError) as info:
        load_backend(ref, CPU)
    assert str(info.value).endswith(problem.format(ref=ref))


def test_the_checks_accept_whole_files(tiny: dict[str, Path]) -> None:
    check_safetensors(tiny["model"] / "model.safetensors")
    check_safetensors(tiny["adapter"] / "adapter_model.safetensors")


def test_the_pair_check_turns_a_bad_adapter_header_into_a_load_error(copy: Path) -> None:
    # Called alone, without the file checks before it: its own reading of the header must
    # not be a traceback either, nor a usage error.
    _header_not_json(AD)(copy)
    base, adapter = (resolve_model_ref(str(copy / n)) for n in ("model", "adapter"))
    with pytest.raises(ModelLoadError) as info:
        check_pair(base, adapter, CPU)
    assert not isinstance(info.value, UsageError)
    assert str(info.value) == f"{copy / AD}: damaged safetensors file (SafetensorError)"


def test_reader_errors_the_checks_cannot_see_are_named_too() -> None:
    from safetensors import SafetensorError

    hub = resolve_model_ref("acme/model")
    gguf = type(hub)("x.gguf", "gguf", "/d", "x.gguf")
    cases = [
        (hub, SafetensorError("Error while deserializing header: header too small"),
         "cannot load model 'acme/model': a safetensors file is damaged (Error while "
         "deserializing header: header too small)"),
        (hub, pickle.UnpicklingError("invalid load key, 'x'."), "cannot load model "
         "'acme/model': a pickle-based weights file (pytorch_model.bin) is not a readable "
         "PyTorch checkpoint: truncated, damaged, or not made by torch.save"),
        (gguf, struct.error("unpack_from requires a buffer of at least 24 bytes"),
         "cannot load model 'x.gguf': x.gguf is a truncated or damaged GGUF file"),
    ]
    for ref, err, message in cases:
        found = damaged_error(ref, err)
        assert found is not None
        assert str(found) == message
    assert damaged_error(hub, ValueError("some other problem")) is None


def test_probe_run_prints_one_line_and_exits_3(copy: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _cut(ST, 5)(copy)
    (copy / "suite.yaml").write_text(VALID_SUITE, encoding="utf-8")
    monkeypatch.chdir(copy)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = probe_main(["run", "suite.yaml", "--base", "./model", "--candidate",
                           "./adapter", "--no-cache"])
    assert code == 3
    assert err.getvalue().splitlines() == [
        f"error: ModelLoadError: {copy / ST}: truncated safetensors header: the file has 5 "
        "bytes, fewer than the 8 that give the header's length"]


def test_pytest_ends_with_one_line_and_exit_3(copy: Path, pytester: pytest.Pytester) -> None:
    _cut(AD, 5)(copy)
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites" / "s.yaml").write_text(VALID_SUITE, encoding="utf-8")
    result = pytester.runpytest("suites", "--probe-base", str(copy / "model"),
                                "--probe-candidate", str(copy / "adapter"),
                                "--probe-no-cache", "-p", "no:cacheprovider")
    assert result.ret == 3
    out = result.stdout.str()
    assert out.count("ModelLoadError:") == 1
    assert f"ModelLoadError: {copy / AD}: truncated safetensors header" in out
    assert "Traceback" not in out
    assert "= ERRORS =" not in out
