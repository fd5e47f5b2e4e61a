"""Seed derivation: every stochastic step gets its own RNG from a sha256 of its coordinates.

Never the builtin ``hash()`` (salted per process) and never global RNG state, so a
variant is the same on every machine and every run with the same run seed.
"""

from __future__ import annotations

import hashlib
import random


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from the sha256 of ``parts`` (joined unambiguously)."""
    digest = hashlib.sha256("\x1f".join(repr(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def rng_for(*parts: object) -> random.Random:
    """A private ``random.Random`` seeded from ``parts``."""
    return random.Random(derive_seed(*parts))
