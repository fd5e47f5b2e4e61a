"""Seeded sampling for ``HFBackend.sample``: the settings check and the seeds.

Sample j of a prompt draws from a generator seeded by ``sample_seed(seed, j)``, so a
variant's samples do not depend on what else was in the call (``decoding``).
``seeded_rng`` serves the plain path (models that cannot be split), which samples
one prompt at a time with ``model.generate``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from probe.backends.base import SamplingSettings
from probe.errors import BackendError


@contextmanager
def seeded_rng(device: Any, seed: int) -> Iterator[None]:
    """Seed the RNG that sampling on ``device`` draws from; restore every RNG afterwards.

    ``generate`` samples with ``torch.multinomial`` from the global generator of the
    device the logits live on, so that generator is the one to seed, and forking
    it keeps the caller's random state as it was (every random choice in probe is
    seeded locally; none uses or changes global RNG state, docs/architecture.md).
    """
    import torch

    seed %= 2**64  # manual_seed takes 64 bits; any int seed maps to one deterministically
    if device.type == "cpu":
        # Seeding only the CPU generator: torch.manual_seed would also (lazily) reseed
        # CUDA on a machine that has it, and fork_rng(devices=[]) would not restore that.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield
    else:
        module = getattr(torch, device.type)
        with torch.random.fork_rng(devices=list(range(module.device_count())),
                                   device_type=device.type):
            torch.manual_seed(seed)
            yield


def check_sampling(name: str, settings: SamplingSettings) -> None:
    """Raise ``BackendError`` naming every setting of ``settings`` that cannot be sampled."""
    problems = []
    if settings.samples < 1:
        problems.append(f"samples must be at least 1 (got {settings.samples})")
    if not settings.temperature > 0:
        problems.append(f"temperature must be above 0 (got {settings.temperature}); "
                        "temperature 0 is greedy decoding, which generate() does")
    if not 0 < settings.top_p <= 1:
        problems.append(f"top_p must be in (0, 1] (got {settings.top_p})")
    if settings.max_new_tokens < 1:
        problems.append(f"max_new_tokens must be at least 1 (got {settings.max_new_tokens})")
    if problems:
        raise BackendError(f"{name}: cannot sample: {'; '.join(problems)}")


def sample_seed(seed: int, sample: int) -> int:
    """The generator seed of sample number ``sample`` of a prompt whose seed is ``seed``."""
    import hashlib

    digest = hashlib.sha256(f"{seed}/{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
