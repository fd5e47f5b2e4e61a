"""Search operator chains that make the candidate show a suppressed behavior again.

A budgeted, hypothesis-driven search per probe (opt-in: it is not part of a run).
Found variants are printed with their chain and both completions and appended to the
suite's regression file (x.regressions.json), which later runs replay first. The
models load with the same options as ``probe run``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path

from probe.cli._arguments import add_options, model, run_options, seed
from probe.cli._common import EXIT_OK, say
from probe.engine.regressions import REGRESSION_VERSION
from probe.engine.search import SEARCH_OPERATORS
from probe.errors import UsageError
from probe.spec import Suite

EXAMPLES = ("probe search suites/capitals_unlearning.yaml --base smollm2-135m "
            "--candidate models/demo-adapter --budget 40 --probe france",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``probe search``'s arguments: one suite, both models, the search's budget and the
    options of every command that loads models."""
    parser.add_argument("suite", help="the suite file to search")
    add_options(parser, "models", "seed", "load", "cache", "data",
                required=("base", "candidate"))
    search = parser.add_argument_group("search options")
    search.add_argument("--budget", type=int, default=40,
                        help="new variants evaluated per probe (default 40; shrinking may "
                             "spend as many again)")
    search.add_argument("--max-chain", type=int, default=3, help="longest chain (default 3)")
    search.add_argument("--probe", action="append", default=[],
                        help="search only this probe id (repeatable)")
    search.add_argument("--operators", default=",".join(SEARCH_OPERATORS),
                        help="comma-separated operators to chain, simplest first")
    search.add_argument("--out", default=None,
                        help="regression file (default: x.regressions.json beside the suite)")


def _check_out(out: Path, label: str, suite: Suite, models: Iterable[tuple[str, str]],
               cache: Path | None) -> None:
    """Before any model loads: the regression file must not be an input of the search,
    something other than a file, or a file that is not a regression file (which
    ``probe search`` would otherwise tell the user to "fix or delete")."""
    from probe.files import check_outputs, model_inputs
    from probe.report.outputs import suite_inputs

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


def run(args: argparse.Namespace) -> int:
    """Run the search; exit 0 (what was found is reported, not a failure)."""
    from probe.api import load_suites
    from probe.backends import LoadOptions, check_models, load_pair
    from probe.engine.regressions import add_regression, regression_path
    from probe.engine.search import SearchSettings, search_suite
    from probe.operators import OPERATORS
    from probe.report.table import excerpt
    from probe.session import RunSettings

    operators = tuple(o.strip() for o in args.operators.split(",") if o.strip())
    unknown = [o for o in operators if o not in OPERATORS]
    if not operators or unknown:
        raise UsageError(f"--operators: unknown operator(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(OPERATORS.names())}")
    if args.budget < 1 or args.max_chain < 1:
        raise UsageError("--budget and --max-chain must be positive integers")
    options = run_options(args)
    base, candidate = model(args, "base"), model(args, "candidate")
    check_models(base, candidate, LoadOptions.from_options(options))
    suites = load_suites([args.suite], options)
    if len(suites) != 1:
        raise UsageError(f"{args.suite}: a directory of {len(suites)} suites; probe search "
                         "takes one suite file")
    suite = suites[0]
    wanted = set(args.probe)
    missing = wanted - {p.id for p in suite.probes}
    if missing:
        raise UsageError(f"--probe: no probe {', '.join(sorted(missing))} in {args.suite}")
    # The same settings a run would use: load options, and the cache checked now.
    settings = RunSettings.from_options(base, candidate, seed(args), options)
    _check_out(Path(args.out) if args.out else regression_path(suite.path),
               "--out" if args.out else f"the regression file of {args.suite}", suite,
               (("--base", base), ("--candidate", candidate)), settings.cache_dir)
    pair = load_pair(base, candidate, settings.backend)
    found = search_suite(suite, pair, SearchSettings(args.budget, args.max_chain, operators,
                                                     settings.seed),
                         settings.cache_dir, sorted(wanted), report=say)
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
        say(f"\nfound for {f.probe_id}: chain {' -> '.join(v.chain)} "
            f"(seeds {', '.join(str(s.seed) for s in v.steps)}{sim})")
        say(f"  variant:   {v.prompt.text!r}"
            + (f" [prefill {v.prompt.prefill!r}]" if v.prompt.prefill else "")
            + ("" if v.prompt.chat else " [raw]"))
        say(f"  base:      {excerpt(f.base_completion, 100)}")
        say(f"  candidate: {excerpt(f.candidate_completion, 100)}")
        say(f"  saved to {path}")
    if not found:
        say("nothing found within the budget")
    return EXIT_OK
