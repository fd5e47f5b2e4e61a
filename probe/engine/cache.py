"""On-disk cache of completions, so a killed run resumes and base results are reused.

Keyed by the model's fingerprint (weights, adapter, tokenizer, chat template,
dtype), the decoding settings, the exact prompt and ``CACHE_SCHEMA`` (bumped when
the generation code changes what it would produce); never by a model's name.
Each model gets an append-only JSON-lines file; every line carries a checksum of
its own, so a line torn by a kill is detected and simply recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path

from probe.backends.base import GenerationSettings
from probe.operators.base import Prompt

CACHE_SCHEMA = 1


def request_key(kind: str, settings: object, prompt: Prompt, *extra: object) -> str:
    """The cache key of one model request (model-independent part): what is asked
    (``kind``: generate, sample, score), the settings, the prompt and ``extra``
    (a sampling seed, a completion to score)."""
    settings_dict = asdict(settings) if is_dataclass(settings) and not isinstance(
        settings, type) else None
    payload = json.dumps([CACHE_SCHEMA, kind, settings_dict, prompt.text, prompt.prefill,
                          prompt.chat, *extra], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def prompt_key(settings: GenerationSettings, prompt: Prompt) -> str:
    """The cache key of a greedy completion of ``prompt`` under ``settings``."""
    return request_key("generate", settings, prompt)


def _checksum(key: str, value: str) -> str:
    return hashlib.sha256(f"{key}\x00{value}".encode()).hexdigest()[:16]


class CompletionCache:
    """Completions of one model, stored under ``root/<fingerprint>.jsonl``.

    ``root=None`` keeps everything in memory only (``--probe-no-cache``).
    """

    def __init__(self, root: Path | None, fingerprint: str) -> None:
        self.path = root / f"{fingerprint}.jsonl" if root is not None else None
        self._entries: dict[str, str] = {}
        self.discarded_lines = 0
        if self.path is not None and self.path.exists():
            self._read()

    def _read(self) -> None:
        assert self.path is not None
        with self.path.open("r", encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    row = json.loads(line)
                    key, value, check = row["k"], row["v"], row["c"]
                except (ValueError, KeyError, TypeError):
                    self.discarded_lines += 1
                    continue
                if _checksum(key, value) != check:
                    self.discarded_lines += 1
                    continue
                self._entries[key] = value

    def get(self, key: str) -> str | None:
        """The cached completion, or ``None``."""
        return self._entries.get(key)

    def __len__(self) -> int:
        return len(self._entries)

    def put_many(self, items: dict[str, str]) -> None:
        """Store completions and make them durable before returning."""
        self._entries.update(items)
        if self.path is None or not items:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(
            json.dumps({"k": k, "v": v, "c": _checksum(k, v)}, ensure_ascii=False) + "\n"
            for k, v in items.items())
        # One write call on an O_APPEND descriptor: concurrent runs interleave whole
        # chunks, never bytes, and a kill can only tear the last line.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
