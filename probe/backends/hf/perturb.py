"""Perturbed HF pairs: the candidate (and the base, as the control) with their weights
quantized, the fine-tune's weight change scaled, or a few steps relearned
(``probe.perturb``).

Every perturbation works on standalone copies: the base as loaded, and the candidate
with a peft adapter merged into its weights, so that "the candidate's weights" means
the same thing for an adapter and for a full checkpoint. The copies are lazy and one
at a time (``_Slot``): a side is made when the runner first asks it for a completion
(never, when the cache holds every result under the perturbation), and making one side
drops the other. The runner asks every base request before any candidate request, so
each side is made once and a perturbation costs one model's memory, not two.
Fingerprints are computed from the loaded pair, without making anything.

- quantize: the copy quantized and dequantized in place (``quantize``); the
  inference-free figure, the share of weights whose bucket differs between the two, is
  read from the loaded weights (and cached: ``buckets``);
- adapter_scale alpha: the candidate becomes W_B + alpha (W_F - W_B), parameter by
  parameter, W_B read in place from the loaded base: for a LoRA that is its scale times
  alpha, for a full fine-tune the same interpolation (task arithmetic); the base is
  unchanged and is its own control;
- relearn: the same seeded LoRA steps for both (``relearn``), on unrelated text or on
  the suite's training probes (``request.examples``).
"""

from __future__ import annotations

import copy
import gc
import hashlib
import json
from collections.abc import Callable
from typing import Any

from probe.backends.base import ModelInfo, ModelPair
from probe.backends.hf.backend import HFBackend
from probe.backends.hf.buckets import cached_buckets
from probe.backends.hf.quantize import (
    BucketShift,
    Scheme,
    bucket_shift,
    plain_name,
    quantize_,
    quantized_layers,
    scheme_for,
)
from probe.backends.hf.relearn import relearned, settings_text, text_digest, unrelated_text
from probe.backends.lazy import LazyBackend
from probe.backends.perturbed import PerturbedPair, PerturbRequest
from probe.errors import UsageError
from probe.spec.model import Perturbation

# Bump when a perturbation's code changes what it does to the weights.
PERTURB_CODE_VERSION = 1

SIDES = ("base", "candidate")


def _is_peft(model: Any) -> bool:
    return callable(getattr(model, "merge_and_unload", None))


def _checked(pair: ModelPair) -> tuple[HFBackend, HFBackend]:
    base, candidate = pair.base, pair.candidate
    if not isinstance(base, HFBackend) or not isinstance(candidate, HFBackend):
        raise UsageError("perturb: the base and the candidate must both run on the hf engine")
    for side in (base, candidate):
        devices = {p.device for p in side.model.parameters()}
        if len(devices) > 1:
            raise UsageError(f"perturb: {side.info.name} is spread over {len(devices)} devices; "
                             "perturbations copy the model and need it on one device")
    if _is_adapter_pair(pair):
        return base, candidate
    if _is_peft(candidate.model) or _is_peft(base.model):
        raise UsageError("perturb: a peft model on only one side of the pair is not supported")
    return base, candidate


def _is_adapter_pair(pair: ModelPair) -> bool:
    """One peft model serving both views (the base with its adapter disabled)."""
    base, candidate = pair.base, pair.candidate
    assert isinstance(base, HFBackend)
    assert isinstance(candidate, HFBackend)
    return candidate.model is base.model and _is_peft(candidate.model)


def side_copy(pair: ModelPair, side: str) -> Any:
    """A standalone copy of one side: the base as loaded, or the candidate with any adapter
    merged in. An adapter pair is copied once per side: its base by unloading the adapter
    from the copy, its candidate by merging it (peft's own merge)."""
    base, candidate = _checked(pair)
    if _is_adapter_pair(pair):
        wrapped = copy.deepcopy(candidate.model)
        plain = wrapped.merge_and_unload() if side == "candidate" else wrapped.unload()
        return plain.eval()
    return copy.deepcopy((base if side == "base" else candidate).model).eval()


