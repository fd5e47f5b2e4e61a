"""Weight-only round-to-nearest quantization, applied and undone in place ("fake"
quantization), and the inference-free figure of how many weights change bucket.

What a team deploys after a fine-tune is often a quantized model, and a fine-tune that
moved weights by less than one quantization step snaps back to the base when it is
quantized (Zhang et al. 2025, arXiv 2410.16454: unlearned knowledge retained 21% in
full precision, 83% after 4-bit quantization). Here every linear layer of the decoder
(not the embeddings, not the output head: weight-only schemes keep those in full
precision) is quantized symmetrically and at once dequantized, so the run measures
the quantized model's behaviour on any device, CPU included:

- int8: one scale per output channel, codes in [-127, 127];
- int4: one scale per group of ``group_size`` consecutive input weights of an output
  channel, codes in [-7, 7]; the group size must divide every layer's input size.

The scale of a row (or group) is max|w| / qmax, and a code is round(w / scale).

- q8_0, q4_0, q4_1, q5_0, q5_1: llama.cpp's block types, blocks of 32 input weights,
  through ``gguf``'s reference quantizers (``gguf_quants``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from probe.backends.hf import gguf_quants
from probe.backends.hf.gguf_quants import BLOCK_SIZE, GGUF_TYPES
from probe.errors import UsageError

# Group sizes tried in order when a suite gives none (largest first: fewer scales).
INT4_GROUP_SIZES = (128, 64, 32, 16)
# Modules never quantized: the output head and the embeddings stay in full precision
# in weight-only schemes (and SmolLM2's head is tied to its embeddings).
_SKIPPED = ("lm_head", "embed")


@dataclass(frozen=True)
class Scheme:
    """A symmetric round-to-nearest scheme: ``bits`` 8 (per output channel) or 4
    (``group_size`` input weights per scale); or ``gguf``, a llama.cpp block type
    (``q4_0``, ...: ``gguf_quants``), where ``bits`` is informative only."""

    bits: int
    group_size: int | None = None
    gguf: str | None = None

    @property
    def qmax(self) -> int:
        """The largest code: 127 for int8, 7 for int4 (symmetric, no -128 / -8)."""
        return int(2 ** (self.bits - 1) - 1)

    def fingerprint_extra(self) -> dict[str, Any]:
        """What the perturbed models' fingerprints record of the scheme."""
        if self.gguf is not None:
            return {"gguf": self.gguf, "block_size": BLOCK_SIZE}
        return {"bits": self.bits, "group_size": self.group_size}

    def describe(self) -> str:
        """``round to nearest, symmetric, groups of 64`` (for the report's notes)."""
        if self.gguf is not None:
            return (f"llama.cpp {self.gguf.upper()}, blocks of {BLOCK_SIZE}, gguf's reference "
                    "quantizer")
        grouping = (f"groups of {self.group_size}" if self.group_size
                    else "one scale per output channel")
        return f"round to nearest, symmetric, {grouping}"


# How peft names what it wraps: ``base_model.model.`` before the model's own names, the
# wrapped layer as ``<layer>.base_layer`` and a saved module's original as
# ``<module>.original_module``; ``lora_A``/``lora_B`` are the adapter's own layers and
# ``modules_to_save`` its trained copies.
_PEFT_PREFIX = "base_model.model."
_PEFT_WRAPPERS = (".base_layer", ".original_module")
_PEFT_OWN = (".lora_", ".modules_to_save")


def plain_name(name: str) -> str | None:
    """A module's or parameter's name as the model has it without a peft adapter
    (``None``: the adapter's own); a plain model's names are returned as they are. So
    the base side of an adapter pair is read in place, under the names of the merged
    candidate, without a copy."""
    if any(own in name for own in _PEFT_OWN):
        return None
    name = name.removeprefix(_PEFT_PREFIX)
    for wrapper in _PEFT_WRAPPERS:
        name = name.replace(wrapper + ".", ".")
        name = name.removesuffix(wrapper)
    return name


def quantized_layers(model: Any) -> Iterator[tuple[str, Any]]:
    """``(name, weight)`` of every 2-D linear weight the schemes quantize, in order. On a
    peft model: the base's weights (an unmerged adapter leaves them as they were), under
    their plain names."""
    import torch

    for raw, module in model.named_modules():
        name = plain_name(raw)
        if (name is None or not isinstance(module, torch.nn.Linear)
                or any(s in name for s in _SKIPPED)):
            continue
        yield name, module.weight


