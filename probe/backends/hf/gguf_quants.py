"""llama.cpp's legacy block quantization types (GGUF), through the ``gguf`` package.

What teams deploy from a fine-tune is often a GGUF file run by llama.cpp or Ollama, and
unlearning that holds in full precision can come back at 4 bits (Zhang et al. 2025,
arXiv 2410.16454). ``gguf.quants`` implements llama.cpp's reference quantizers in
numpy (Q8_0's is bit-exact with ``quantize_row_q8_0_ref``); the k-quants (Q4_K, ...)
can only be dequantized there, so they are not offered. Each type cuts a row into
blocks of 32 consecutive input weights and stores per block a float16 scale ``d`` (and
for the ``_1`` types a float16 minimum ``m``) and one code per weight:

- q8_0: w = d q, q in [-127, 127], d = max|w| / 127;
- q4_0: w = d (q - 8), q in [0, 15], d = -max / 8, where max is the block's weight of
  largest magnitude, with its sign; q5_0 likewise with q - 16, q in [0, 31], d = -max / 16;
- q4_1: w = d q + m, q in [0, 15], d = (max - min) / 15, m = min; q5_1 likewise with
  q in [0, 31], d = (max - min) / 31.

``codes`` unpacks the per-weight codes from the bytes ``gguf`` produced (llama.cpp's
block layouts, ``ggml-common.h``), for the bucket figure.
"""

from __future__ import annotations

from typing import Any

GGUF_TYPES = ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1")
BLOCK_SIZE = 32
# Bytes of a block before its codes: the float16 scale, the float16 minimum (_1 types)
# and, for the 5-bit types, 4 bytes holding each weight's fifth bit.
_HEADER = {"q8_0": 2, "q4_0": 2, "q4_1": 4, "q5_0": 6, "q5_1": 8}


def _qtype(kind: str) -> Any:
    from gguf import GGMLQuantizationType

    return GGMLQuantizationType[kind.upper()]


def quantize(weight: Any, kind: str) -> Any:
    """``weight`` (a 2-D float32 numpy array, rows a multiple of ``BLOCK_SIZE`` wide) as
    llama.cpp stores it under ``kind``: one row of block bytes per row."""
    from gguf.quants import quantize as gguf_quantize

    return gguf_quantize(weight, _qtype(kind))


def dequantize(raw: Any, kind: str) -> Any:
    """The float32 weights that ``raw`` (from ``quantize``) stands for, as llama.cpp
    computes them."""
    from gguf.quants import dequantize as gguf_dequantize

    return gguf_dequantize(raw, _qtype(kind))


def codes(raw: Any, kind: str) -> Any:
    """The code of every weight in ``raw`` (from ``quantize``), shaped like the weights
    (uint8; q8_0's signed codes as their two's complement bytes)."""
    import numpy as np

    rows = raw.shape[0]
    header = _HEADER[kind]
    blocks = raw.reshape(rows, -1, header + (BLOCK_SIZE if kind == "q8_0" else BLOCK_SIZE // 2))
    body = blocks[..., header:]
    if kind == "q8_0":
        return np.ascontiguousarray(body).reshape(rows, -1)
    # Byte j holds weight j in its low nibble and weight j + 16 in its high one.
    out = np.concatenate([body & 0x0F, body >> 4], axis=-1)
    if kind in ("q5_0", "q5_1"):
        # Bit j of the little-endian 32-bit word before the nibbles is weight j's fifth bit.
        high = np.unpackbits(blocks[..., header - 4:header], axis=-1, bitorder="little")
        out = out | (high << 4)
    return out.reshape(rows, -1)
