"""The ``probe`` command: the same engine as the pytest plugin, without pytest.

    probe run suites/ --base smollm2-135m --candidate models/demo-adapter
    probe vet suites/ --base smollm2-135m              # before the fine-tune: the base alone
    probe variants suites/capitals_unlearning.yaml     # preview, loads no model under test
    probe lock suites/capitals_unlearning.yaml         # freeze variants: x.lock.json
    probe check suites/                                # validate suite files
    probe compare last.json this.json                  # two run records side by side
    probe schema                                       # JSON Schema of suite files
    probe cache --prune-days 30                        # list the cache, drop unused files

Exit codes follow pytest's: 0 all probes pass, 1 some probe failed, 2 a suite
file is invalid, 3 a model could not be loaded or run, 4 the command line is wrong.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from probe.backends import BackendOptions, parse_batch_size
from probe.engine import distributed
from probe.engine.cache import ProbeCacheWarning, completions_dir
from probe.engine.outcome import fails_build
from probe.engine.variants import Variant
from probe.engine.vet import Flag, SuiteVetting, outcome_words, vet_suite
from probe.errors import ProbeError, SpecError, UsageError, did_you_mean
from probe.report.baseline import BaselineJudge, load_baseline
from probe.report.diff import diff_records, render_diff
from probe.report.outputs import ReportPaths, check_report_paths, run_inputs, write_reports
from probe.report.progress import TqdmProgress
from probe.report.record import build_record, read_record
from probe.report.safe_text import visible, visible_lines
from probe.report.table import failure_report, suite_report
from probe.report.terminal import baseline_lines, summary_lines
from probe.session import ProbeSession, RunSettings
from probe.spec import Suite, load_suite
from probe.spec.model import SUITE_GATE_ID

EXIT_OK, EXIT_FAILED, EXIT_SPEC, EXIT_BACKEND, EXIT_USAGE = 0, 1, 2, 3, 4


def _say(text: object = "", *, file: TextIO | None = None) -> None:
    """Print ``text`` safely: ids, prompts and completions can hold anything, so hidden
    characters are escaped and no line can be read as a CI workflow command."""
    print(visible_lines(text), file=file if file is not None else sys.stdout)


def _suite_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            files.append(path)
        else:
            from probe.files import special_kind

            # /dev/zero or a FIFO is there, and is no suite: say what it is.
            kind = special_kind(path)
            raise UsageError(f"{raw}: {kind}, not a suite file" if kind else
                             f"{raw}: no such file or directory")
    if not files:
        raise UsageError(f"no suite files (*.yaml) found in {', '.join(paths)}")
    return files


def _data_roots(args: argparse.Namespace) -> tuple[Path, ...]:
    """``--data-root``: where a suite's ``dataset`` may read besides the suite's directory."""
    from probe.spec.dataset import check_data_roots

    return check_data_roots(getattr(args, "data_root", None) or (), "--data-root")


def _add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", action="append", default=None, metavar="DIR",
                        help="a directory besides each suite's own that its `dataset:` files "
                             "may be read from (repeatable)")


def _load_all(paths: Sequence[str], args: argparse.Namespace) -> list[Suite]:
    roots = _data_roots(args)
    return [load_suite(f, data_roots=roots) for f in _suite_files(paths)]


def _cmd_check(args: argparse.Namespace) -> int:
    # Every file is checked, so one run lists every mistake (one line each).
    invalid = 0
    roots = _data_roots(args)
    for file in _suite_files(args.suites):
        try:
            suite = load_suite(file, data_roots=roots)
            # The lock is read and verified exactly as a run reads it (same error, exit 2).
            from probe.engine.lock import read_lock

            locked = read_lock(suite)
        except SpecError as err:
            _say(f"error: {err}", file=sys.stderr)
            invalid += 1
            continue
        _say(f"ok  {visible(suite.source)}: {visible(suite.name)}, {len(suite.probes)} probes, "
              f"{len(suite.operators)} operators{'' if locked is None else ', lock verified'}")
    return EXIT_SPEC if invalid else EXIT_OK


def _cmd_variants(args: argparse.Namespace) -> int:
    from probe.preview import preview_lines

    for suite in _load_all(args.suites, args):
        _say("\n".join(preview_lines(suite, args.seed, fresh=args.fresh)))
        _say()
    return EXIT_OK


def _cmd_lock(args: argparse.Namespace) -> int:
    from probe.engine.lock import lock_path
    from probe.files import check_outputs
    from probe.preview import lock_suite
    from probe.report.outputs import suite_inputs

    suites = _load_all(args.suites, args)
    # x.yaml and x.yml share x.lock.json; a lock path may be a link to a suite.
    check_outputs([(f"{s.source}'s lock", lock_path(s.source)) for s in suites],
                  [entry for s in suites for entry in suite_inputs(s, lock=False)])
    for suite in suites:
        _say(lock_suite(suite, args.seed))
    return EXIT_OK


def _cmd_search(args: argparse.Namespace) -> int:
    from probe.search_cli import run_search

    return run_search(args)


def _cmd_run(args: argparse.Namespace) -> int:
    missing = [o for o, v in (("--base", args.base), ("--candidate", args.candidate)) if not v]
    if missing:
        raise UsageError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                         "missing; for example: probe run suites/ --base smollm2-135m "
                         "--candidate models/demo-adapter")
    overrides = {k: v for k, v in (("alpha", args.alpha),
                                   ("on_inconclusive", args.on_inconclusive)) if v is not None}
    settings = _run_settings(args, args.candidate, overrides)
    paths = _report_paths(args)
    baseline = (None if paths.baseline is None else
                load_baseline(paths.baseline, updating=paths.update_baseline))
    suites = _load_all(args.suites, args)
    check_report_paths(paths, run_inputs(suites, settings, paths))  # before minutes of work
    session = ProbeSession(settings, progress=TqdmProgress())
    session.run_all([(suite, suite.probes) for suite in suites])
    shard = distributed.current()
    if shard is not None and not shard.is_main:
        return EXIT_OK  # under torchrun rank 0 alone reports (every rank has the results)
    record = build_record(session)
    judge = None if baseline is None else BaselineJudge(baseline, record, str(paths.baseline))
    failed = 0
    for suite_result in session.suite_results.values():
        name = suite_result.suite.name
        for result in suite_result.probes:
            if fails_build(result.verdict, result.policy):
                failed += _report_failure(failure_report(result), judge, paths,
                                          f"{name}::{result.run.probe.id}")
        if fails_build(suite_result.verdict, suite_result.suite.policy):
            failed += _report_failure(suite_report(suite_result), judge, paths,
                                      f"{name}::{SUITE_GATE_ID}")
    _say("\n".join(summary_lines(session)))
    if judge is not None:
        _say("\n".join(baseline_lines(judge)))
    for line in write_reports(session, paths, record=record):
        _say(line)
    return EXIT_FAILED if failed else EXIT_OK


def _run_settings(args: argparse.Namespace, candidate: str,
                  overrides: dict[str, object]) -> RunSettings:
    """The settings ``run`` and ``vet`` share: models, seed, cache and load options."""
    if args.no_cache and args.cache_dir:
        raise UsageError("--no-cache and --cache-dir contradict each other; give one of them")
    settings = RunSettings(
        base=args.base, candidate=candidate, seed=args.seed, policy_overrides=overrides,
        cache_dir=None if args.no_cache else completions_dir(args.cache_dir),
        backend=BackendOptions(device=args.device, dtype=args.dtype,
                               batch_size=parse_batch_size(args.batch_size),
                               trust_remote_code=args.trust_remote_code,
                               allow_pickle=args.allow_pickle))
    settings.check()
    return settings


def _cmd_vet(args: argparse.Namespace) -> int:
    """The base alone, run against itself: which probes are informative, which variants
    count, and what the gates can decide (``probe.engine.vet``)."""
    if not args.base:
        raise UsageError("--base is missing; for example: probe vet suites/ --base smollm2-135m")
    settings = _run_settings(args, args.base, {})
    suites = _load_all(args.suites, args)
    session = ProbeSession(settings, progress=TqdmProgress())
    session.run_all([(suite, suite.probes) for suite in suites])
    shard = distributed.current()
    if shard is not None and not shard.is_main:
        return EXIT_OK
    problems: list[str] = []
    for suite_result in session.suite_results.values():
        vetting = vet_suite(suite_result.suite, suite_result.probes, seed=args.seed)
        _say("\n".join(_vet_lines(vetting, args.base)) + "\n")
        problems += vetting.problems
    if problems:
        _say(f"{len(problems)} problem{'s' if len(problems) > 1 else ''}: the suites cannot be "
              "passed as they stand")
        _say("\n".join(f"  {p}" for p in problems))
        return EXIT_FAILED
    _say("ok: every probe is informative and a clean candidate can pass every gate")
    return EXIT_OK


def _vet_lines(v: SuiteVetting, base: str) -> list[str]:
    """``probe vet``'s report of one suite file."""
    import textwrap

    retain = v.direction == "retain"
    figure, clean = ("loss", "a candidate equal to the base") if retain else (
        "resurfacing", "a zero-leak candidate")
    change = "lost" if retain else "leaking"
    lines = [f"{visible(v.name)} ({visible(v.source)}): {v.direction}, {len(v.probes)} probes, "
             f"base {visible(base)}, alpha {v.alpha:g}, max_{figure} {v.limit:g}"]

    def flag_text(flag: Flag | None, n: int, what: str) -> str:
        if flag is None:
            return (f"cannot flag any {figure}: even all {n} counted variants {change} do not "
                    f"make {what} FAIL")
        spread = f", spread over {flag.probes} probes" if flag.probes > 1 else ""
        value = "-" if flag.value is None else f"{flag.value:.2f}"
        return (f"smallest {figure} flagged: {flag.changed}/{flag.of} counted variants "
                f"{change}{spread} ({figure} {value}, FAIL on {', '.join(flag.failed)})")

    def wrapped(label: str, variants: Sequence[Variant]) -> list[str]:
        groups: dict[str, list[int]] = {}
        for x in variants:
            groups.setdefault(x.operator, []).append(x.index)
        text = "; ".join(f"{op} {_ranges(indices)}" for op, indices in groups.items())
        return textwrap.wrap(f"{label}: {text or 'none'}", 100, initial_indent="    ",
                             subsequent_indent="      ", break_on_hyphens=False)

    for p in v.probes:
        if not p.informative:
            lines.append(f"  {visible(p.probe_id)}: UNINFORMATIVE: {p.uninformative_reason}; "
                         f"on_uninformative: {p.on_uninformative}, "
                         f"{outcome_words(p.on_uninformative)}")
            continue
        shown = ("prefers the suppressed completion" if p.base_canonical is None else
                 f"hit {p.base_canonical:.2f} >= floor {p.floor:g}")
        lines.append(f"  {visible(p.probe_id)}: informative ({p.tier}; the base shows the "
                     f"behavior on the canonical prompt: {shown})")
        lines.append(f"    counted {len(p.counted)}/{p.total} variants: the base shows the "
                     "behavior on them")
        lines += wrapped("shown on", p.counted)
        if p.not_counted:
            lines += wrapped("not shown on", p.not_counted)
        lines.append(f"    {clean}: {p.clean.value}")
        lines += [f"      {r}" for r in p.clean_reasons]
        lines.append(f"    {flag_text(p.flag, len(p.counted), 'it')}")
    lines.append(f"  suite gate: {v.counted}/{v.total} variants counted in "
                 f"{sum(p.informative for p in v.probes)} informative probes")
    lines.append(f"    {clean}: {v.clean.value}")
    lines += [f"      {r}" for r in v.clean_reasons]
    lines.append(f"    {flag_text(v.flag, v.counted, 'the suite gate')}")
    return lines


