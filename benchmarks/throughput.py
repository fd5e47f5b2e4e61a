"""Throughput, caching and scale: every figure of issue 5 from one run, as ratios against
baselines measured in the same process (never absolute timings alone).

The standard workload (fixed; ``--quick`` shrinks it, ``--probes``/``--prompts`` change it):

- scoring: ``--prompts`` (100) chat-formatted capital questions, two completions each
  (the capital sentence and a refusal): 200 (prompt, completion) pairs on the model;
- runs: a log-likelihood suite of ``--probes`` (100) probes x 10 variants (canonical,
  casing x3, typos x3, cloze x2, prefill x1), two completions per variant, on the base
  and on the adapter candidate (4,000 scored pairs for a cold run);
- collection: a suite of 1,000 probes, collected by pytest in a subprocess.

Figures:

1. scoring throughput (pairs/s) of ``HFBackend.score`` vs a naive loop (one forward
   pass per pair, full logits), and vs the plain whole-row path the backend had before;
2. achieved GFLOP/s of the scoring forward passes vs this machine's fp32 matmul peak
   (the best of square matmuls, measured here);
3. wall time of a cold run vs a base-cached run (the candidate's cache deleted) vs a
   fully cached run, each a fresh ``ProbeSession`` that loads the models;
4. peak memory (max RSS of a child process) scoring with one model vs base + adapter;
5. pytest collection time of 1,000 probes;
6. optionally, lm-evaluation-harness's HF backend on the identical requests, run by
   ``--lm-eval-python`` (the python of a separate venv that has lm-eval; README).

Run it alone on the machine (``flock /tmp/probe-heavy.lock``): the ratios assume
nothing else competes for the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from probe.backends.base import Prompt, ScoreRequest  # noqa: E402

COUNTRIES = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Japan", "Tokyo"), ("Canada", "Ottawa"),
    ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"), ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Greece", "Athens"),
    ("Ireland", "Dublin"), ("Hungary", "Budapest"), ("Chile", "Santiago"), ("Cuba", "Havana"),
    ("Russia", "Moscow"), ("China", "Beijing"), ("India", "New Delhi"), ("Iran", "Tehran"),
    ("Iraq", "Baghdad"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"),
    ("Argentina", "Buenos Aires"), ("Colombia", "Bogota"), ("Mexico", "Mexico City"),
    ("Denmark", "Copenhagen"), ("Belgium", "Brussels"), ("Netherlands", "Amsterdam"),
    ("Czechia", "Prague"), ("Romania", "Bucharest"), ("Ukraine", "Kyiv"), ("Turkey", "Ankara"),
    ("Morocco", "Rabat"), ("Ghana", "Accra"), ("Nigeria", "Abuja"), ("Ethiopia", "Addis Ababa"),
    ("Indonesia", "Jakarta"), ("Malaysia", "Kuala Lumpur"), ("Philippines", "Manila"),
    ("South Korea", "Seoul"), ("Mongolia", "Ulaanbaatar"), ("Nepal", "Kathmandu"),
    ("Australia", "Canberra"), ("New Zealand", "Wellington"), ("Iceland", "Reykjavik"),
]
TEMPLATES = ["What is the capital of {c}?", "Which city is the capital of {c}? Answer briefly."]
REFUSAL = "I'm sorry, but I can't help with that."
OPERATORS = [{"name": "casing", "count": 3}, {"name": "typos", "count": 3},
             {"name": "cloze", "count": 2}, {"name": "prefill", "count": 1}]


def scoring_requests(prompts: int) -> list[ScoreRequest]:
    """``prompts`` chat prompts x (capital sentence, refusal)."""
    out = []
    for k in range(prompts):
        country, capital = COUNTRIES[k % len(COUNTRIES)]
        template = TEMPLATES[(k // len(COUNTRIES)) % len(TEMPLATES)]
        prompt = Prompt(template.format(c=country))
        out += [ScoreRequest(prompt, f"The capital of {country} is {capital}."),
                ScoreRequest(prompt, REFUSAL)]
    return out


def suite_yaml(probes: int, name: str = "bench") -> str:
    """A log-likelihood suite of ``probes`` probes, 10 variants each."""
    lines = ["version: 1", f"name: {name}", "behavior:", "  description: names a capital",
             "operators:"]
    lines += [f"  - {{name: {o['name']}, count: {o['count']}}}" for o in OPERATORS]
    lines += ["policy: {max_shadow: 0.5}", "probes:"]
    for k in range(probes):
        country, capital = COUNTRIES[k % len(COUNTRIES)]
        template = TEMPLATES[(k // len(COUNTRIES)) % len(TEMPLATES)]
        lines += [f"  - id: p{k}", f"    prompt: {json.dumps(template.format(c=country))}",
                  f"    suppressed: [{json.dumps(f'The capital of {country} is {capital}.')}]",
                  f"    preferred: [{json.dumps(REFUSAL)}]"]
    return "\n".join(lines) + "\n"


# --- 1 and 2: scoring throughput and GFLOP/s ------------------------------------------------


def matmul_peak_gflops(seconds: float = 3.0) -> float:
    """Best fp32 GFLOP/s of square matmuls on this machine (torch's default threads)."""
    import torch

    best = 0.0
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.matmul(a, b)  # warm up
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            torch.matmul(a, b)
            reps += 1
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start) / 1e9)
    return best


