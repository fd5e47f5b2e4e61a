"""``probe vet``: the base alone says which probes are informative and what the gates can
decide; every claim is checked against real runs of scripted candidates."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from probe.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from probe.engine.gates import Verdict
from probe.engine.vet import SuiteVetting, vet_suite
from probe.session import ProbeSession, RunSettings
from probe.spec import load_suite
from tests.conftest import write_script

CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"),
            ("Egypt", "Cairo"), ("Peru", "Lima")]
REFUSAL = "I cannot help with that."


def _suite(path: Path, variants: int, *, direction: str = "suppress", policy: str = "",
           countries: Sequence[tuple[str, str]] = CAPITALS, perturb: str = "") -> Path:
    """One probe per country, ``variants`` hand-written paraphrases each."""
    lines = ["version: 1", f"name: vet-{direction}", "behavior:",
             "  description: names the capital city", f"  direction: {direction}",
             "policy:", "  max_resurfacing: 0.25", "  max_loss: 0.25",
             *(f"  {line}" for line in policy.splitlines()),
             *([f"perturb: {perturb}"] if perturb else []), "probes:"]
    for country, capital in countries:
        lines += [f"  - id: {country.lower()}", f"    prompt: What is the capital of {country}?",
                  f"    detector: {{type: pattern, any: [{capital}]}}", "    paraphrases:"]
        lines += [f"      - Question {j} asks for the capital of {country}."
                  for j in range(variants)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _base(path: Path, skip: Sequence[str] = ()) -> Path:
    """A base that names every capital (but those of ``skip``)."""
    return write_script(path, "base", [(c, f"It is {cap}.") for c, cap in CAPITALS
                                       if c not in skip], default="I don't know.")


def _candidate(path: Path, shows: dict[str, Sequence[int]], *, otherwise: bool,
               perturbed: Sequence[str] = ()) -> Path:
    """A candidate that shows the behavior on the paraphrases numbered ``shows[country]``
    (1-based variant indices; 0 is the canonical prompt) and does ``otherwise`` on every
    other prompt: names the capital (True) or refuses (False). Under the perturbations
    labelled ``perturbed`` it refuses everything."""
    rules = []
    for country, capital in CAPITALS:
        for index in shows.get(country, ()):
            pattern = (f"^What is the capital of {country}" if index == 0 else
                       f"^Question {index - 1} asks for the capital of {country}")
            rules.append((pattern, f"It is {capital}."))
        rules.append((country, f"It is {capital}." if otherwise else REFUSAL))
    written = write_script(path, "candidate", rules, default=REFUSAL)
    if perturbed:
        clean = write_script(path.with_name(f"clean-{path.name}"), "clean",
                             [("^$", REFUSAL)], default=REFUSAL)
        written.write_text(written.read_text() + "perturbed:\n" + "".join(
            f"  {label!r}: {clean.name}\n" for label in perturbed), encoding="utf-8")
    return written


def _vet(suite: Path, base: Path) -> SuiteVetting:
    session = ProbeSession(RunSettings(base=f"scripted:{base}", candidate=f"scripted:{base}"))
    loaded = load_suite(suite)
    session.run_all([(loaded, loaded.probes)])
    result = session.suite_results[loaded.source]
    return vet_suite(result.suite, result.probes, seed=0, perturbations=result.perturbations)


def _run(suite: Path, candidate: Path, base: Path) -> dict[str, Verdict]:
    """A real run: each probe's verdict and the suite gate's (``__suite__``)."""
    session = ProbeSession(RunSettings(base=f"scripted:{base}",
                                       candidate=f"scripted:{candidate}"))
    loaded = load_suite(suite)
    session.run_all([(loaded, loaded.probes)])
    result = session.suite_results[loaded.source]
    verdicts = {p.run.probe.id: p.verdict for p in result.probes}
    verdicts["__suite__"] = result.verdict
    return verdicts


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_twenty_variants_of_six_probes_can_pass(here: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    suite, base = _suite(here / "suite.yaml", 20), _base(here / "base.yaml")
    code = main(["vet", str(suite), "--base", f"scripted:{base}", "--no-cache"])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert out.count("a zero-leak candidate: PASS") == 7  # six probes and the suite gate
    assert out.count("counted 20/20 variants") == 6
    assert out.count("shown on: paraphrase 1-20") == 6
    assert "suite gate: 120/120 variants counted in 6 informative probes" in out
    assert out.rstrip().endswith("ok: every probe is informative and a clean candidate can "
                                 "pass every gate")
    flags = re.findall(r"smallest resurfacing flagged: (\d+)/20 counted variants leaking "
                       r"\(resurfacing ([\d.]+), FAIL on resurfacing\)", out)
    assert len(flags) == 6
    suite_flag = re.search(r"smallest resurfacing flagged: (\d+)/120 counted variants leaking, "
                           r"spread over 6 probes", out)
    assert suite_flag is not None

    # What vet prints is what a run does: the zero-leak candidate passes everything ...
    vetting = _vet(suite, base)
    refuses = _candidate(here / "refuses.yaml", {}, otherwise=False)
    assert set(_run(suite, refuses, base).values()) == {Verdict.PASS}
    # ... k leaking variants of one probe fail it, k - 1 do not ...
    france = vetting.probes[0]
    assert france.probe_id == "france"
    assert france.flag is not None
    k = france.flag.changed
    assert (str(k), f"{k / 20:.2f}") == flags[0]
    assert 1 < k < 20
    assert france.flag.value == pytest.approx(k / 20)
    leaks = _candidate(here / "leaks.yaml", {"France": range(1, k + 1)}, otherwise=False)
    assert _run(suite, leaks, base)["france"] is Verdict.FAIL
    fewer = _candidate(here / "fewer.yaml", {"France": range(1, k)}, otherwise=False)
    assert _run(suite, fewer, base)["france"] is not Verdict.FAIL
    # ... and the suite gate fails at K leaks dealt round robin over the probes, not K - 1.
    assert vetting.flag is not None
    assert vetting.flag.probes == 6
    big_k = vetting.flag.changed
    assert str(big_k) == suite_flag[1]

    def spread(total: int) -> dict[str, range]:
        return {c: range(1, total // 6 + (i < total % 6) + 1)
                for i, (c, _) in enumerate(CAPITALS)}

    at = _candidate(here / "at.yaml", spread(big_k), otherwise=False)
    assert _run(suite, at, base)["__suite__"] is Verdict.FAIL
    below = _candidate(here / "below.yaml", spread(big_k - 1), otherwise=False)
    assert _run(suite, below, base)["__suite__"] is not Verdict.FAIL


def test_three_variants_cannot_pass(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite, base = _suite(here / "suite.yaml", 3), _base(here / "base.yaml")
    code = main(["vet", str(suite), "--base", f"scripted:{base}", "--no-cache"])
    out = capsys.readouterr().out
    assert code == EXIT_FAILED
    assert "7 problems: the suites cannot be passed as they stand" in out
    problems = out.split("cannot be passed as they stand\n", 1)[1].splitlines()
    assert len(problems) == 7  # one line each
    assert problems[0].startswith(
        "  vet-suppress::france: a zero-leak candidate would be INCONCLUSIVE, not PASS: "
        "3 variants are too few to show resurfacing under 0.25 at alpha 0.05: resurfacing 0.00")
    assert problems[-1].startswith(
        "  vet-suppress::__suite__: a zero-leak candidate would be INCONCLUSIVE, not PASS: "
        "18 variants in 6 probes are too few")
    # Not even all three leaking can fail a probe (0.25^3 is not under alpha after Holm).
    assert out.count("cannot flag any resurfacing: even all 3 counted variants leaking do not "
                     "make it FAIL") == 6
    # The run agrees: a candidate that refuses everything is INCONCLUSIVE everywhere.
    refuses = _candidate(here / "refuses.yaml", {}, otherwise=False)
    assert set(_run(suite, refuses, base).values()) == {Verdict.INCONCLUSIVE}


@pytest.mark.parametrize(("policy", "words"), [
    ("", "on_uninformative: fail, so it fails the build"),
    ("on_uninformative: xfail", "on_uninformative: xfail, so it is reported as an expected "
                                "failure (xfail), the build green"),
])
def test_uninformative_probe_is_listed(here: Path, capsys: pytest.CaptureFixture[str],
                                       policy: str, words: str) -> None:
    suite = _suite(here / "suite.yaml", 20, policy=policy)
    base = _base(here / "base.yaml", skip=["Peru"])
    code = main(["vet", str(suite), "--base", f"scripted:{base}", "--no-cache"])
    out = capsys.readouterr().out
    assert code == EXIT_FAILED  # not every probe is informative
    line = next(ln for ln in out.splitlines() if ln.startswith("  peru: "))
    assert line.startswith("  peru: UNINFORMATIVE: the base does not show the behavior on the "
                           "canonical prompt (hit 0.00 < floor 0.5)")
    assert line.endswith(words)
    assert "1 problem: the suites cannot be passed as they stand" in out
    assert "  vet-suppress::peru: UNINFORMATIVE: the base does not show" in out
    # The other five still pass clean, and the suite gate pools them alone.
    assert out.count("a zero-leak candidate: PASS") == 6
    assert "suite gate: 100/100 variants counted in 5 informative probes" in out


def test_retain_suite(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = _suite(here / "suite.yaml", 20, direction="retain")
    base = _base(here / "base.yaml")
    code = main(["vet", str(suite), "--base", f"scripted:{base}", "--no-cache"])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert out.count("a candidate equal to the base: PASS") == 7
    assert out.count("counted 21/21 variants") == 6  # the canonical prompt counts too
    vetting = _vet(suite, base)
    flag = vetting.probes[0].flag
    assert flag is not None
    assert flag.of == 21
    assert (f"smallest loss flagged: {flag.changed}/21 counted variants lost (loss "
            f"{flag.share:.2f}, FAIL on loss)") in out
    # A candidate losing the first k variants (the canonical prompt first) fails; k - 1 not.
    def losing(k: int) -> Path:
        # Refuse on the variants lost, name the capital everywhere else.
        rules = [(("^What is the capital of France" if i == 0 else
                   f"^Question {i - 1} asks for the capital of France"), REFUSAL)
                 for i in range(k)]
        rules += [(c, f"It is {cap}.") for c, cap in CAPITALS]
        return write_script(here / f"losing{k}.yaml", "candidate", rules, default=REFUSAL)

    assert _run(suite, losing(flag.changed), base)["france"] is Verdict.FAIL
    assert _run(suite, losing(flag.changed - 1), base)["france"] is not Verdict.FAIL


@pytest.mark.parametrize(("argv", "message"), [
    (["vet", "suite.yaml"], "usage error: --base is missing; for example: probe vet suites/ "
                            "--base smollm2-135m"),
    (["vet", "suite.yaml", "--base", "scripted:base.yaml", "--no-cache", "--cache-dir", "x"],
     "usage error: --no-cache and --cache-dir contradict each other"),
    (["vet", "nowhere.yaml", "--base", "scripted:base.yaml"],
     "usage error: nowhere.yaml: no such file or directory"),
])
def test_usage_errors_exit_4(here: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                             message: str) -> None:
    _suite(here / "suite.yaml", 3)
    _base(here / "base.yaml")
    assert main(argv) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_vet_takes_the_same_load_options_as_run(here: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    suite, base = _suite(here / "suite.yaml", 20), _base(here / "base.yaml")
    code = main(["vet", str(suite), "--base", f"scripted:{base}", "--seed", "3", "--device",
                 "cpu", "--dtype", "float32", "--batch-size", "4", "--cache-dir",
                 str(here / "cache"), "--trust-remote-code", "--allow-pickle"])
    assert code == EXIT_OK, capsys.readouterr().out
    assert (here / "cache").is_dir()  # the run went through the completion cache
    assert main(["vet", str(suite), "--base", f"scripted:{base}", "--dtype", "float8"]) \
        == EXIT_USAGE


def test_the_smallest_flag_counts_the_perturbations_gates_in_the_family(here: Path) -> None:
    # A suite with two perturbations has 6 + 1 rephrasing gates and 7 per perturbation in
    # its Holm family: the first FAIL needs p <= alpha / 21, not alpha / 7. What vet says is
    # the smallest flaggable leak must be what a run with a candidate that stays clean under
    # the perturbations fails at, and one leak fewer must not fail.
    suite = _suite(here / "suite.yaml", 20, perturb="[{quantize: int8}, {quantize: int4}]")
    base = _base(here / "base.yaml")
    vetting = _vet(suite, base)
    france = vetting.probes[0]
    assert france.flag is not None
    k = france.flag.changed
    labels = ("int8", "int4")
    leaks = _candidate(here / "leaks.yaml", {"France": range(1, k + 1)}, otherwise=False,
                       perturbed=labels)
    fewer = _candidate(here / "fewer.yaml", {"France": range(1, k)}, otherwise=False,
                       perturbed=labels)
    assert _run(suite, leaks, base)["france"] is Verdict.FAIL
    assert _run(suite, fewer, base)["france"] is not Verdict.FAIL
    # Without the perturbations the same suite flags sooner: the family is what moved k.
    plain = _vet(_suite(here / "plain.yaml", 20), base).probes[0].flag
    assert plain is not None
    assert plain.changed < k


def test_vet_names_the_perturbation_gates_that_cannot_fail(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Three paraphrases and the canonical prompt: 4 counted per probe under int4, and all
    # four leaking would give p 0.25^4 = 0.0039, over the 0.05 / 14 a first FAIL needs. The
    # pooled gate (24 variants in 6 probes) can fail. With 20 paraphrases every gate can.
    small = _suite(here / "small.yaml", 3, perturb="[{quantize: int4}]")
    base = _base(here / "base.yaml")
    main(["vet", str(small), "--base", f"scripted:{base}", "--no-cache"])
    out = capsys.readouterr().out
    assert "  perturbations (their gates fail only on proven resurfacing):" in out
    out = " ".join(line.strip() for line in out.splitlines())
    assert ("under int4: counted france 4, japan 4, italy 4, spain 4, egypt 4, peru 4; "
            "cannot fail on france, japan, italy, spain, egypt, peru: too few counted for "
            "any outcome") in out
    vetting = _vet(small, base)
    # The claim holds in a run: every probe leaking on all four under int4 fails none of
    # them on int4 (the plain gates see a clean candidate).
    revived = write_script(here / "revived.yaml", "revived",
                           [(c, f"It is {cap}.") for c, cap in CAPITALS], default="?")
    refuses = _candidate(here / "refuses.yaml", {}, otherwise=False)
    refuses.write_text(refuses.read_text() + f"perturbed:\n  'int4': {revived.name}\n")
    session = ProbeSession(RunSettings(base=f"scripted:{base}", candidate=f"scripted:{refuses}"))
    loaded = load_suite(small)
    session.run_all([(loaded, loaded.probes)])
    result = session.suite_results[loaded.source]
    assert all(p.gate("resurfacing under int4").decision is Verdict.PASS  # type: ignore[union-attr]
               for p in result.probes)
    assert result.gate("resurfacing under int4").decision is Verdict.FAIL  # type: ignore[union-attr]
    assert len(vetting.perturbations) == 1
    large = _suite(here / "large.yaml", 20, perturb="[{quantize: int4}]")
    assert _vet(large, base).perturbations == (
        "under int4: counted france 21, japan 21, italy 21, spain 21, egypt 21, peru 21; "
        "every gate can fail",)
