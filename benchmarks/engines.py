"""The engines side by side: the demo workload and a 1,000-variant suite through the HF
engine and the vLLM engine, wall time and new tokens/s as ratios against HF from one
run (issue 13, item 7).

Workloads (``workload.py``): ``demo``, every variant of a demo run (397 prompts);
``1000``, the first 1,000 variants of a suite written into a temporary directory
from capitals_unlearning (25 countries, the demo's operators, more typos). Each is
generated greedily (48 new tokens at most, the suites' setting) by the base
(SmolLM2-135M-Instruct) and the candidate (the demo adapter: a LoRARequest per
request on vLLM, the peft adapter toggled on HF), in fp32 by default.

Each engine runs in a child process of its own, one after the other, so neither
sees the other's memory or threads. vLLM lives in another venv on this machine
(``.venv-vllm``: it needs transformers < 5.20), so its child runs with
``--vllm-python`` (default: this python when it has vllm, else
``.venv-vllm/bin/python``). A child that fails (vLLM not installed, no engine
registered) is reported as one line and the table shows the engines that ran.

The table: load time, generation wall time, new tokens/s (completions re-tokenized
by the model's tokenizer, the same for both engines), the ratios against HF, and
how many completions differ from HF's. On a CPU the HF backend may well be the
faster one (its shared-prefix paths were tuned for CPU, vLLM's CPU build is not
its main target); the script says which engine won, plainly. Run it alone:
``flock /tmp/probe-heavy.lock .venv/bin/python benchmarks/engines.py`` (``--quick``:
40 demo prompts and 100 of the suite's).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import (
    MAX_NEW_TOKENS,
    REPO,
    as_json,
    demo_prompts,
    from_json,
    thousand_suite,
)

from probe.backends.base import GenerationSettings, LoadOptions, Prompt

ADAPTER = str(REPO / "models" / "demo-adapter")
VLLM_VENV_PYTHON = REPO / ".venv-vllm" / "bin" / "python"


def measure(engine: str, base: str, candidate: str, workloads: dict[str, list[Prompt]],
            dtype: str, max_new_tokens: int) -> dict[str, Any]:
    """Load the pair on ``engine`` and generate every workload with both models; the
    load time and, per workload, the wall time, new tokens and completions."""
    from probe.backends import load_pair

    start = time.perf_counter()
    pair = load_pair(base, candidate, LoadOptions(engine=engine, dtype=dtype))
    load_s = time.perf_counter() - start
    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    pair.base.generate(next(iter(workloads.values()))[:2],  # warm up (first-call set-up)
                       GenerationSettings(max_new_tokens=2))
    results: dict[str, Any] = {"engine": engine, "load_s": load_s, "workloads": {}}
    for name, prompts in workloads.items():
        start = time.perf_counter()
        texts = [[c.text for c in side.generate(prompts, settings)]
                 for side in (pair.base, pair.candidate)]
        wall = time.perf_counter() - start
        tokens = sum(pair.base.count_tokens(t) for side in texts for t in side)
        results["workloads"][name] = {"wall_s": wall, "tokens": tokens, "texts": texts}
    return results


def table(results: Sequence[dict[str, Any]], report: Callable[[str], None]) -> dict[str, float]:
    """The comparison table (ratios against the first engine, HF); figures by key."""
    reference = results[0]
    figures: dict[str, float] = {}
    report(f"{'workload':<9} {'engine':<7} {'load s':>7} {'wall s':>8} {'new tok/s':>10} "
           f"{'wall vs ' + reference['engine']:>11} {'tok/s vs':>9} {'differ':>11}")
    for name, ref in reference["workloads"].items():
        for result in results:
            ours = result["workloads"][name]
            rate = ours["tokens"] / ours["wall_s"]
            ref_rate = ref["tokens"] / ref["wall_s"]
            pairs = [(a, b) for side_a, side_b in zip(ours["texts"], ref["texts"], strict=True)
                     for a, b in zip(side_a, side_b, strict=True)]
            differ = sum(a != b for a, b in pairs)
            report(f"{name:<9} {result['engine']:<7} {result['load_s']:7.1f} "
                   f"{ours['wall_s']:8.1f} {rate:10.1f} {ours['wall_s'] / ref['wall_s']:10.2f}x "
                   f"{rate / ref_rate:8.2f}x {differ:>5} / {len(pairs):<5}")
            key = f"{name}_{result['engine']}"
            figures.update({f"{key}_wall_s": ours["wall_s"], f"{key}_tokens_per_s": rate,
                            f"{key}_differ": differ, f"{key}_speedup": ref["wall_s"] /
                            ours["wall_s"]})
    for result in results[1:]:
        total = sum(w["wall_s"] for w in result["workloads"].values())
        ref_total = sum(w["wall_s"] for w in reference["workloads"].values())
        faster, slower = ((result["engine"], reference["engine"]) if total < ref_total
                          else (reference["engine"], result["engine"]))
        ratio = max(total, ref_total) / min(total, ref_total)
        report(f"Over all workloads {faster} was {ratio:.2f}x faster than {slower} on this "
               "machine.")
    return figures


def _python_for(engine: str, vllm_python: str | None) -> str:
    if engine != "vllm" or importlib.util.find_spec("vllm") is not None:
        return sys.executable
    return vllm_python or str(VLLM_VENV_PYTHON)


def run_child(engine: str, python: str, job: dict[str, Any], work: Path) -> dict[str, Any]:
    """``measure`` in a fresh process of ``python``; raises ``RuntimeError`` with the
    child's last line when it fails."""
    job_path, out_path = work / f"{engine}-job.json", work / f"{engine}-out.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    done = subprocess.run([python, __file__, "--child", engine, "--job", str(job_path),
                           "--out", str(out_path)], capture_output=True, text=True,
                          cwd=REPO, check=False)
    if done.returncode != 0 or not out_path.is_file():
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise RuntimeError(lines[-1])
    result: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--base", default="smollm2-135m")
    parser.add_argument("--candidate", default=ADAPTER)
    parser.add_argument("--engines", default="hf,vllm", help="comma list; the first is the "
                        "reference of the ratios")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    parser.add_argument("--vllm-python", default=None,
                        help="the python of a venv with vllm (default .venv-vllm/bin/python)")
    parser.add_argument("--quick", action="store_true", help="40 demo prompts, 100 variants")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:  # one engine's measurement, in its own process
        job = json.loads(Path(args.job).read_text(encoding="utf-8"))
        workloads = {k: from_json(v) for k, v in job["workloads"].items()}
        result = measure(args.child, job["base"], job["candidate"], workloads, job["dtype"],
                         job["max_new_tokens"])
        Path(args.out).write_text(json.dumps(result), encoding="utf-8")
        return {}

    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        demo = demo_prompts()
        _, thousand = thousand_suite(work, 1000)
        if args.quick:
            demo, thousand = demo[:40], thousand[:100]
        job = {"base": args.base, "candidate": args.candidate, "dtype": args.dtype,
               "max_new_tokens": args.max_new_tokens,
               "workloads": {"demo": as_json(demo), "1000": as_json(thousand)}}
        print(f"base {args.base}, candidate {args.candidate}, {args.dtype}, at most "
              f"{args.max_new_tokens} new tokens; demo: {len(demo)} prompts, 1000: "
              f"{len(thousand)} prompts, each through both models")
        results = []
        for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
            try:
                results.append(run_child(engine, _python_for(engine, args.vllm_python), job,
                                         work))
            except RuntimeError as err:
                print(f"{engine}: not measured: {err}")
        if not results:
            raise SystemExit("no engine ran")
        return table(results, print)


if __name__ == "__main__":  # vLLM starts its engine by spawn: the guard is required
    main()
