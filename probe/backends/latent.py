"""Which engines can read a model's intermediate layers (``latent:`` in a suite).

The logit lens applies the model's final norm and output head to each layer's residual
stream, so it needs the weights in process: the HF engine (``HFBackend.score_layers``,
``probe.backends.hf.lens``) and the scripted double, whose script gives per-layer
figures (``layer_logprobs``). The vllm and openai engines return log-probabilities of the
last layer only; a suite run on them goes without its latent figures, with a warning
that names the option to use.
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.backends.perturbed import without
from probe.errors import UsageError
from probe.options import opt
from probe.spec.model import Suite

# The engines whose backends implement ``score_layers``.
LAYER_ENGINES = ("hf", "scripted")


def check_engine(engine: str, suites: Sequence[Suite]) -> list[Suite]:
    """``suites``, each without ``latent`` when ``engine`` cannot read intermediate layers,
    with a ``WeightsNotHeldWarning`` naming the option that reads them (the figures are
    reported, never gated: the verdicts do not change)."""
    if engine in LAYER_ENGINES:
        return list(suites)
    return without(suites, "latent", None, lambda suite: (
        f"suite {suite.name!r}: its latent figures are not read: they need the models' "
        f"intermediate layers, and the {engine} engine returns the last layer's "
        f"log-probabilities only; {opt('engine')} hf reads them"))


def unsupported(backend: str) -> UsageError:
    """The error of a backend that cannot read its layers (one passed in as an object,
    which ``check_engine`` never saw)."""
    return UsageError(f"latent: a {backend} cannot read its intermediate layers (the logit "
                      f"lens needs the weights in process); run suites with 'latent' on the "
                      f"hf engine ({opt('engine')} hf)")
