"""A model pair under a perturbation (``perturb:`` in a suite): which engine can make it.

Perturbations change the models' weights, so only a backend that holds the weights can
make them. That is a capability of the backend (``PerturbingBackend``: a
``perturb_pair`` method), asked of the candidate: the HF engine's backend
(``probe.backends.hf.perturb``) and the scripted double, whose script names another
script for each perturbation (``perturbed:``), have it. The vllm and openai engines
run the models as they are served: a suite run on them goes without its perturbations,
with a warning that names the option to use (``check_engine``).

A perturbed pair is lazy: its models are made when a request reaches them, so a run
whose results under the perturbation are all in the cache makes none (docs/metrics.md,
"Perturbations"). Its fingerprints are known before that, from the loaded pair.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from probe.backends.base import ModelPair, Prompt
from probe.errors import UsageError
from probe.options import opt
from probe.spec.model import Perturbation, Suite

if TYPE_CHECKING:
    from probe.backends.hf.quantize import BucketShift


# The engines that hold the models' weights and can perturb them.
PERTURBING_ENGINES = ("hf", "scripted")


class WeightsNotHeldWarning(UserWarning):
    """A suite asked for figures that need the models' weights in process (``perturb``,
    ``latent``) and the engine serves the models as they are: the suite runs without them."""


def without(suites: Sequence[Suite], key: str, empty: Any,
            why: Callable[[Suite], str]) -> list[Suite]:
    """``suites``, each with ``key`` (``perturb`` or ``latent``) set to ``empty`` where it
    is set, warning ``why(suite)`` as a ``WeightsNotHeldWarning`` for each: what a run on
    an engine that serves the models as they are does with figures needing their weights."""
    out = []
    for suite in suites:
        if getattr(suite, key):
            warnings.warn(WeightsNotHeldWarning(why(suite)), stacklevel=3)
            suite = dataclasses.replace(suite, **{key: empty})
        out.append(suite)
    return out


def check_engine(engine: str, suites: Sequence[Suite]) -> list[Suite]:
    """``suites``, each without its perturbations when ``engine`` cannot make them, with a
    ``WeightsNotHeldWarning`` naming what was left out and the option that runs it: the
    rephrasings of a suite written for the HF engine still run on a served model (the
    demo's ``pytest suites/ --probe-engine vllm``), and a perturbation gate only ever
    fails the build, so leaving it out never turns a verdict worse."""
    if engine in PERTURBING_ENGINES:
        return list(suites)
    return without(suites, "perturb", (), lambda suite: (
        f"suite {suite.name!r}: its perturbations "
        f"({', '.join(p.label for p in suite.perturb)}) are not run: they change the models' "
        f"weights, and the {engine} engine runs the models as they are served; "
        f"{opt('engine')} hf runs them"))


@dataclass(frozen=True)
class PerturbRequest:
    """What a perturbed pair is made for: the perturbation, the ``seed`` of what is random
    in it (relearn's batches and LoRA initialisation), where figures that need the
    weights are cached (``cache_dir``, the run's completions cache; ``None``: not cached),
    and for relearning on the suite's own probes, the training examples: each training
    probe's canonical prompt and its first ``suppressed`` completion."""

    perturbation: Perturbation
    seed: int = 0
    cache_dir: Path | None = None
    examples: tuple[tuple[Prompt, str], ...] = ()


def _no_buckets() -> list[BucketShift]:
    return []


def _nothing() -> None:
    return None


@dataclass
class PerturbedPair:
    """The pair under one perturbation (lazy: made on first use), what making it means in
    words (``notes``), the bucket figure (``bucket_shifts()``, quantize only: cached, or
    computed from the loaded weights) and ``release()``, which drops any perturbed model
    still in memory."""

    pair: ModelPair
    notes: list[str] = field(default_factory=list)
    bucket_shifts: Callable[[], list[BucketShift]] = _no_buckets
    release: Callable[[], None] = _nothing


@runtime_checkable
class PerturbingBackend(Protocol):
    """A backend that can make its pair under a perturbation (asked of the candidate)."""

    def perturb_pair(self, pair: ModelPair, request: PerturbRequest) -> PerturbedPair:
        """``pair`` (whose candidate is this backend) under ``request.perturbation``;
        ``UsageError`` when the pair's base is not one it can perturb with it."""
        ...


def perturb_pair(pair: ModelPair, request: PerturbRequest | Perturbation,
                 seed: int = 0) -> PerturbedPair:
    """``pair`` under a perturbation (a bare ``Perturbation`` is a request with ``seed``);
    ``UsageError`` when its candidate's engine cannot perturb."""
    if isinstance(request, Perturbation):
        request = PerturbRequest(request, seed)
    candidate = pair.candidate
    if isinstance(candidate, PerturbingBackend):
        return candidate.perturb_pair(pair, request)
    raise UsageError(f"perturb: {request.perturbation.label} changes the models' weights, "
                     f"which a {type(candidate).__name__} does not expose; run suites with "
                     f"'perturb' on the hf engine ({opt('engine')} hf)")