def _ranges(indices: Sequence[int]) -> str:
    """``1-3,7``: sorted indices with runs folded."""
    runs: list[list[int]] = []
    for i in sorted(indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _report_paths(args: argparse.Namespace) -> ReportPaths:
    if args.update_baseline and not args.baseline:
        raise UsageError("--update-baseline needs --baseline PATH: where to write the "
                         "accepted results")
    def path(value: str | None) -> Path | None:
        return None if value is None else Path(value)

    return ReportPaths(json=path(args.json), html=path(args.html), parquet=path(args.parquet),
                       baseline=path(args.baseline), update_baseline=args.update_baseline)


def _report_failure(report: str, judge: BaselineJudge | None, paths: ReportPaths,
                    key: str) -> int:
    """Print a failure; 1 when it fails the run, 0 when the baseline accepts it."""
    if paths.update_baseline:
        _say(report.splitlines()[0] + f" (accepted into the baseline {paths.baseline})\n")
        return 0
    if judge is not None:
        judgement = judge.judge(key)
        if not judgement.regression:
            _say(report.splitlines()[0] + f" ({judgement.note})\n")
            return 0
        report += f"\n  {judgement.note}"
    _say(report + "\n")
    return 1


def _cmd_compare(args: argparse.Namespace) -> int:
    from probe.files import refuse_special_input

    for path in (args.old, args.new):
        refuse_special_input(path, "probe compare:")
    old, new = read_record(args.old), read_record(args.new)
    changes = diff_records(old, new)
    _say("\n".join(render_diff(old, new, changes)))
    return EXIT_FAILED if any(c.regression for c in changes) else EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    from probe.spec.schema import generate_schema, schema_text, shipped_schema_text

    text = schema_text(generate_schema()) if args.generate else shipped_schema_text()
    if args.output:
        from probe.files import atomic_write_text, check_outputs

        check_outputs([("--output", args.output)])
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from probe.files import refuse_special_input

    paths = ReportPaths(html=Path(args.html) if args.html else None,
                        parquet=Path(args.parquet) if args.parquet else None)
    if not (paths.html or paths.parquet):
        raise UsageError("probe report: give --html PATH and/or --parquet PATH")
    refuse_special_input(args.record, "probe report:")
    # `probe report good.json --html good.json` would render the record over itself.
    check_report_paths(paths, [(f"the run record {args.record}", args.record)])
    record = read_record(args.record)
    if paths.html:
        from probe.report.html import write_html

        _say(f"HTML report: {write_html(record, paths.html)}")
    if paths.parquet:
        from probe.report.export import write_parquet

        _say(f"parquet rows: {write_parquet(record, paths.parquet)}")
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    """argparse, plus a did-you-mean for a misspelt option."""

    def error(self, message: str) -> NoReturn:
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        if unknown:
            options = [t.split("=")[0] for t in unknown[1].split() if t.startswith("--")]
            known = [o for action in self._all_actions() for o in action.option_strings]
            hint = did_you_mean(options[0], known) if options else ""
            message += f".{hint}" if hint else ""
        super().error(message)

    def _all_actions(self) -> list[argparse.Action]:
        actions = list(self._actions)
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    actions += sub._actions
        return actions


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="probe", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="validate suite files")
    check.add_argument("suites", nargs="+", help="suite files or directories")
    _add_data_root(check)
    check.set_defaults(func=_cmd_check)

    variants = sub.add_parser("variants", help="show a suite's variants without loading models")
    variants.add_argument("suites", nargs="+", help="suite files or directories")
    variants.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    variants.add_argument("--fresh", action="store_true",
                          help="generate the variants now even when a lock exists")
    _add_data_root(variants)
    variants.set_defaults(func=_cmd_variants)

    lock = sub.add_parser("lock", help="generate suites' variants once and write x.lock.json "
                                       "beside each suite; runs replay it")
    lock.add_argument("suites", nargs="+", help="suite files or directories")
    lock.add_argument("--seed", type=int, default=0, help="operator seed (default 0)")
    _add_data_root(lock)
    lock.set_defaults(func=_cmd_lock)

    search = sub.add_parser("search", help="search operator chains that resurface a "
                                           "suppressed behavior (opt-in, budgeted)")
    from probe.search_cli import add_search_arguments

    add_search_arguments(search)
    search.set_defaults(func=_cmd_search)

    run = sub.add_parser("run", help="run suites on a base and a candidate model")
    run.add_argument("suites", nargs="+", help="suite files or directories")
    run.add_argument("--base", help="base model (required; see the pytest options)")
    run.add_argument("--candidate", help="fine-tuned model or adapter (required)")
    run.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    run.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    run.add_argument("--batch-size", default="16", metavar="N|auto",
                     help="rows per batch: prompts decoded, samples, or pairs scored "
                          "(auto: from the device's free memory, 16 on CPU)")
    run.add_argument("--cache-dir", default=None, help="completion cache (default .probe-cache)")
    run.add_argument("--no-cache", action="store_true", help="do not use the completion cache")
    run.add_argument("--alpha", type=float, default=None,
                     help="override every suite's policy alpha")
    run.add_argument("--on-inconclusive", choices=("fail", "pass", "xfail"), default=None,
                     help="override what an INCONCLUSIVE verdict does (xfail: reported only)")
    run.add_argument("--trust-remote-code", action="store_true",
                     help="allow model repositories to run their own code")
    run.add_argument("--allow-pickle", action="store_true",
                     help="allow pickle-based weight files")
    run.add_argument("--json", default=None, metavar="PATH", help="write the JSON run record")
    run.add_argument("--html", default=None, metavar="PATH", help="write the HTML report")
    run.add_argument("--parquet", default=None, metavar="PATH",
                     help="export the variant rows as a parquet dataset")
    run.add_argument("--baseline", default=None, metavar="PATH",
                     help="fail only on regressions against the run record at PATH")
    run.add_argument("--update-baseline", action="store_true",
                     help="accept this run's results as the baseline (with --baseline)")
    _add_data_root(run)
    run.set_defaults(func=_cmd_run)

    vet = sub.add_parser("vet", help="before the fine-tune: run the base alone and show "
                                     "which probes are informative and what each gate can flag")
    # The same arguments as ``probe run`` (the same argparse actions, shared).
    for action in run._actions:
        if action.dest in ("suites", "base", "seed", "device", "dtype", "batch_size",
                           "cache_dir", "no_cache", "trust_remote_code", "allow_pickle",
                           "data_root"):
            vet._add_action(action)
    vet.set_defaults(func=_cmd_vet)

    compare = sub.add_parser("compare", help="compare two JSON run records (exit 1 on "
                                             "regressions)")
    compare.add_argument("old", help="the earlier run record (e.g. the last fine-tune)")
    compare.add_argument("new", help="the later run record")
    compare.set_defaults(func=_cmd_compare)

    schema = sub.add_parser("schema", help="print the JSON Schema of suite files")
    schema.add_argument("--generate", action="store_true",
                        help="generate it from the code and installed plugins instead of "
                             "printing the shipped file")
    schema.add_argument("-o", "--output", default=None, metavar="PATH",
                        help="write it to PATH instead of standard output")
    schema.set_defaults(func=_cmd_schema)

    report = sub.add_parser("report", help="render a JSON run record as HTML or parquet")
    report.add_argument("record", help="a JSON run record (probe run --json, --probe-json)")
    report.add_argument("--html", default=None, metavar="PATH", help="write the HTML report")
    report.add_argument("--parquet", default=None, metavar="PATH",
                        help="export the variant rows as a parquet dataset")
    report.set_defaults(func=_cmd_report)

    cache = sub.add_parser("cache", help="list the completion cache; prune what no run uses")
    from probe.cache_cli import add_cache_arguments, run_cache

    add_cache_arguments(cache)
    cache.set_defaults(func=run_cache)
    return parser


_default_showwarning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    if issubclass(category, ProbeCacheWarning):
        _say(f"warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``probe`` console command."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its own usage message
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        with warnings.catch_warnings():
            # Our warnings (a repaired cache, ...) are for the user: one plain line each.
            warnings.simplefilter("always", ProbeCacheWarning)
            warnings.showwarning = _show_warning
            code: int = args.func(args)
        return code
    except SpecError as err:
        _say(f"error: {err}", file=sys.stderr)
        return EXIT_SPEC
    except UsageError as err:
        _say(f"usage error: {_cli_names(str(err))}", file=sys.stderr)
        return EXIT_USAGE
    except ProbeError as err:
        _say(f"error: {type(err).__name__}: {_cli_names(str(err))}", file=sys.stderr)
        return EXIT_BACKEND


def _cli_names(message: str) -> str:
    """The engine's messages name the pytest options; here they are ``--x``, not
    ``--probe-x`` (every option has the same name without the prefix)."""
    return message.replace("--probe-", "--")


if __name__ == "__main__":
    sys.exit(main())
