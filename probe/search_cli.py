"""``probe search``: the adversarial search from the command line.

    probe search suites/capitals_unlearning.yaml --base smollm2-135m \\
        --candidate models/demo-adapter --budget 40 --probe france

Found variants are printed with their chain and both completions and appended to
the suite's regression file (``x.regressions.json``), which later runs replay first.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path

from probe.backends import BackendOptions, check_ref, load_pair
from probe.engine.cache import completions_dir
from probe.engine.regressions import REGRESSION_VERSION, add_regression, regression_path
from probe.engine.search import SEARCH_OPERATORS, SearchSettings, search_suite
from probe.errors import UsageError
from probe.files import check_outputs, model_inputs
from probe.operators import OPERATORS
from probe.report.outputs import suite_inputs
from probe.report.table import excerpt
from probe.spec import Suite, load_suite


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``probe search`` options."""
    parser.add_argument("suite", help="the suite file to search")
    parser.add_argument("--base", required=True, help="base model")
    parser.add_argument("--candidate", required=True, help="fine-tuned model or adapter")
    parser.add_argument("--budget", type=int, default=40,
                        help="new variants evaluated per probe (default 40; shrinking may "
                             "spend as many again)")
    parser.add_argument("--max-chain", type=int, default=3, help="longest chain (default 3)")
    parser.add_argument("--probe", action="append", default=[],
                        help="search only this probe id (repeatable)")
    parser.add_argument("--operators", default=",".join(SEARCH_OPERATORS),
                        help="comma-separated operators to chain, simplest first")
    parser.add_argument("--seed", type=int, default=0, help="search seed (default 0)")
    parser.add_argument("--out", default=None,
                        help="regression file (default: x.regressions.json beside the suite)")
    parser.add_argument("--cache-dir", default=None, help="completion cache (default .probe-cache)")
    parser.add_argument("--no-cache", action="store_true", help="do not use the completion cache")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")


def _check_out(out: Path, label: str, suite: Suite, models: Iterable[tuple[str, str]],
               cache: Path | None) -> None:
    """Before any model loads: the regression file must not be an input of the search,
    something other than a file, or a file that is not a regression file (which
    ``probe search`` would otherwise tell the user to "fix or delete")."""
    inputs = [*suite_inputs(suite, regressions=False), *model_inputs(models),
              (f"the completion cache {cache}", cache)]
    check_outputs([(label, out)], inputs)
    if label == "--out" and out.is_file() and not _is_regression_file(out):
        # The suite's own damaged regression file is "fix or delete"; a file the user
        # named that never was one is the command line's mistake, and not ours to delete.
        raise UsageError(f"--out {out}: not a regression file (probe search writes them); "
                         "give a new path, or a regression file probe search wrote")


def _is_regression_file(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(data, dict) and data.get("regression_version") == REGRESSION_VERSION
            and isinstance(data.get("found"), list))


def run_search(args: argparse.Namespace) -> int:
    """Run the search; exit 0 (what was found is reported, not a failure)."""
    operators = tuple(o.strip() for o in args.operators.split(",") if o.strip())
    unknown = [o for o in operators if o not in OPERATORS]
    if not operators or unknown:
        raise UsageError(f"--operators: unknown operator(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(OPERATORS.names())}")
    if args.budget < 1 or args.max_chain < 1:
        raise UsageError("--budget and --max-chain must be positive integers")
    if args.no_cache and args.cache_dir:
        raise UsageError("--no-cache and --cache-dir contradict each other; give one of them")
    check_ref(args.base, "--base")
    check_ref(args.candidate, "--candidate")
    suite = load_suite(args.suite)
    wanted = set(args.probe)
    missing = wanted - {p.id for p in suite.probes}
    if missing:
        raise UsageError(f"--probe: no probe {', '.join(sorted(missing))} in {args.suite}")
    cache = None if args.no_cache else completions_dir(args.cache_dir)
    _check_out(Path(args.out) if args.out else regression_path(suite.path),
               "--out" if args.out else f"the regression file of {args.suite}", suite,
               (("--base", args.base), ("--candidate", args.candidate)), cache)
    pair = load_pair(args.base, args.candidate, BackendOptions(device=args.device,
                                                               dtype=args.dtype))
    settings = SearchSettings(args.budget, args.max_chain, operators, args.seed)
    found = search_suite(suite, pair, settings, cache, sorted(wanted), report=print)
    out = Path(args.out) if args.out else None
    for f in found:
        v = f.variant
        path = add_regression(suite, f.probe_id, v,
                              {"base": pair.base.info.name,
                               "base_fingerprint": pair.base.info.fingerprint,
                               "candidate": pair.candidate.info.name,
                               "candidate_fingerprint": pair.candidate.info.fingerprint},
                              {"base": f.base_completion, "candidate": f.candidate_completion},
                              out)
        sim = "" if v.similarity is None else f", similarity {v.similarity:.2f}"
        print(f"\nfound for {f.probe_id}: chain {' -> '.join(v.chain)} "
              f"(seeds {', '.join(str(s.seed) for s in v.steps)}{sim})")
        print(f"  variant:   {v.prompt.text!r}"
              + (f" [prefill {v.prompt.prefill!r}]" if v.prompt.prefill else "")
              + ("" if v.prompt.chat else " [raw]"))
        print(f"  base:      {excerpt(f.base_completion, 100)}")
        print(f"  candidate: {excerpt(f.candidate_completion, 100)}")
        print(f"  saved to {path}")
    if not found:
        print("nothing found within the budget")
    return 0
