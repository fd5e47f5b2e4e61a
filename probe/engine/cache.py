"""On-disk cache of completions, so a killed run resumes and base results are reused.

Keyed by the model's fingerprint (weights, adapter, tokenizer, chat template,
dtype), the decoding settings, the exact prompt and ``CACHE_SCHEMA`` (bumped when
what is stored changes shape); never by a model's name.
Each model gets an append-only JSON-lines file; every line carries a checksum of
its own, so a line torn by a kill or damaged on disk is detected, reported and
recomputed. Appends are single fsynced writes under an ``flock``, so runs that
share a cache directory at the same time neither interleave nor lose lines.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from types import ModuleType

from probe.backends.base import GenerationSettings, Prompt
from probe.errors import CacheError, UsageError
from probe.options import opt

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux or macOS
    fcntl = None

CACHE_SCHEMA = 2  # 2: completions stored as JSON with whether generation cut them
DEFAULT_CACHE_DIR = ".probe-cache"


def completions_dir(cache_dir: str | Path | None) -> Path:
    """Where the model files live under a cache directory (``--probe-cache-dir``,
    ``--cache-dir``; ``DEFAULT_CACHE_DIR`` when none is given)."""
    return Path(cache_dir or DEFAULT_CACHE_DIR) / "completions"


def request_key(kind: str, settings: object, prompt: Prompt, *extra: object) -> str:
    """The cache key of one model request (model-independent part): what is asked
    (``kind``: generate, sample, score), the settings, the prompt and ``extra``
    (a sampling seed, a completion to score)."""
    settings_dict = asdict(settings) if is_dataclass(settings) and not isinstance(
        settings, type) else None
    # A conversation's system prompt and earlier turns are part of what is asked; a
    # single-turn prompt's key leaves them out, so caches written before they existed
    # stay valid.
    conversation = ([{"system": prompt.system, "messages": [list(m) for m in prompt.messages]}]
                    if prompt.is_conversation else [])
    payload = json.dumps([CACHE_SCHEMA, kind, settings_dict, prompt.text, prompt.prefill,
                          prompt.chat, *conversation, *extra], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def prompt_key(settings: GenerationSettings, prompt: Prompt) -> str:
    """The cache key of a greedy completion of ``prompt`` under ``settings``."""
    return request_key("generate", settings, prompt)


def _checksum(key: str, value: str) -> str:
    return hashlib.sha256(f"{key}\x00{value}".encode()).hexdigest()[:16]


def _parse(line: bytes) -> tuple[str, str] | None:
    """``(key, value)`` of a cache line whose checksum holds, else ``None``."""
    try:
        row = json.loads(line)
        key, value, check = row["k"], row["v"], row["c"]
    except (ValueError, KeyError, TypeError):
        return None
    if not (isinstance(key, str) and isinstance(value, str)) or _checksum(key, value) != check:
        return None
    return key, value


def check_cache_dir(root: Path) -> None:
    """Raise ``UsageError`` now if completions could not be written under ``root`` later."""
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{opt('cache_dir')}: {existing} is a file, so the completion cache "
                         f"{root} cannot be created there; give a directory, or pass "
                         f"{opt('no_cache')}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{opt('cache_dir')}: {existing} is not writable; give a writable "
                         f"directory, or pass {opt('no_cache')}")


class ProbeCacheWarning(UserWarning):
    """A cache file held corrupted or truncated entries; they were set aside and recomputed."""


@contextmanager
def locked(lock_path: Path, exclusive: bool) -> Iterator[None]:
    """Hold ``lock_path`` (an ``flock``): shared to read, exclusive to append or repair.

    Appends, reads and repairs of one cache file by concurrent runs are serialised,
    so no run sees another's half-written line or loses lines to a repair.
    """
    if fcntl is None:  # no flock (Windows): appends are still whole-line writes
        yield
        return
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def companions(path: Path) -> tuple[Path, Path, Path]:
    """The ``.corrupt`` (set-aside lines), ``.name`` (the model's name) and ``.lock``
    files that go with the model file ``path`` (``<fingerprint>.jsonl``)."""
    return (path.with_name(path.name + ".corrupt"),
            path.with_name(path.name.removesuffix(".jsonl") + ".name"),
            path.with_name(path.name + ".lock"))


class CompletionCache:
    """Completions of one model, stored under ``root/<fingerprint>.jsonl``.

    ``root=None`` keeps everything in memory only (``--probe-no-cache``).

    Every line carries a checksum. Lines that fail it (a kill mid-write, a disk
    fault, an edit) are reported with a ``ProbeCacheWarning``, moved to
    ``<fingerprint>.jsonl.corrupt`` for inspection and recomputed when next asked for.

    ``name`` (the model as the run named it) is written once to ``<fingerprint>.name``
    so ``probe cache`` can say whose file is whose; opening the cache marks it used
    (the mtime of its ``.lock`` file), which is what ``probe cache --prune-days`` reads.
    """

    def __init__(self, root: Path | None, fingerprint: str, name: str = "") -> None:
        self.path = root / f"{fingerprint}.jsonl" if root is not None else None
        self.name = name
        self._entries: dict[str, str] = {}
        self.discarded_lines = 0
        if self.path is not None and self.path.exists():
            self._read()
            with contextlib.suppress(OSError):  # a read-only cache is still usable
                self._lock.touch()

    @property
    def _lock(self) -> Path:
        assert self.path is not None
        return companions(self.path)[2]

    def _read(self) -> None:
        assert self.path is not None
        try:
            with locked(self._lock, exclusive=False):
                bad = self._load(self.path.read_bytes())
            if bad:
                with locked(self._lock, exclusive=True):
                    # Read again under the exclusive lock: another run may have
                    # repaired the file meanwhile.
                    self._entries.clear()
                    bad = self._load(self.path.read_bytes())
                    if bad:
                        self._repair(bad)
        except OSError as err:
            raise _cache_error(self.path, "read", err) from None

    def _load(self, data: bytes) -> list[bytes]:
        """Fill the entries from ``data``; the lines that failed their checksum."""
        bad: list[bytes] = []
        for line in data.splitlines(keepends=True):
            if not line.strip():
                continue
            parsed = _parse(line)
            if parsed is None:
                bad.append(line)
            else:
                self._entries[parsed[0]] = parsed[1]
        return bad

    def _repair(self, bad: list[bytes]) -> None:
        """Keep the good lines (atomically, by rename), set the bad ones aside, and say so."""
        assert self.path is not None
        self.discarded_lines = len(bad)
        aside = companions(self.path)[0]
        with aside.open("ab") as f:
            f.write(b"".join(line if line.endswith(b"\n") else line + b"\n" for line in bad))
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            f.write(b"".join(_line(k, v) for k, v in self._entries.items()))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
        warnings.warn(ProbeCacheWarning(
            f"completion cache {self.path}: {len(bad)} corrupted or truncated "
            f"entr{'y' if len(bad) == 1 else 'ies'} discarded (checksum mismatch; kept in "
            f"{aside.name}); {len(self._entries)} intact entries kept, the discarded ones "
            "will be recomputed"), stacklevel=4)

    def get(self, key: str) -> str | None:
        """The cached completion, or ``None``."""
        return self._entries.get(key)

    def __len__(self) -> int:
        return len(self._entries)

    def put_many(self, items: dict[str, str]) -> None:
        """Store completions and make them durable (written and fsynced) before returning."""
        self._entries.update(items)
        if self.path is None or not items:
            return
        data = b"".join(_line(k, v) for k, v in items.items())
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            label = companions(self.path)[1]
            if self.name and not label.exists():
                label.write_text(self.name + "\n", encoding="utf-8")
            with locked(self._lock, exclusive=True):
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    size = os.fstat(fd).st_size
                    # A run killed mid-write leaves a line without its newline; start on a
                    # fresh line so the torn one does not swallow the first new entry.
                    if size and os.pread(fd, 1, size - 1) != b"\n":
                        data = b"\n" + data
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as err:
            raise _cache_error(self.path, "write", err) from None


def _line(key: str, value: str) -> bytes:
    row = {"k": key, "v": value, "c": _checksum(key, value)}
    return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")


def _cache_error(path: Path, what: str, err: OSError) -> CacheError:
    return CacheError(f"cannot {what} the completion cache {path}: {err.strerror or err}. "
                      f"Give {opt('cache_dir')} a writable directory, or pass {opt('no_cache')}")