def standalone_copies(pair: ModelPair) -> tuple[Any, Any]:
    """Plain copies of the base and of the candidate with any adapter merged in."""
    return side_copy(pair, "base"), side_copy(pair, "candidate")


def base_parameters(model: Any) -> dict[str, Any]:
    """The loaded base's floating-point parameters by their plain names, read in place
    (for an adapter pair: the peft model's base weights, the adapter left out)."""
    out = {}
    for raw, parameter in model.named_parameters():
        name = plain_name(raw)
        if name is not None:
            out[name] = parameter
    return out


def _fingerprint(parent: str, perturbation: Perturbation, extra: dict[str, Any]) -> str:
    payload = {"parent": parent, "perturbation": perturbation.label, "code": PERTURB_CODE_VERSION,
               **extra}
    encoded = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _info(parent: HFBackend, perturbation: Perturbation, extra: dict[str, Any]) -> ModelInfo:
    return ModelInfo(f"{parent.info.name} [{perturbation.label}]",
                     _fingerprint(parent.info.fingerprint, perturbation, extra))


def _view(parent: HFBackend, model: Any, info: ModelInfo) -> HFBackend:
    """A backend on ``model`` that renders, tokenizes and batches as ``parent`` does."""
    return HFBackend(model, parent.tokenizer, name=info.name, fingerprint=info.fingerprint,
                     batch_size=parent.batch_size, eos_token_ids=sorted(parent.eos_token_ids))


class _Slot:
    """At most one perturbed model in memory: ``backend(side)`` makes that side (dropping
    the other) unless it is the one held."""

    def __init__(self, make: dict[str, Callable[[], HFBackend]]) -> None:
        self._make = make
        self._held: tuple[str, HFBackend] | None = None

    def backend(self, side: str) -> HFBackend:
        if self._held is None or self._held[0] != side:
            self.release()
            self._held = (side, self._make[side]())
        return self._held[1]

    def release(self) -> None:
        if self._held is not None:
            self._held = None
            gc.collect()


def perturbed_pair(pair: ModelPair, request: PerturbRequest) -> PerturbedPair:
    """The pair under ``request.perturbation``, lazy (``PerturbedPair``)."""
    base, candidate = _checked(pair)
    perturbation = request.perturbation
    if perturbation.quantize is not None:
        return _quantized(pair, request)
    if perturbation.adapter_scale is not None:
        alpha = float(perturbation.adapter_scale)
        info = _info(candidate, perturbation, {})

        def scaled() -> HFBackend:
            import torch

            merged = side_copy(pair, "candidate")
            theirs = base_parameters(base.model)
            with torch.no_grad():
                for name, weight in merged.named_parameters():
                    own = theirs.get(name)
                    if own is None or own.shape != weight.shape:
                        raise UsageError(f"perturb: adapter_scale needs one architecture: "
                                         f"parameter {name!r} differs between the two models")
                    if weight.is_floating_point():
                        weight.copy_(own + alpha * (weight - own))
            return _view(candidate, merged, info)

        slot = _Slot({"candidate": scaled})
        notes = [f"{perturbation.label}: the candidate's weight change times {alpha:g}; the "
                 "base is unchanged and is its own control"]
        return PerturbedPair(ModelPair(base, LazyBackend(info, candidate,
                                                         lambda: slot.backend("candidate"))),
                             notes, release=slot.release)
    return _relearned(pair, request)


def _lazy_pair(pair: ModelPair, infos: dict[str, ModelInfo],
               perturb: Callable[[Any], Any]) -> tuple[ModelPair, _Slot]:
    """Both sides lazy, one at a time, each a copy changed by ``perturb`` (in place or
    returned)."""
    parents = {"base": pair.base, "candidate": pair.candidate}

    def maker(side: str) -> Callable[[], HFBackend]:
        def make() -> HFBackend:
            parent = parents[side]
            assert isinstance(parent, HFBackend)
            return _view(parent, perturb(side_copy(pair, side)), infos[side])
        return make

    slot = _Slot({side: maker(side) for side in SIDES})

    def held(side: str) -> Callable[[], HFBackend]:
        return lambda: slot.backend(side)

    lazy = {side: LazyBackend(infos[side], parents[side], held(side)) for side in SIDES}
    return ModelPair(lazy["base"], lazy["candidate"]), slot


