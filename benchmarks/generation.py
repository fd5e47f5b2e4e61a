"""Greedy generation: the HF backend against plain ``model.generate`` on the same prompts,
both with length-sorted batches, as ratios from one run (issue 13, item 7).

The workload: every variant of a demo run (``workload.demo_prompts``: 397 prompts of
capitals_unlearning's lock and capitals_retention), 48 new tokens at most (the
suites' setting), on SmolLM2-135M-Instruct in fp32 on CPU; ``--quick`` takes the
first 60 prompts.

- baseline: the prompts rendered and tokenized exactly as the backend does, sorted
  by length (longest first), cut into batches of ``--batch-size``, left-padded and
  given to ``model.generate`` (greedy, the backend's eos ids), each row cut at its
  first eos: what a careful user of transformers writes;
- the backend: ``HFBackend.generate`` (on CPU the shared-prefix path: the chat
  template's prefix once, finished rows leave the batch).

It prints the wall time and new tokens/s of both, the ratio, and how many
completions differ (0 expected: both are greedy on the same tokens; a difference
is a near-tie decided by float rounding, listed). Run it alone on the machine:
``flock /tmp/probe-heavy.lock .venv/bin/python benchmarks/generation.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import MAX_NEW_TOKENS, demo_prompts

from probe.backends.base import GenerationSettings, LoadOptions, Prompt


def plain_generate(backend: Any, prompts: Sequence[Prompt], batch_size: int,
                   max_new_tokens: int) -> list[list[int]]:
    """The baseline: ``model.generate`` over length-sorted, left-padded batches; the new
    token ids of each prompt (up to its first eos), in the prompts' order."""
    import torch
    from transformers import GenerationConfig

    encoded = [backend._encode(p) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
    eos = sorted(backend.eos_token_ids)
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                              pad_token_id=backend.pad_token_id, eos_token_id=eos)
    out: list[list[int]] = [[] for _ in prompts]
    model = backend.model
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            width = max(len(encoded[i]) for i in chunk)
            ids = torch.full((len(chunk), width), backend.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(chunk):
                ids[row, width - len(encoded[i]):] = torch.tensor(encoded[i])
                mask[row, width - len(encoded[i]):] = 1
            output = model.generate(input_ids=ids, attention_mask=mask,
                                    generation_config=config)
            for row, i in enumerate(chunk):
                new = output[row, width:].tolist()
                end = next((k for k, t in enumerate(new) if t in backend.eos_token_ids),
                           len(new))
                out[i] = new[:end]
    return out


def bench_generation(model_ref: str, prompts: Sequence[Prompt], batch_size: int,
                     max_new_tokens: int, report: Callable[[str], None]) -> dict[str, float]:
    """Both ways on ``prompts``; the figures, also printed through ``report``."""
    from probe.backends.hf import load_backend

    backend = load_backend(model_ref, LoadOptions(device="cpu", dtype="float32",
                                                  batch_size=batch_size))
    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    backend.generate(list(prompts[:2]), GenerationSettings(max_new_tokens=2))  # warm up

    start = time.perf_counter()
    plain_ids = plain_generate(backend, prompts, batch_size, max_new_tokens)
    plain_s = time.perf_counter() - start
    plain = [backend._text(ids, max_new_tokens).text for ids in plain_ids]

    start = time.perf_counter()
    ours = [c.text for c in backend.generate(prompts, settings)]
    ours_s = time.perf_counter() - start
    # Both counted the same way (the completion text re-tokenized), so equal completions
    # count equal.
    ours_tokens = sum(backend.count_tokens(t) for t in ours)
    plain_tokens = sum(backend.count_tokens(t) for t in plain)

    differ = [i for i, (a, b) in enumerate(zip(plain, ours, strict=True)) if a != b]
    path = "shared-prefix path" if backend.split() is not None else "plain path"
    report(f"{len(prompts)} prompts, at most {max_new_tokens} new tokens, batch {batch_size}, "
           f"{model_ref}")
    report(f"model.generate, sorted batches   {plain_s:8.2f} s  "
           f"{plain_tokens / plain_s:8.1f} new tokens/s")
    report(f"HF backend ({path}) {ours_s:8.2f} s  {ours_tokens / ours_s:8.1f} new tokens/s")
    report(f"backend / model.generate: {plain_s / ours_s:.2f}x faster (wall time ratio)")
    report(f"completions that differ: {len(differ)} of {len(prompts)}")
    for i in differ[:10]:
        report(f"  {prompts[i].text!r}: generate {plain[i]!r} / backend {ours[i]!r}")
    return {"prompts": len(prompts), "plain_s": plain_s, "backend_s": ours_s,
            "plain_tokens_per_s": plain_tokens / plain_s,
            "backend_tokens_per_s": ours_tokens / ours_s, "speedup": plain_s / ours_s,
            "differ": len(differ), "plain_tokens": plain_tokens, "backend_tokens": ours_tokens}


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    parser.add_argument("--quick", action="store_true", help="the first 60 prompts")
    args = parser.parse_args(argv)
    prompts = demo_prompts()
    if args.quick:
        prompts = prompts[:60]
    return bench_generation(args.model, prompts, args.batch_size, args.max_new_tokens, print)


if __name__ == "__main__":
    main()
