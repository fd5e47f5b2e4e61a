"""Perturbed copies of an HF pair: the candidate (and the base, as the control) with
their weights quantized or the fine-tune's weight change scaled (``probe.perturb``).

Every perturbation works on standalone copies of the two models: the base as loaded,
and the candidate with a peft adapter merged into its weights, so that "the
candidate's weights" means the same thing for an adapter and for a full checkpoint.
A copy costs one model's memory each; the copies live as long as the perturbed pair
(the session drops it once the perturbation is measured).

- quantize: both copies quantized and dequantized in place (``quantize``), and the
  inference-free figure, the share of weights whose bucket differs between them;
- adapter_scale alpha: the candidate becomes W_B + alpha (W_F - W_B), parameter by
  parameter: for a LoRA that is its scale times alpha, for a full fine-tune the same
  interpolation (task arithmetic); the base is unchanged and is its own control;
- relearn: the same seeded LoRA steps on unrelated text for both (``relearn``).
"""

from __future__ import annotations

import copy
import gc
import hashlib
import json
from typing import Any

from probe.backends.base import ModelPair
from probe.backends.hf.backend import HFBackend
from probe.backends.hf.quantize import bucket_shift, quantize_, scheme_for
from probe.backends.hf.relearn import relearned, text_digest, unrelated_text
from probe.backends.perturbed import PerturbedPair
from probe.errors import UsageError
from probe.spec.model import Perturbation

# Bump when a perturbation's code changes what it does to the weights.
PERTURB_CODE_VERSION = 1


def _is_peft(model: Any) -> bool:
    return callable(getattr(model, "merge_and_unload", None))


def standalone_copies(pair: ModelPair) -> tuple[Any, Any]:
    """Plain copies of the base and of the candidate with any adapter merged in."""
    base, candidate = pair.base, pair.candidate
    assert isinstance(base, HFBackend)
    assert isinstance(candidate, HFBackend)
    for side in (base, candidate):
        devices = {p.device for p in side.model.parameters()}
        if len(devices) > 1:
            raise UsageError(f"perturb: {side.info.name} is spread over {len(devices)} devices; "
                             "perturbations copy the model and need it on one device")
    if candidate.model is base.model and _is_peft(candidate.model):
        # An adapter pair: one peft model serves both views.
        merged = copy.deepcopy(candidate.model).merge_and_unload()
        plain = copy.deepcopy(candidate.model).unload()
        return plain.eval(), merged.eval()
    if _is_peft(candidate.model) or _is_peft(base.model):
        raise UsageError("perturb: a peft model on only one side of the pair is not supported")
    return copy.deepcopy(base.model).eval(), copy.deepcopy(candidate.model).eval()


def _fingerprint(parent: str, perturbation: Perturbation, extra: dict[str, Any]) -> str:
    payload = {"parent": parent, "perturbation": perturbation.label, "code": PERTURB_CODE_VERSION,
               **extra}
    encoded = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _view(parent: HFBackend, model: Any, perturbation: Perturbation,
          extra: dict[str, Any]) -> HFBackend:
    """A backend on ``model`` that renders, tokenizes and batches as ``parent`` does."""
    return HFBackend(model, parent.tokenizer, name=f"{parent.info.name} [{perturbation.label}]",
                     fingerprint=_fingerprint(parent.info.fingerprint, perturbation, extra),
                     batch_size=parent.batch_size, eos_token_ids=sorted(parent.eos_token_ids))


def perturbed_pair(pair: ModelPair, perturbation: Perturbation, seed: int = 0) -> PerturbedPair:
    """The pair under ``perturbation``; ``seed`` seeds what is random in it (relearn's
    batches and LoRA initialisation)."""
    import torch

    base, candidate = pair.base, pair.candidate
    assert isinstance(base, HFBackend)
    assert isinstance(candidate, HFBackend)
    plain, merged = standalone_copies(pair)
    if perturbation.quantize is not None:
        scheme = scheme_for(plain, perturbation.quantize, perturbation.group_size)
        buckets = bucket_shift(plain, merged, scheme)
        layers = quantize_(plain, scheme)
        quantize_(merged, scheme)
        extra: dict[str, Any] = {"bits": scheme.bits, "group_size": scheme.group_size}
        grouping = (f"groups of {scheme.group_size}" if scheme.group_size
                    else "one scale per output channel")
        notes = [f"{perturbation.label}: {layers} linear layers of each model quantized "
                 f"(round to nearest, symmetric, {grouping}) and dequantized"]
        return PerturbedPair(ModelPair(_view(base, plain, perturbation, extra),
                                         _view(candidate, merged, perturbation, extra)),
                               notes, buckets)
    if perturbation.adapter_scale is not None:
        alpha = float(perturbation.adapter_scale)
        theirs = dict(plain.named_parameters())
        with torch.no_grad():
            for name, weight in merged.named_parameters():
                own = theirs.get(name)
                if own is None or own.shape != weight.shape:
                    raise UsageError(f"perturb: adapter_scale needs one architecture: "
                                     f"parameter {name!r} differs between the two models")
                if weight.is_floating_point():
                    weight.copy_(own + alpha * (weight - own))
        del plain
        gc.collect()
        notes = [f"{perturbation.label}: the candidate's weight change times {alpha:g}; the "
                 "base is unchanged and is its own control"]
        return PerturbedPair(ModelPair(base, _view(candidate, merged, perturbation, {})),
                               notes)
    settings = perturbation.relearn
    assert settings is not None  # the suite loader allows these three kinds only
    passages = unrelated_text()
    relearn: dict[str, Any] = {"seed": seed, "text": text_digest(passages),
                               "settings": repr(settings)}
    tokenizer = candidate.tokenizer
    plain = relearned(plain, tokenizer, settings, seed, passages)
    merged = relearned(merged, tokenizer, settings, seed, passages)
    notes = [f"{perturbation.label}: LoRA rank {settings.rank}, learning rate "
             f"{settings.learning_rate:g}, {settings.batch_size} passages per step of "
             f"{len(passages)} unrelated ones, seed {seed}; the same steps on the base"]
    return PerturbedPair(ModelPair(_view(base, plain, perturbation, relearn),
                                   _view(candidate, merged, perturbation, relearn)), notes)
