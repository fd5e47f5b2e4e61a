"""Cheap structural checks of a model's files before anything loads them (issue 14).

A truncated download, an empty file or a file that is not what its name says would
otherwise fail deep inside safetensors, torch or transformers, as a traceback that
does not say which file is wrong. Each check reads headers and small JSON files only
(never the tensor data) and raises one ``ModelLoadError`` line that names the file
and what is wrong with it; no message quotes a file's content.

- safetensors: the 8-byte header length, the JSON header, and that the data the
  header lists is exactly what the file holds (``check_safetensors``);
- JSON files (config, adapter config, tokenizer files): valid JSON objects, and an
  adapter config's fields of the types peft expects;
- pickles (only when allowed): the zip archive ``torch.save`` writes is whole, or the
  file is at least a pickle; nothing is unpickled;
- GGUF: the magic bytes (the rest of the format is checked by its reader, whose
  failures ``model`` turns into the same kind of line).
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from probe.backends.base import LoadOptions
from probe.backends.hf.files import TOKENIZER_FILES, weight_names
from probe.backends.hf.refs import ResolvedRef
from probe.errors import ModelLoadError

# safetensors refuses headers over 100 MB; so do we, before reading one into memory.
_MAX_HEADER = 100 * 1024 * 1024
_JSON_TOKENIZER_FILES = tuple(n for n in TOKENIZER_FILES if n.endswith(".json"))
_GGUF_MAGIC = b"GGUF"
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6
_PICKLE_MAGIC = b"\x80"  # a pickle of protocol 2 or later: torch.save's legacy format


def _damaged(path: Path, problem: str) -> ModelLoadError:
    return ModelLoadError(f"{path}: {problem}")


def check_safetensors(path: Path) -> None:
    """Raise ``ModelLoadError`` unless ``path`` is a whole safetensors file."""
    size = path.stat().st_size
    if size == 0:
        raise _damaged(path, "empty file (0 bytes), not a safetensors file")
    if size < 8:
        raise _damaged(path, f"truncated safetensors header: the file has {size} bytes, "
                             "fewer than the 8 that give the header's length")
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > size - 8 or length > _MAX_HEADER:
            raise _damaged(path, f"truncated, or not a safetensors file: its header length "
                                 f"({length} bytes) is larger than the rest of the file "
                                 f"({size - 8} bytes)")
        raw = f.read(length)
    try:
        header = json.loads(raw)
    except ValueError:  # UnicodeDecodeError is one too
        raise _damaged(path, "not a safetensors file: its header is not JSON") from None
    if not isinstance(header, dict):
        raise _damaged(path, "not a safetensors file: its header is not a JSON object")
    end = _data_end(path, header)
    data = size - 8 - length
    if data < end:
        raise _damaged(path, f"truncated safetensors file: its header lists {end} bytes of "
                             f"tensor data, but only {data} follow it")
    if data > end:
        raise _damaged(path, f"damaged safetensors file: {data - end} bytes follow the last "
                             "tensor its header lists")


def _data_end(path: Path, header: dict[str, Any]) -> int:
    """Where the last tensor the header lists ends, relative to the data."""
    end = 0
    tensors = [info for key, info in header.items() if key != "__metadata__"]
    for number, info in enumerate(tensors, start=1):
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and not isinstance(o, bool) and o >= 0
                        for o in offsets) and offsets[0] <= offsets[1]):
            raise _damaged(path, f"damaged safetensors header: tensor {number} has no valid "
                                 "data_offsets")
        end = max(end, offsets[1])
    return end


def read_json_object(path: Path) -> dict[str, Any]:
    """``path`` parsed as a JSON object, or a ``ModelLoadError`` that says where it breaks."""
    try:
        value = json.loads(path.read_bytes())
    except json.JSONDecodeError as err:
        raise _damaged(path, f"not valid JSON (line {err.lineno}, column {err.colno})") from None
    except UnicodeDecodeError:
        raise _damaged(path, "not valid JSON: it is not UTF-8 text") from None
    except OSError as err:
        raise _damaged(path, f"cannot be read: {err.strerror}") from None
    if not isinstance(value, dict):
        raise _damaged(path, f"not a JSON object but {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    names = ((bool, "a boolean"), (int, "a number"), (float, "a number"), (str, "a string"),
             (list, "a list"), (dict, "an object"))
    return next((name for kind, name in names if isinstance(value, kind)), "null")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return _is_int(v) or isinstance(v, float)


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


# The adapter_config.json fields peft reads as given: one of the wrong type fails deep
# inside peft (``'int' object is not iterable``) or, worse, is applied as something else.
_ADAPTER_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "peft_type": (lambda v: isinstance(v, str), "a string"),
    "task_type": (lambda v: v is None or isinstance(v, str), "a string"),
    "base_model_name_or_path": (lambda v: v is None or isinstance(v, str), "a string"),
    "r": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "lora_alpha": (_is_number, "a number"),
    "lora_dropout": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "target_modules": (lambda v: v is None or isinstance(v, str) or _str_list(v),
                       "a module name, a regular expression or a list of names"),
    "modules_to_save": (lambda v: v is None or _str_list(v), "a list of module names"),
    "fan_in_fan_out": (lambda v: isinstance(v, bool), "true or false"),
    "bias": (lambda v: isinstance(v, str), "a string"),
    "layers_to_transform": (lambda v: v is None or _is_int(v) or (
        isinstance(v, list) and all(_is_int(x) for x in v)), "an integer or a list of them"),
    "rank_pattern": (lambda v: v is None or isinstance(v, dict), "a mapping"),
    "alpha_pattern": (lambda v: v is None or isinstance(v, dict), "a mapping"),
}


def check_adapter_config(path: Path) -> dict[str, Any]:
    """``adapter_config.json``, a JSON object whose known fields have the right types."""
    config = read_json_object(path)
    for key, (valid, expected) in _ADAPTER_FIELDS.items():
        if key in config and not valid(config[key]):
            raise _damaged(path, f"'{key}' must be {expected}, not {_json_type(config[key])}")
    return config


def check_torch_checkpoint(path: Path) -> None:
    """A pickle-based weights file looks like what ``torch.save`` writes: a whole zip archive,
    or a legacy pickle. Only its first bytes and the zip directory are read; nothing is
    unpickled here."""
    with path.open("rb") as f:
        head = f.read(4)
    if not head:
        raise _damaged(path, "empty file (0 bytes), not a PyTorch checkpoint")
    if head == _ZIP_MAGIC:
        if not zipfile.is_zipfile(path):  # the directory at the end is gone
            raise _damaged(path, "truncated PyTorch checkpoint: a zip archive without the "
                                 "directory at its end")
        return
    if not head.startswith(_PICKLE_MAGIC):
        raise _damaged(path, "not a PyTorch checkpoint: neither a torch.save zip archive nor "
                             "a pickle")


def check_gguf(path: Path) -> None:
    """The GGUF magic bytes; the reader checks the rest (``model.load_model``)."""
    with path.open("rb") as f:
        head = f.read(24)
    if not head:
        raise _damaged(path, "empty file (0 bytes), not a GGUF file")
    if not head.startswith(_GGUF_MAGIC):
        raise _damaged(path, "not a GGUF file: it does not start with the GGUF magic bytes")
    if len(head) < 24:
        raise _damaged(path, f"truncated GGUF file: {len(head)} bytes, fewer than its "
                             "24-byte header")


def _check_json_files(directory: Path, names: Iterable[str]) -> None:
    for name in names:
        if (directory / name).is_file():
            read_json_object(directory / name)


def check_files(resolved: ResolvedRef, options: LoadOptions) -> None:
    """Check the files ``resolved`` will load from (local models, GGUF files and adapters;
    a hub model's files are checked by their readers, see ``model.load_model``)."""
    directory = Path(resolved.location)
    if resolved.kind == "gguf" and resolved.gguf_file:
        check_gguf(directory / resolved.gguf_file)
    elif resolved.kind == "model":
        _check_json_files(directory, ("config.json", "model.safetensors.index.json",
                                      "pytorch_model.bin.index.json", *_JSON_TOKENIZER_FILES))
        for name in weight_names(directory, options.allow_pickle):
            if name.endswith(".safetensors"):
                check_safetensors(directory / name)
            elif name.endswith(".bin"):  # only when pickles are allowed, see weight_names
                check_torch_checkpoint(directory / name)
    elif resolved.kind == "adapter":
        check_adapter_config(directory / "adapter_config.json")
        weights = directory / "adapter_model.safetensors"
        if weights.is_file():
            check_safetensors(weights)
        elif options.allow_pickle and (directory / "adapter_model.bin").is_file():
            check_torch_checkpoint(directory / "adapter_model.bin")
