"""Batches that shrink when memory runs out, instead of the run crashing.

``Backoff`` runs a list of batches through a function. When a batch runs out of
memory it halves the batch size in force, splits the batch and retries it; the
smaller size then holds for the rest of the backend's life, so later batches do not
fail the same way first. Only a single row that does not fit is an error.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from probe.errors import BackendError
from probe.options import opt

T = TypeVar("T")
R = TypeVar("R")

# What torch's allocators say when they fail (CUDA raises torch.OutOfMemoryError,
# the CPU allocator a plain RuntimeError).
_OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is an allocation failure (worth retrying with a smaller batch)."""
    import torch

    if isinstance(err, torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and any(m in str(err).lower() for m in _OOM_MESSAGES)


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class Backoff:
    """The batch size in force for one backend; halves on out-of-memory."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self.shrinks = 0  # how often memory ran out (the tests and benchmarks read it)

    def error(self, err: RuntimeError, what: str) -> BackendError:
        """The error to raise for ``err``, which no smaller batch can avoid."""
        if is_out_of_memory(err):
            return BackendError(f"{self.name}: {what} ran out of memory on a single row: "
                                f"{err}. Use a smaller {opt('dtype')} or a device with more "
                                "memory")
        return BackendError(f"{self.name}: {what} failed: {err}")

    def run(self, batches: Sequence[list[T]], compute: Callable[[list[T]], list[R]],
            what: str, on_batch: Callable[[int, int], None] | None = None,
            ) -> Iterator[tuple[list[T], list[R]]]:
        """Yield each batch (possibly split) with ``compute``'s result for it; tell
        ``on_batch`` (rows done, rows in all) after each."""
        queue = deque(batches)
        total, done = sum(len(b) for b in batches), 0
        while queue:
            batch = queue.popleft()
            if len(batch) > self.size:  # packed before the last shrink
                queue.extendleft(reversed([batch[i:i + self.size]
                                           for i in range(0, len(batch), self.size)]))
                continue
            try:
                result = compute(batch)
            except RuntimeError as err:  # torch.OutOfMemoryError is a RuntimeError
                if len(batch) == 1 or not is_out_of_memory(err):
                    raise self.error(err, what) from err
                _release_memory()
                # Half the size in force, and small enough to split this batch.
                self.size = max(1, min(self.size // 2, (len(batch) + 1) // 2))
                self.shrinks += 1
                warnings.warn(f"{self.name}: out of memory during {what}; batch size lowered "
                              f"to {self.size}", RuntimeWarning, stacklevel=2)
                queue.appendleft(batch)
                continue
            done += len(batch)
            if on_batch is not None:
                on_batch(done, total)
            yield batch, result
