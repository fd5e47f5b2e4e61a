"""The engine comparison for a GPU machine with a bigger model: HF in fp32 and bf16, each on
the plain and the shared-prefix paths, and vLLM, all with ``--probe-batch-size auto``;
one table of generation and scoring throughput as ratios against the first row.

    python benchmarks/gpu_engines.py                          # Qwen/Qwen2.5-1.5B-Instruct
    python benchmarks/gpu_engines.py /models/my-7b            # a local checkpoint
    python benchmarks/gpu_engines.py --random-init qwen2.5-1.5b   # no network needed
    python benchmarks/gpu_engines.py --random-init path/to/config.json
    python benchmarks/gpu_engines.py --device cpu --tiny      # the machinery, on CPU

``--random-init`` builds a model of that shape with random weights (the SmolLM2
tokenizer, the vocabulary cut to its size) and saves it to a temporary directory:
the throughput of a realistic size without a download; its completions are noise,
so only the timings and the agreement between rows mean anything. The workload is
the demo suites' variants (``workload.demo_prompts``), ``--max-new-tokens`` new
tokens (48), and two completions scored per prompt.

Each row runs in a child process of its own (``PROBE_FAST_PATHS`` decides the path
at load, docs/gpu.md), one after the other. This has not run on a GPU yet (no GPU
where it was written); ``tests/test_benchmark_machinery.py`` runs it with
``--device cpu --tiny``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import MAX_NEW_TOKENS, REPO, as_json, demo_prompts, from_json

from probe.backends.base import GenerationSettings, LoadOptions, ScoreRequest

# Model shapes for --random-init (from the published config.json files).
SHAPES: dict[str, dict[str, Any]] = {
    "qwen2.5-1.5b": {"model_type": "qwen2", "hidden_size": 1536, "intermediate_size": 8960,
                     "num_hidden_layers": 28, "num_attention_heads": 12,
                     "num_key_value_heads": 2, "max_position_embeddings": 32768,
                     "rope_theta": 1000000.0, "tie_word_embeddings": True},
    "llama-3.1-8b": {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
                     "num_hidden_layers": 32, "num_attention_heads": 32,
                     "num_key_value_heads": 8, "max_position_embeddings": 131072,
                     "rope_theta": 500000.0, "tie_word_embeddings": False},
    "tiny": {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "max_position_embeddings": 2048, "tie_word_embeddings": False},
}
# (engine, dtype, PROBE_FAST_PATHS): the rows, the first is the reference.
ROWS = [("hf", "float32", "off"), ("hf", "float32", "on"), ("hf", "bfloat16", "off"),
        ("hf", "bfloat16", "on"), ("vllm", "bfloat16", "auto")]
REFUSAL = "I'm sorry, but I can't help with that."


def random_model(shape: str, tokenizer_ref: str, out: Path) -> Path:
    """A randomly initialised model of ``shape`` (a name in ``SHAPES`` or a config.json)
    with the tokenizer of ``tokenizer_ref``, saved in ``out``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from probe.backends.hf import resolve_model_ref

    fields = dict(SHAPES[shape]) if shape in SHAPES else json.loads(
        Path(shape).read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_ref(tokenizer_ref).location)
    fields.update(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id,
                  bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id)
    model_type = fields.pop("model_type")
    config = AutoConfig.for_model(model_type, **fields)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def measure(job: dict[str, Any]) -> dict[str, Any]:
    """One row: load ``job["model"]`` on its engine and dtype, generate and score."""
    from probe.backends import load_backend
    from probe.backends.hf import HFBackend

    prompts = from_json(job["prompts"])
    start = time.perf_counter()
    backend = load_backend(job["model"], LoadOptions(engine=job["engine"], dtype=job["dtype"],
                                                     device=job["device"], batch_size=None))
    load_s = time.perf_counter() - start
    settings = GenerationSettings(max_new_tokens=job["max_new_tokens"])
    backend.generate(prompts[:2], GenerationSettings(max_new_tokens=2))  # warm up
    start = time.perf_counter()
    texts = [c.text for c in backend.generate(prompts, settings)]
    generate_s = time.perf_counter() - start
    requests = [ScoreRequest(p, c) for p in prompts for c in ("Paris.", REFUSAL)]
    start = time.perf_counter()
    scores = backend.score(requests)
    score_s = time.perf_counter() - start
    path = "vllm"
    if isinstance(backend, HFBackend):
        path = "fast" if backend.split() is not None else "plain"
    return {"load_s": load_s, "generate_s": generate_s, "score_s": score_s,
            "tokens": sum(backend.count_tokens(t) for t in texts), "texts": texts,
            "pairs": len(requests), "scores": scores, "batch": backend.batch_size,
            "path": path}


