"""One loaded model per (directory, device) per process, shared by every user of it.

Detectors are built per probe; ten probes naming the same embedding model or
classifier must load it once. Thread-safe, so a loader never runs twice for a key.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ModelCache(Generic[T]):
    """A process-wide map from (directory, device) to a loaded model."""

    def __init__(self, load: Callable[[str, str], T]) -> None:
        self._load = load
        self._items: dict[tuple[str, str], T] = {}
        self._lock = threading.Lock()

    def get(self, directory: str, device: str) -> T:
        """The model for ``(directory, device)``, loading it on first use.

        A local path is keyed (and loaded) by its absolute, resolved form: the same
        relative name in another working directory is another model (a notebook, or
        two projects run from one process).
        """
        directory = _absolute(directory)
        key = (directory, device)
        with self._lock:
            if key not in self._items:
                self._items[key] = self._load(directory, device)
            return self._items[key]

    def keys(self) -> list[tuple[str, str]]:
        """The (directory, device) pairs loaded so far."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        """Forget every loaded model (tests; freeing memory in a notebook)."""
        with self._lock:
            self._items.clear()


def _absolute(ref: str) -> str:
    """``ref`` with a local path made absolute (``scripted:FILE`` too); a hub id as is."""
    from probe.backends.engines import SCRIPTED_PREFIX, is_scripted, scripted_path

    if is_scripted(ref):
        return SCRIPTED_PREFIX + os.path.realpath(scripted_path(ref))
    # Not Path(ref).exists(): Path("") is ".", which exists; an empty ref stays as is.
    return os.path.realpath(ref) if os.path.exists(ref) else ref  # noqa: PTH110