def scheme_for(model: Any, kind: str, group_size: int | None = None) -> Scheme:
    """The scheme ``kind`` (``int8`` or ``int4``) names for ``model``: int4's group size
    is ``group_size`` or the largest of ``INT4_GROUP_SIZES`` that divides every layer's
    input size; ``UsageError`` when none does, or the given one does not. A GGUF type
    (``q4_0``, ...) needs every layer's input size to be a multiple of its block size."""
    if kind == "int8":
        return Scheme(8)
    layers = [(name, int(w.shape[1])) for name, w in quantized_layers(model)]
    inputs = sorted({n for _, n in layers})
    if not inputs:
        raise UsageError("quantize: the model has no linear layers to quantize")
    if kind in GGUF_TYPES:
        odd = next(((name, n) for name, n in layers if n % BLOCK_SIZE), None)
        if odd is not None:
            raise UsageError(f"quantize: {kind} quantizes blocks of {BLOCK_SIZE} input weights, "
                             f"and layer {odd[0]!r} has {odd[1]} inputs, not a multiple of "
                             f"{BLOCK_SIZE}; use int8, or int4 with a group_size that divides "
                             f"{', '.join(map(str, inputs))}")
        return Scheme(int(kind[1]), gguf=kind)
    if group_size is not None:
        bad = [n for n in inputs if n % group_size]
        if bad:
            raise UsageError(f"quantize: int4 group_size {group_size} does not divide the "
                             f"input size {bad[0]} of some of the model's layers; choose one "
                             f"that divides {', '.join(map(str, inputs))}")
        return Scheme(4, group_size)
    for size in INT4_GROUP_SIZES:
        if all(n % size == 0 for n in inputs):
            return Scheme(4, size)
    raise UsageError(f"quantize: no int4 group size of {', '.join(map(str, INT4_GROUP_SIZES))} "
                     f"divides the model's layer input sizes ({', '.join(map(str, inputs))}); "
                     "give group_size")


def codes(weight: Any, scheme: Scheme) -> tuple[Any, Any]:
    """The integer codes of ``weight`` (same shape, int8 tensor) and the scales (one per
    row for int8, one per group for int4, shaped to broadcast over the grouped weight).
    For a GGUF type: its codes (uint8) and ``None`` (its scales are in its blocks)."""
    import torch

    if scheme.gguf is not None:
        raw = gguf_quants.quantize(_numpy(weight), scheme.gguf)
        return torch.from_numpy(gguf_quants.codes(raw, scheme.gguf)), None
    w = weight.detach().to(torch.float32)
    grouped = w if scheme.group_size is None else w.reshape(w.shape[0], -1, scheme.group_size)
    scale = grouped.abs().amax(dim=-1, keepdim=True) / scheme.qmax
    # An all-zero row or group: any scale works; 1 keeps its codes 0 without dividing by 0.
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.clamp(torch.round(grouped / scale), -scheme.qmax, scheme.qmax)
    return q.to(torch.int8).reshape(w.shape), scale


def dequantized(weight: Any, scheme: Scheme) -> Any:
    """``weight`` quantized under ``scheme`` and dequantized, in its own dtype."""
    if scheme.gguf is not None:
        import torch

        raw = gguf_quants.quantize(_numpy(weight), scheme.gguf)
        back = torch.from_numpy(gguf_quants.dequantize(raw, scheme.gguf))
        return back.to(device=weight.device, dtype=weight.dtype)
    q, scale = codes(weight, scheme)
    shape = q.shape if scheme.group_size is None else (q.shape[0], -1, scheme.group_size)
    out = q.to(scale.dtype).reshape(shape) * scale
    return out.reshape(weight.shape).to(weight.dtype)


def _numpy(weight: Any) -> Any:
    """A weight as the float32 numpy array ``gguf`` quantizes (llama.cpp quantizes from
    float32 too)."""
    import torch

    return weight.detach().to(device="cpu", dtype=torch.float32).numpy()


def quantize_(model: Any, scheme: Scheme) -> int:
    """Quantize and dequantize every layer of ``quantized_layers(model)`` in place;
    returns how many layers changed."""
    import torch

    count = 0
    with torch.no_grad():
        for _, weight in quantized_layers(model):
            weight.copy_(dequantized(weight, scheme))
            count += 1
    return count


@dataclass(frozen=True)
class BucketShift:
    """How many of one layer's weights land in another quantization bucket in the
    candidate than in the base (``changed`` of ``total``)."""

    layer: str
    changed: int
    total: int

    @property
    def fraction(self) -> float:
        """``changed / total``."""
        return self.changed / self.total if self.total else 0.0


def bucket_shift(base: Any, candidate: Any, scheme: Scheme) -> list[BucketShift]:
    """Per quantized layer, the weights whose code under ``scheme`` differs between
    ``base`` and ``candidate`` (each quantized with its own scales, as each would be
    deployed). A fine-tune whose weights moved less than a bucket shows 0: quantizing it
    gives back the base exactly, on that layer. Layers are matched by name; both
    models must have the same architecture."""
    theirs = dict(quantized_layers(candidate))
    out = []
    for name, weight in quantized_layers(base):
        other = theirs.get(name)
        if other is None or other.shape != weight.shape:
            raise UsageError(f"quantize: layer {name!r} differs in shape between the base and "
                             "the candidate; the bucket figure needs one architecture")
        changed = int((codes(weight, scheme)[0] != codes(other, scheme)[0]).sum())
        out.append(BucketShift(name, changed, weight.numel()))
    return out