def table(rows: Sequence[tuple[str, dict[str, Any] | str]],
          report: Callable[[str], None]) -> None:
    """One line per row: a result, or why it did not run; ratios against the first."""
    report(f"{'row':<22} {'path':<6} {'batch':>5} {'load s':>7} {'gen s':>7} "
           f"{'tok/s':>8} {'x':>6} {'score s':>8} {'pairs/s':>8} {'x':>6} {'same':>9}")
    ref = next((r for _, r in rows if isinstance(r, dict)), None)
    for label, r in rows:
        if not isinstance(r, dict) or ref is None:
            report(f"{label:<22} not measured: {r}")
            continue
        rate, ref_rate = r["tokens"] / r["generate_s"], ref["tokens"] / ref["generate_s"]
        pairs, ref_pairs = r["pairs"] / r["score_s"], ref["pairs"] / ref["score_s"]
        same = sum(a == b for a, b in zip(r["texts"], ref["texts"], strict=True))
        report(f"{label:<22} {r['path']:<6} {r['batch']:>5} {r['load_s']:7.1f} "
               f"{r['generate_s']:7.2f} {rate:8.1f} {rate / ref_rate:5.2f}x "
               f"{r['score_s']:8.2f} {pairs:8.1f} {pairs / ref_pairs:5.2f}x "
               f"{same:>4}/{len(r['texts']):<4}")


def main(argv: Sequence[str] | None = None) -> list[tuple[str, dict[str, Any] | str]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("model", nargs="?", default="Qwen/Qwen2.5-1.5B-Instruct")
    parser.add_argument("--random-init", metavar="CONFIG",
                        help=f"a config.json or one of {', '.join(SHAPES)}")
    parser.add_argument("--tiny", action="store_true",
                        help="--random-init tiny, 12 prompts, 8 new tokens")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tokenizer", default="smollm2-135m",
                        help="the tokenizer of a --random-init model")
    parser.add_argument("--prompts", type=int, default=0, help="first N prompts (0: all)")
    parser.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    parser.add_argument("--rows", default="", help="comma list of row numbers (1-5) to run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        job = json.loads(Path(args.child).read_text(encoding="utf-8"))
        Path(job["out"]).write_text(json.dumps(measure(job)), encoding="utf-8")
        return []

    shape = "tiny" if args.tiny else args.random_init
    count = 12 if args.tiny and not args.prompts else args.prompts
    max_new = 8 if args.tiny else args.max_new_tokens
    prompts = demo_prompts()[:count or None]
    wanted = {int(n) for n in args.rows.split(",") if n.strip()} or set(range(1, 6))
    results: list[tuple[str, dict[str, Any] | str]] = []
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        model = str(random_model(shape, args.tokenizer, work / "model")) if shape else args.model
        print(f"{model if not shape else 'random ' + shape}: {len(prompts)} prompts, at most "
              f"{max_new} new tokens, 2 completions scored each, device {args.device}, "
              "batch size auto")
        for number, (engine, dtype, fast) in enumerate(ROWS, 1):
            if number not in wanted:
                continue
            label = f"{engine} {dtype}" + (f" fast={fast}" if engine == "hf" else "")
            if engine == "vllm" and importlib.util.find_spec("vllm") is None:
                results.append((label, "vllm is not installed in this python"))
                continue
            job = {"model": model, "engine": engine, "dtype": dtype, "device": args.device,
                   "prompts": as_json(prompts), "max_new_tokens": max_new,
                   "out": str(work / f"row{number}.json")}
            job_path = work / f"job{number}.json"
            job_path.write_text(json.dumps(job), encoding="utf-8")
            done = subprocess.run([sys.executable, __file__, "--child", str(job_path)],
                                  env={**os.environ, "PROBE_FAST_PATHS": fast}, cwd=REPO,
                                  capture_output=True, text=True, check=False)
            if done.returncode == 0:
                results.append((label, json.loads(Path(job["out"]).read_text("utf-8"))))
            else:
                lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
                results.append((label, lines[-1]))
    table(results, print)
    return results


if __name__ == "__main__":  # vLLM starts its engine by spawn: the guard is required
    main()