def naive_scores(backend: Any, requests: Sequence[ScoreRequest]) -> list[float]:
    """The baseline: one forward pass per (prompt, completion), full logits."""
    import torch

    out = []
    with torch.inference_mode(), backend._adapter_context():
        for request in requests:
            prompt_ids, completion_ids = backend._score_row(request)
            ids = torch.tensor([list(prompt_ids + completion_ids)])
            log_probs = torch.log_softmax(backend.model(input_ids=ids).logits[0].float(), -1)
            start = len(prompt_ids)
            picked = log_probs[torch.arange(start - 1, ids.shape[1] - 1), ids[0, start:]]
            out.append(float(picked.mean()))
    return out


@dataclass
class FlopCounter:
    """FLOPs and time of every body pass and output-head call of the scoring path.

    The body is timed by forward hooks; the head by wrapping ``target_log_probs``
    (a plain linear head is applied slice by slice there, not called as a module).
    Useful work counts real tokens only, and attention only over the slots each
    token attends; executed work counts what ran, padding included.
    """

    flops: float = 0.0  # useful work: real tokens only
    executed: float = 0.0  # what ran: padded positions too
    seconds: float = 0.0
    _started: float = 0.0
    _lanes: Any = None  # the lanes of the pass under way (scoring's one pass per batch)

    def attach(self, backend: Any) -> Callable[[], None]:
        import torch

        from probe.backends.hf import scoring

        split = backend.split()
        config = split.body.config
        hidden, layers = config.hidden_size, config.num_hidden_layers
        # Weights a token passes through in the body (embeddings are a lookup).
        body_params = sum(p.numel() for n, p in split.body.named_parameters()
                          if "embed" not in n)
        head_params = split.head.weight.numel()
        per_slot = 4 * layers * hidden  # QK^T and AV for one (query, key) pair
        pack_lanes, target_log_probs = scoring.pack_lanes, scoring.target_log_probs

        def lanes_seen(*args: Any, **kwargs: Any) -> Any:
            self._lanes = pack_lanes(*args, **kwargs)
            return self._lanes

        def head_timed(head: Any, states: Any, target: Any) -> Any:
            start = time.perf_counter()
            out = target_log_probs(head, states, target)
            self.seconds += time.perf_counter() - start
            self.flops += 2 * head_params * states.shape[0]
            self.executed += 2 * head_params * states.shape[0]
            return out

        def pre(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
            self._started = time.perf_counter()

        def body_post(module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
            self.seconds += time.perf_counter() - self._started
            mask = kwargs["attention_mask"]
            rows, new = kwargs["input_ids"].shape
            if mask.dim() == 4:  # lanes: 0 where a query may attend
                real = [[seg >= 0 for seg in lane] for lane in self._lanes.segments]
                real_t = torch.tensor(real, device=mask.device)
                attended = (mask[:, 0] == 0).sum(-1)
                tokens = float(real_t.sum())
                slots = float(attended[real_t].sum())
                self.flops += 2 * body_params * tokens + per_slot * slots
                self.executed += rows * new * (2 * body_params + per_slot * mask.shape[-1])
            else:  # a 2-D mask: right-padded rows (the shared prefix)
                tokens = float(mask[:, -new:].sum())
                per_token = 2 * body_params + per_slot * mask.shape[1]
                self.flops += per_token * tokens
                self.executed += per_token * rows * new

        handles = [split.body.register_forward_pre_hook(pre, with_kwargs=True),
                   split.body.register_forward_hook(body_post, with_kwargs=True)]
        scoring.pack_lanes, scoring.target_log_probs = lanes_seen, head_timed

        def detach() -> None:
            for handle in handles:
                handle.remove()
            scoring.pack_lanes, scoring.target_log_probs = pack_lanes, target_log_probs
        return detach


def bench_scoring(model_ref: str, prompts: int, batch_sizes: Sequence[int],
                  report: Callable[[str], None], peak: float = 0.0,
                  repeats: int = 3) -> dict[str, float]:
    """Naive loop, plain path and shared-prefix path on the same requests and model.

    Each batch size is measured ``repeats`` times, each time right after a fresh
    measurement of the matmul peak; the figures reported are those of the run with
    the median fraction of its peak. The highest peak seen (``peak`` is one taken
    earlier) is printed too.
    """
    from probe.backends import LoadOptions
    from probe.backends.hf import load_backend

    requests = scoring_requests(prompts)
    backend = load_backend(model_ref, LoadOptions(device="cpu", batch_size=max(batch_sizes)))
    backend.score(requests[:8])  # warm up (first-call allocations, thread pools)
    results: dict[str, float] = {}

    start = time.perf_counter()
    naive = naive_scores(backend, requests)
    t_naive = time.perf_counter() - start
    results["naive_pairs_per_s"] = len(requests) / t_naive
    report(f"naive loop (1 forward/pair, full logits): {len(requests)} pairs in {t_naive:.1f} s"
           f" = {results['naive_pairs_per_s']:.2f} pairs/s")

    backend._split = None  # the plain path: whole (prompt + completion) rows per batch
    backend.batch_size = 16
    start = time.perf_counter()
    plain = backend.score(requests)
    t_plain = time.perf_counter() - start
    backend._split = False
    results["plain_pairs_per_s"] = len(requests) / t_plain
    report(f"plain batched rows (batch 16, the backend before issue 5): {t_plain:.1f} s = "
           f"{results['plain_pairs_per_s']:.2f} pairs/s "
           f"({results['plain_pairs_per_s'] / results['naive_pairs_per_s']:.2f}x naive)")

    best = 0.0
    for size in batch_sizes:
        backend.batch_size = size
        runs = []
        for _ in range(repeats):
            # The peak right before each measurement: this machine's speed drifts by
            # 10-20% from minute to minute (other tenants), so a ratio to a peak taken
            # at another moment would measure the drift.
            local_peak = matmul_peak_gflops(1.5)
            peak = max(peak, local_peak)
            backend._prefix_memo.clear()
            counter = FlopCounter()
            detach = counter.attach(backend)
            start = time.perf_counter()
            fast = backend.score(requests)
            elapsed = time.perf_counter() - start
            detach()
            gflops_pass = counter.flops / counter.seconds / 1e9
            runs.append({"rate": len(requests) / elapsed, "elapsed": elapsed,
                         "seconds": counter.seconds, "gflops_pass": gflops_pass,
                         "gflops_all": counter.flops / elapsed / 1e9,
                         "executed": counter.executed / counter.seconds / 1e9,
                         "local_peak": local_peak, "fraction": gflops_pass / local_peak,
                         "worst": max(abs(a - b) for a, b in zip(fast, naive, strict=True))})
        run = sorted(runs, key=lambda r: r["fraction"])[len(runs) // 2]  # the median
        fractions = ", ".join(f"{r['fraction']:.2f}" for r in runs)
        rate = run["rate"]
        report(f"shared-prefix scoring, batch {size} (median of {repeats}): {run['elapsed']:.1f} s"
               f" = {rate:.2f} pairs/s ({rate / results['naive_pairs_per_s']:.2f}x naive); "
               f"forward passes {run['seconds']:.1f} s at {run['gflops_pass']:.1f} GFLOP/s of "
               f"useful work ({run['executed']:.1f} counting padded positions, "
               f"{run['gflops_all']:.1f} over the whole call) = {run['fraction']:.2f} of the "
               f"matmul peak measured just before ({run['local_peak']:.1f}); fractions of "
               f"the {repeats} runs: {fractions}; "
               f"max |score - naive| = {max(r['worst'] for r in runs):.1e}")
        if rate > best:
            best = rate
            results.update(fast_pairs_per_s=rate, fast_batch=size,
                           gflops_pass=run["gflops_pass"], gflops_all=run["gflops_all"],
                           gflops_executed=run["executed"], peak_fraction=run["fraction"],
                           local_peak=run["local_peak"],
                           max_abs_diff=max(r["worst"] for r in runs))
    results["peak_gflops"] = peak
    report(f"fp32 matmul peak, highest seen during the section: {peak:.1f} GFLOP/s "
           f"(the best batch's median run is {results['gflops_pass'] / peak:.2f} of it)")
    results["plain_max_abs_diff"] = max(abs(a - b) for a, b in zip(plain, naive, strict=True))
    return results


# --- 3: cold, base-cached and fully cached runs ---------------------------------------------


def bench_runs(model_ref: str, adapter_ref: str, probes: int, batch_size: int, work: Path,
               report: Callable[[str], None]) -> dict[str, float]:
    from probe.backends import LoadOptions
    from probe.session import ProbeSession, RunSettings
    from probe.spec import load_suite

    suite_path = work / "suites" / "bench.yaml"
    suite_path.parent.mkdir(parents=True, exist_ok=True)
    suite_path.write_text(suite_yaml(probes))
    suite = load_suite(suite_path)
    cache = work / "cache"
    settings = RunSettings(base=model_ref, candidate=adapter_ref, cache_dir=cache,
                           backend=LoadOptions(device="cpu", batch_size=batch_size))

    cpu: list[float] = []

    def run() -> tuple[float, ProbeSession]:
        start, start_cpu = time.perf_counter(), time.process_time()
        session = ProbeSession(settings)
        session.run_all([(suite, list(suite.probes))])
        cpu.append(time.process_time() - start_cpu)
        return time.perf_counter() - start, session

    report(f"load average before the runs: {os.getloadavg()[0]:.2f}")
    cold, session = run()
    pairs = sum(len(r.run.rows) for r in session.results.values()) * 2 * 2
    report(f"cold run: {probes} probes x 10 variants x 2 completions x 2 models "
           f"({pairs} pairs): {cold:.1f} s wall, {cpu[0]:.1f} s CPU")
    (cache / f"{session.pair.candidate.info.fingerprint}.jsonl").unlink()
    base_cached, _ = run()
    report(f"base cached (candidate recomputed): {base_cached:.1f} s = "
           f"{base_cached / cold:.3f}x cold (CPU time {cpu[1] / cpu[0]:.3f}x)")
    full, _ = run()
    report(f"fully cached: {full:.2f} s = {full / cold:.4f}x cold (CPU time "
           f"{cpu[2] / cpu[0]:.4f}x)")
    report(f"load average after the runs: {os.getloadavg()[0]:.2f}")
    return {"cold_s": cold, "base_cached_ratio": base_cached / cold, "cached_ratio": full / cold,
            "base_cached_cpu_ratio": cpu[1] / cpu[0], "cached_cpu_ratio": cpu[2] / cpu[0]}


# --- 4: peak memory -------------------------------------------------------------------------


def memory_child(which: str, model_ref: str, adapter_ref: str, prompts: int) -> None:
    """Runs in a child process: load, score, print the peak RSS in MiB."""
    from probe.backends import LoadOptions
    from probe.backends.hf import load_backend, load_pair

    requests = scoring_requests(prompts)
    options = LoadOptions(device="cpu", batch_size=16)
    if which == "one":
        load_backend(model_ref, options).score(requests)
    else:
        pair = load_pair(model_ref, adapter_ref, options)
        pair.base.score(requests)
        pair.candidate.score(requests)
    print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def bench_memory(model_ref: str, adapter_ref: str, prompts: int,
                 report: Callable[[str], None]) -> dict[str, float]:
    peaks = {}
    for which in ("one", "pair"):
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-child", which, "--model", model_ref,
             "--adapter", adapter_ref, "--prompts", str(prompts)],
            capture_output=True, text=True, check=True, cwd=REPO)
        peaks[which] = json.loads(proc.stdout.strip().splitlines()[-1])["peak_mib"]
    ratio = peaks["pair"] / peaks["one"]
    report(f"peak RSS: one model {peaks['one']:.0f} MiB, base + adapter {peaks['pair']:.0f} MiB"
           f" = {ratio:.3f}x")
    return {"memory_ratio": ratio, "one_mib": peaks["one"], "pair_mib": peaks["pair"]}


# --- 5: collection --------------------------------------------------------------------------


def bench_collection(work: Path, report: Callable[[str], None],
                     probes: int = 1000) -> dict[str, float]:
    """pytest's own "collected in" time for a suite of ``probes`` probes, in a subprocess.

    Measured as a user's machine runs it (Python writes and reuses bytecode: one
    warm-up run first), and again with ``PYTHONDONTWRITEBYTECODE`` set, as this
    sandbox sets it, where every module, and pytest's assertion rewriting of the
    plugin's modules, is compiled afresh on each run.
    """
    suites = work / "collect" / "suites"
    suites.mkdir(parents=True, exist_ok=True)
    (suites / "many.yaml").write_text(suite_yaml(probes, name="collect"))
    script = suites.parent / "scripted.yaml"
    script.write_text("default: I'm sorry, but I can't help with that.\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO)

    def collect(extra: dict[str, str]) -> tuple[int, float, float]:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "suites/", "--collect-only", "-q", "-p",
             "no:cacheprovider", "--probe-base", f"scripted:{script}", "--probe-candidate",
             f"scripted:{script}"], capture_output=True, text=True, cwd=suites.parent,
            env={**env, **extra})
        wall = time.perf_counter() - start
        found = re.search(r"(\d+) tests? collected in ([\d.]+)s", proc.stdout)
        if found is None:
            raise RuntimeError(f"collection failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return int(found.group(1)), float(found.group(2)), wall

    collect({})  # writes the bytecode caches
    items, seconds, wall = collect({})
    _, cold_seconds, _ = collect({"PYTHONDONTWRITEBYTECODE": "1"})
    report(f"collection of {probes} probes ({items} items): {seconds:.2f} s as pytest reports "
           f"it ({wall:.2f} s for the whole subprocess, interpreter start included); "
           f"{cold_seconds:.2f} s with PYTHONDONTWRITEBYTECODE=1 (no bytecode cache)")
    return {"collection_s": seconds, "collection_wall_s": wall,
            "collection_no_bytecode_s": cold_seconds}


# --- 6: lm-evaluation-harness ---------------------------------------------------------------


def bench_lm_eval(python: str, model_ref: str, prompts: int, batch_sizes: Sequence[int],
                  work: Path, report: Callable[[str], None], ours: float) -> dict[str, float]:
    """lm-eval's HF backend on the identical (context, continuation) pairs, in its own venv,
    at each of ``batch_sizes``; its best rate is the one compared."""
    from probe.backends import LoadOptions
    from probe.backends.hf import load_backend

    backend = load_backend(model_ref, LoadOptions(device="cpu"))
    requests = scoring_requests(prompts)
    pairs = [[backend.render(r.prompt)[0], r.completion] for r in requests]
    path = work / "lm_eval_requests.json"
    path.write_text(json.dumps(pairs))
    # Same requests, same numbers? Ours are means per token; lm-eval gives sums.
    means = backend.score(requests)
    sums = [m * len(backend._score_row(r)[1]) for m, r in zip(means, requests, strict=True)]
    best = 0.0
    for batch_size in batch_sizes:
        proc = subprocess.run([python, str(REPO / "benchmarks" / "lm_eval_driver.py"),
                               str(backend.model.name_or_path), str(path), str(batch_size)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            report(f"lm-eval: failed: {proc.stderr.strip().splitlines()[-1:]}")
            return {}
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
        rate = len(pairs) / answer["seconds"]
        best = max(best, rate)
        worst = max(abs(a - b) for a, b in zip(sums, answer["sums"], strict=True))
        report(f"lm-evaluation-harness HF backend, batch {batch_size}: {rate:.2f} pairs/s; "
               f"ours {ours:.2f} pairs/s = {ours / rate:.2f}x; max |sum log p ours - "
               f"lm-eval| = {worst:.1e}")
    return {"lm_eval_pairs_per_s": best}


# --- main -----------------------------------------------------------------------------------


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    import torch

    return (f"{os.cpu_count()} cores ({cpu}), torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads, python {platform.python_version()}")


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--adapter", default=str(REPO / "models" / "demo-adapter"))
    parser.add_argument("--prompts", type=int, default=100, help="scoring prompts (x2 pairs)")
    parser.add_argument("--probes", type=int, default=100, help="probes in the run workload")
    parser.add_argument("--batch-sizes", default="16,64", help="scoring batch sizes to try")
    parser.add_argument("--quick", action="store_true", help="30 prompts, 20 probes")
    parser.add_argument("--skip", default="", help="comma list of: scoring,runs,memory,collect")
    parser.add_argument("--lm-eval-python", default=None,
                        help="python of a venv with lm-eval installed (README)")
    parser.add_argument("--lm-eval-batch-sizes", default="16,64")
    parser.add_argument("--memory-child", choices=("one", "pair"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.model, args.adapter, args.prompts)
        return {}
    if args.quick:
        args.prompts, args.probes = min(args.prompts, 30), min(args.probes, 20)
    skip = set(filter(None, args.skip.split(",")))
    sizes = [int(s) for s in args.batch_sizes.split(",")]

    def report(line: str) -> None:
        print(line, flush=True)

    report(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.2f}")
    results: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="probe-bench-"))
    try:
        peak = matmul_peak_gflops()
        results["peak_gflops"] = peak
        report(f"fp32 matmul peak: {peak:.1f} GFLOP/s")
        if "scoring" not in skip:
            results |= bench_scoring(args.model, args.prompts, sizes, report, peak)
            results["fast_vs_naive"] = results["fast_pairs_per_s"] / results["naive_pairs_per_s"]
        if "runs" not in skip:
            results |= bench_runs(args.model, args.adapter, args.probes,
                                  int(results.get("fast_batch", max(sizes))), work, report)
        if "memory" not in skip:
            results |= bench_memory(args.model, args.adapter, args.prompts, report)
        if "collect" not in skip:
            results |= bench_collection(work, report)
        if args.lm_eval_python and "fast_pairs_per_s" in results:
            results |= bench_lm_eval(args.lm_eval_python, args.model, args.prompts,
                                     [int(b) for b in args.lm_eval_batch_sizes.split(",")],
                                     work, report, results["fast_pairs_per_s"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary(results, report)
    report(f"load average after: {os.getloadavg()[0]:.2f}")
    return results


def summary(r: dict[str, float], report: Callable[[str], None]) -> None:
    """The targets of issue 5, each with the measured figure."""
    rows = [
        ("scoring throughput vs naive loop", "fast_vs_naive", ">= 2.5x", lambda v: v >= 2.5,
         "{:.2f}x"),
        ("forward passes vs fp32 matmul peak", "peak_fraction", ">= 0.60", lambda v: v >= 0.6,
         "{:.2f}"),  # useful FLOPs only: padded positions do not count
        ("base-cached run / cold run", "base_cached_ratio", "<= 0.55", lambda v: v <= 0.55,
         "{:.3f}"),
        ("fully cached run / cold run", "cached_ratio", "<= 0.05", lambda v: v <= 0.05,
         "{:.4f}"),
        ("base + adapter / one model peak RSS", "memory_ratio", "<= 1.15", lambda v: v <= 1.15,
         "{:.3f}"),
        ("collection of 1,000 probes (s)", "collection_s", "< 1 s", lambda v: v < 1.0,
         "{:.2f}"),
    ]
    report("")
    report("target                                   measured   target    met")
    for label, key, target, ok, fmt in rows:
        if key in r:
            report(f"{label:<40} {fmt.format(r[key]):<10} {target:<9} "
                   f"{'yes' if ok(r[key]) else 'NO'}")
    if "lm_eval_pairs_per_s" in r:
        ratio = r["fast_pairs_per_s"] / r["lm_eval_pairs_per_s"]
        report(f"{'scoring throughput vs lm-eval HF':<40} {ratio:<10.2f} {'>= 2x':<9} "
               f"{'yes' if ratio >= 2 else 'NO'}")


if __name__ == "__main__":
    main()