def _quantized(pair: ModelPair, request: PerturbRequest) -> PerturbedPair:
    base, candidate = _checked(pair)
    perturbation = request.perturbation
    assert perturbation.quantize is not None
    # The scheme reads the base's layer shapes in place: no copy.
    scheme = scheme_for(base.model, perturbation.quantize, perturbation.group_size)
    extra = scheme.fingerprint_extra()
    infos = {"base": _info(base, perturbation, extra),
             "candidate": _info(candidate, perturbation, extra)}

    def quantized(model: Any) -> Any:
        quantize_(model, scheme)
        return model

    lazy, slot = _lazy_pair(pair, infos, quantized)
    layers = sum(1 for _ in quantized_layers(base.model))
    notes = [f"{perturbation.label}: {layers} linear layers of each model quantized "
             f"({scheme.describe()}) and dequantized"]

    def buckets() -> list[BucketShift]:
        key = {"base": infos["base"].fingerprint, "candidate": infos["candidate"].fingerprint,
               "scheme": extra, "code": PERTURB_CODE_VERSION}
        return cached_buckets(request.cache_dir, key, lambda: _bucket_shift(pair, scheme))

    return PerturbedPair(lazy, notes, buckets, slot.release)


def _bucket_shift(pair: ModelPair, scheme: Scheme) -> list[BucketShift]:
    """The bucket figure from the loaded weights: the base's in place, the candidate's in
    place too for a full checkpoint; an adapter's candidate is merged into a copy, made
    here and dropped before any perturbed model is made."""
    base, candidate = _checked(pair)
    if not _is_adapter_pair(pair):
        return bucket_shift(base.model, candidate.model, scheme)
    merged = side_copy(pair, "candidate")
    try:
        return bucket_shift(base.model, merged, scheme)
    finally:
        del merged
        gc.collect()


def _relearned(pair: ModelPair, request: PerturbRequest) -> PerturbedPair:
    base, candidate = _checked(pair)
    perturbation = request.perturbation
    settings = perturbation.relearn
    assert settings is not None  # the suite loader allows these three kinds only
    seed = request.seed
    tokenizer = candidate.tokenizer
    if settings.data == "probes":
        if not request.examples:
            raise UsageError(f"perturb: {perturbation.label} needs training probes")
        passages: list[str] = []
        # Each probe's canonical prompt as the chat template renders it (the parent's
        # codec: the same tokens the runner sends), answered with its suppressed completion.
        examples = [(candidate.codec.encode(prompt),
                     tokenizer(answer, add_special_tokens=False)["input_ids"]
                     + sorted(candidate.eos_token_ids)[:1]) for prompt, answer in request.examples]
        digest = _examples_digest(request)
        what = (f"{len(examples)} training probes' answers (the loss on the answer tokens "
                "only)")
    else:
        passages = unrelated_text()
        examples = []
        digest = text_digest(passages)
        what = f"{len(passages)} unrelated passages"
    extra: dict[str, Any] = {"seed": seed, "text": digest, "settings": settings_text(settings)}
    infos = {"base": _info(base, perturbation, extra),
             "candidate": _info(candidate, perturbation, extra)}
    lazy, slot = _lazy_pair(pair, infos, lambda model: relearned(
        model, tokenizer, settings, seed, passages, examples))
    notes = [f"{perturbation.label}: LoRA rank {settings.rank}, learning rate "
             f"{settings.learning_rate:g}, {settings.batch_size} rows per step drawn from "
             f"{what}, seed {seed}; the same steps on the base"]
    return PerturbedPair(lazy, notes, release=slot.release)


def _examples_digest(request: PerturbRequest) -> str:
    """sha256 of the training examples (each conversation and answer): with the parent's
    fingerprint (tokenizer, chat template), what the relearned models were trained on."""
    rows = [[prompt.conversation(), prompt.prefill, answer] for prompt, answer in request.examples]
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode("utf-8")).hexdigest()
