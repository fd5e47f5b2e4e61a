"""Model directories that detectors and the meaning check read: weights and settings, never code.

A suite names these directories (``detector: {type: classifier, path: ...}``,
``meaning: {model: ...}``), so whoever writes a suite, or ships a model directory
next to it, chooses them. A directory whose ``config.json`` or
``tokenizer_config.json`` has an ``auto_map`` asks transformers to import its own
Python files; with ``trust_remote_code`` unset, transformers asks on standard input
whether to run them, and a CI job that pipes ``y`` into it runs them. So these
loaders refuse such a directory before transformers sees it, and pass
``trust_remote_code=False`` explicitly on every load as well: nothing is asked,
nothing from the directory runs. ``--probe-trust-remote-code`` is for the models
under test only (docs/errors.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from probe.errors import ModelLoadError
from probe.report.safe_text import visible

# The files whose ``auto_map`` makes AutoConfig, AutoModel or AutoTokenizer import code.
CODE_MAP_FILES = ("config.json", "tokenizer_config.json")
# Passed to every from_pretrained of these loaders, spelled out so no default can change it.
NO_CODE = {"trust_remote_code": False, "local_files_only": True}


def refuse_own_code(directory: Path, what: str) -> None:
    """``ModelLoadError`` when ``directory`` asks to run its own code (an ``auto_map``)."""
    for name in CODE_MAP_FILES:
        file = directory / name
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # absent or unreadable: from_pretrained says what is wrong with it
        if isinstance(data, dict) and data.get("auto_map"):
            raise ModelLoadError(
                f"{what} {visible(directory)}: the model ships its own code (auto_map in "
                f"{name}), and {what}s never run a model's own code; use a model whose "
                "architecture transformers has built in")


def load_error(what: str, directory: Path, err: BaseException) -> ModelLoadError:
    """One line for a failed load: the first line of transformers' message, shortened."""
    lines = str(err).strip().splitlines()
    reason = lines[0].rstrip(". ") if lines else type(err).__name__
    if len(reason) > 300:
        reason = reason[:299] + "\u2026"
    return ModelLoadError(f"cannot load the {what} in {visible(directory)}: "
                          f"{visible(reason)}")
