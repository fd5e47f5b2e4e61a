"""Before the fine-tune: run the base alone and show what each suite can decide.

For every probe: whether it is informative (the base shows the behavior), which
variants count, what a clean candidate would get, and the smallest resurfacing (or
loss) each gate can flag. Exit 1 when a suite cannot be passed as it stands.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence

from probe.cli._arguments import add_options, add_suites, model, run_options, seed
from probe.cli._common import EXIT_FAILED, EXIT_OK, say
from probe.engine.variants import Variant
from probe.engine.vet import Flag, SuiteVetting, outcome_words, vet_suite
from probe.report.safe_text import visible

EXAMPLES = ("probe vet suites/ --base smollm2-135m",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``probe vet``'s arguments: suites, the base, and the options of a run that loads it."""
    add_suites(parser)
    add_options(parser, "base", "seed", "load", "cache", "data", required=("base",))


def run(args: argparse.Namespace) -> int:
    """The base against itself (``probe.run`` with candidate = base), then each suite's
    vetting (``probe.engine.vet``)."""
    import probe
    from probe.report.progress import TqdmProgress

    base, run_seed = model(args, "base"), seed(args)
    result = probe.run(args.suites, base, base, seed=run_seed, options=run_options(args),
                       progress=TqdmProgress())
    if not result.is_main:
        return EXIT_OK
    problems: list[str] = []
    for suite_result in result.suite_results:
        vetting = vet_suite(suite_result.suite, suite_result.probes, seed=run_seed,
                            perturbations=suite_result.perturbations)
        say("\n".join(vet_lines(vetting, base)) + "\n")
        problems += vetting.problems
    if problems:
        say(f"{len(problems)} problem{'s' if len(problems) > 1 else ''}: the suites cannot be "
            "passed as they stand")
        say("\n".join(f"  {p}" for p in problems))
        return EXIT_FAILED
    say("ok: every probe is informative and a clean candidate can pass every gate")
    return EXIT_OK


def vet_lines(v: SuiteVetting, base: str) -> list[str]:
    """``probe vet``'s report of one suite file."""
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
        text = "; ".join(f"{op} {ranges(indices)}" for op, indices in groups.items())
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
    if v.perturbations:
        lines.append("  perturbations (their gates fail only on proven resurfacing):")
        for line in v.perturbations:
            lines += textwrap.wrap(visible(line), 100, initial_indent="    ",
                                   subsequent_indent="      ", break_on_hyphens=False)
    return lines


def ranges(indices: Sequence[int]) -> str:
    """``1-3,7``: sorted indices with runs folded."""
    runs: list[list[int]] = []
    for i in sorted(indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
