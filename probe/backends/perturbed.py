"""A model pair under a perturbation (``perturb:`` in a suite): which engine can make it.

Perturbations change the models' weights, so only an engine that holds the weights
can make them: the HF engine (``probe.backends.hf.perturb``), and the scripted double,
whose script names another script for each perturbation (``perturbed:``). The vllm and
openai engines run the models as they are served and refuse, with the option to use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from probe.backends.base import ModelPair
from probe.errors import UsageError
from probe.options import opt
from probe.spec.model import Perturbation, Suite

if TYPE_CHECKING:
    from probe.backends.hf.quantize import BucketShift


# The engines that hold the models' weights and can perturb them.
PERTURBING_ENGINES = ("hf", "scripted")


def check_engine(engine: str, suites: Sequence[Suite]) -> None:
    """``UsageError`` before any model loads when a suite asks for perturbations that
    ``engine`` cannot make."""
    asking = next((s for s in suites if s.perturb), None)
    if asking is None or engine in PERTURBING_ENGINES:
        return
    raise UsageError(f"suite {asking.name!r} asks for perturbations ({asking.perturb[0].label}"
                     f"), which change the models' weights; the {engine} engine runs them as "
                     f"they are: use {opt('engine')} hf for this suite")


@dataclass
class PerturbedPair:
    """The pair under one perturbation, and what making it measured: ``notes`` in words,
    ``buckets`` per quantized layer (quantize only)."""

    pair: ModelPair
    notes: list[str] = field(default_factory=list)
    buckets: list[BucketShift] = field(default_factory=list)


def perturb_pair(pair: ModelPair, perturbation: Perturbation, seed: int = 0) -> PerturbedPair:
    """``pair`` under ``perturbation`` (``seed``: for what is random in it, relearn's
    training); ``UsageError`` when its engine cannot perturb."""
    from probe.backends.scripted import ScriptedBackend

    base, candidate = pair.base, pair.candidate
    if isinstance(base, ScriptedBackend) and isinstance(candidate, ScriptedBackend):
        return PerturbedPair(ModelPair(base.perturbed(perturbation),
                                       candidate.perturbed(perturbation)))
    module = type(candidate).__module__
    if module.startswith("probe.backends.hf"):
        from probe.backends.hf.perturb import perturbed_pair

        return perturbed_pair(pair, perturbation, seed)
    raise UsageError(f"perturb: {perturbation.label} changes the models' weights, which a "
                     f"{type(candidate).__name__} does not expose; run suites with 'perturb' "
                     f"on the hf engine ({opt('engine')} hf)")
