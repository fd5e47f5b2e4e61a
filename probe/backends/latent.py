"""Which engines can read a model's intermediate layers (``latent:`` in a suite).

The logit lens applies the model's final norm and output head to each layer's residual
stream, so it needs the weights in process: the HF engine (``HFBackend.score_layers``,
``probe.backends.hf.lens``) and the scripted double, whose script gives per-layer
figures (``layer_logprobs``). The vllm and openai engines return log-probabilities of the
last layer only; they are refused before any model loads, with the option to use.
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.errors import UsageError
from probe.options import opt
from probe.spec.model import Suite

# The engines whose backends implement ``score_layers``.
LAYER_ENGINES = ("hf", "scripted")


def check_engine(engine: str, suites: Sequence[Suite]) -> None:
    """``UsageError`` before any model loads when a suite asks for ``latent`` figures and
    ``engine`` cannot read intermediate layers."""
    asking = next((s for s in suites if s.latent is not None), None)
    if asking is None or engine in LAYER_ENGINES:
        return
    raise UsageError(f"suite {asking.name!r} asks for latent figures (latent:), which read "
                     f"the models' intermediate layers; the {engine} engine returns the last "
                     f"layer's log-probabilities only: use {opt('engine')} hf for this suite")


def unsupported(backend: str) -> UsageError:
    """The error of a backend that cannot read its layers (one passed in as an object,
    which ``check_engine`` never saw)."""
    return UsageError(f"latent: a {backend} cannot read its intermediate layers (the logit "
                      f"lens needs the weights in process); run suites with 'latent' on the "
                      f"hf engine ({opt('engine')} hf)")
