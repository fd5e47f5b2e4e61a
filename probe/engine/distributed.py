"""Sharding a run's model work across processes started by ``torchrun``.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) every process runs the
whole pipeline (suites, variants, statistics), but each model request that the
cache cannot answer is computed by one rank only: rank r takes items r, r + n,
r + 2n... of every round, and after each round every rank receives every result
(``all_gather_object`` over gloo, which needs no GPU), so all ranks hold identical
results and rank 0 alone writes the cache and the report. Work per round is
``chunk`` items per rank, so a killed run loses at most one round.

The process group is initialised here on first use (gloo; the models themselves
need no collective communication), unless the caller already did; a group started
here is destroyed at interpreter exit.
torch is imported only when a run really is distributed.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """This process's place in a distributed run."""

    rank: int
    world: int
    group: Any = None  # the gloo process group results travel over

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, which writes the cache and the report."""
        return self.rank == 0

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` on every rank."""
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def gather(self, value: T) -> list[T]:
        """Every rank's ``value``, in rank order, on every rank."""
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value, group=self.group)
        return out


_CURRENT: list[Shard | None] = []


def world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when not under torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def env_rank() -> int:
    """This process's rank from the environment torchrun sets (0 when not distributed),
    read without starting the process group or importing torch."""
    if world_size() == 1:
        return 0
    try:
        return max(0, int(os.environ.get("RANK", "0")))
    except ValueError:
        return 0


def current() -> Shard | None:
    """This process's shard, or ``None`` when the run is not distributed."""
    if _CURRENT:
        return _CURRENT[0]
    shard = None
    if world_size() > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="gloo")
            atexit.register(_shut_down)
        # Objects travel over gloo even when the default group is NCCL.
        group = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else None
        shard = Shard(dist.get_rank(), dist.get_world_size(), group)
    _CURRENT.append(shard)
    return shard


def _shut_down() -> None:
    """Tear the process group down before the interpreter exits.

    Left to interpreter finalisation, gloo's worker threads can be destroyed while
    still joinable, and the rank dies in C++ ("terminate called without an active
    exception", SIGABRT) after its work is done: 2 of 15 two-rank test runs on a
    loaded 2-core machine. No barrier: a rank leaving on an error must not wait
    for peers that are still inside a collective.
    """
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def compute_sharded(shard: Shard, pending: list[tuple[str, T]], every: dict[str, T],
                    compute: Any, chunk: int, save: Any, progress: Any,
                    label: str) -> dict[str, str]:
    """Compute ``pending`` (key, item) pairs across the ranks; every rank gets every value.

    Rank 0's list of pending keys is the one followed (ranks sharing a cache directory
    may see it at different moments); ``every`` maps each key to its item on any rank.
    ``save`` stores a round's values (rank 0 only; the others keep them in memory).
    """
    keys = shard.broadcast([key for key, _ in pending])
    values: dict[str, str] = {}
    step = chunk * shard.world
    if progress is not None and shard.is_main and keys:
        progress(label, 0, len(keys))
    for start in range(0, len(keys), step):
        mine = keys[start:start + step][shard.rank::shard.world]
        outputs = compute([every[k] for k in mine]) if mine else []
        fresh: dict[str, str] = {}
        for part in shard.gather(list(zip(mine, outputs, strict=True))):
            fresh.update(part)
        values.update(fresh)
        if shard.is_main:
            save(fresh)
            if progress is not None:
                progress(label, min(start + step, len(keys)), len(keys))
    return values
