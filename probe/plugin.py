"""pytest hooks, and nothing else: suites become tests, results become outcomes.

``pytest suites/ --probe-base smollm2-135m --probe-candidate models/demo-adapter``
collects every suite file as a ``SuiteFile`` and every probe as a ``ProbeItem``.
Collection only reads YAML; models load in the first probe's setup, once for the
session. Outcomes CI can tell apart: a bad suite is a collection error, a bad
option is a usage error (exit 4), a resurfaced behavior is a test failure shown
as a table, a backend crash is an error.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from probe.backends import BackendOptions, parse_batch_size
from probe.engine import distributed
from probe.engine.cache import DEFAULT_CACHE_DIR, completions_dir
from probe.engine.compare import ProbeResult, SuiteResult, Verdict
from probe.engine.outcome import build_outcome
from probe.errors import ModelLoadError, ProbeError, SpecError, UsageError
from probe.report.baseline import BaselineJudge, load_baseline
from probe.report.junit import model_properties, probe_properties, suite_properties
from probe.report.outputs import ReportPaths, check_report_paths, run_inputs, write_reports
from probe.report.progress import TqdmProgress
from probe.report.safe_text import visible, visible_lines
from probe.report.table import failure_report, suite_report
from probe.session import ProbeSession, RunSettings
from probe.spec import Policy, Probe, Suite, load_suite
from probe.spec.model import SUITE_GATE_ID

SESSION_KEY = pytest.StashKey[ProbeSession | None]()
FAILURE_KEY = pytest.StashKey[ProbeError]()
REPORTS_KEY = pytest.StashKey[ReportPaths]()
BASELINE_KEY = pytest.StashKey[dict[str, Any] | None]()
JUDGE_KEY = pytest.StashKey[BaselineJudge]()
WRITTEN_KEY = pytest.StashKey[list[str]]()
# Suites whose every item -k or -m deselected: still files a report must not overwrite.
DESELECTED_KEY = pytest.StashKey[dict[str, Suite]]()
DATA_ROOTS_KEY = pytest.StashKey[tuple[Path, ...]]()
# The name of each suite's pooled gate item: suites/x.yaml::__suite__
SUITE_GATE = SUITE_GATE_ID


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("probe", "behavior resurfacing probes (probe)")
    group.addoption("--probe-base", metavar="MODEL",
                    help="base model: smollm2-135m, a local directory, a .gguf file, a hub id, "
                         "or scripted:FILE.yaml")
    group.addoption("--probe-candidate", metavar="MODEL",
                    help="fine-tuned model: a peft adapter directory (shares the base's weights)"
                         ", a full checkpoint, or scripted:FILE.yaml")
    group.addoption("--probe-seed", type=int, default=None, metavar="N",
                    help="run seed for the operators (default 0)")
    group.addoption("--probe-device", default=None, metavar="DEVICE",
                    help="auto (default: cuda when present, else cpu), cpu, cuda, cuda:1, ...")
    group.addoption("--probe-dtype", default=None, metavar="DTYPE",
                    help="auto (default: fp32 on cpu, bf16 on cuda), float32, bfloat16, float16")
    group.addoption("--probe-batch-size", default=None, metavar="N|auto",
                    help="rows per batch of model work: prompts decoded, samples, or "
                         "(prompt, completion) pairs scored (default 16; auto: from the "
                         "device's free memory, 16 on CPU)")
    group.addoption("--probe-cache-dir", default=None, metavar="DIR",
                    help=f"where completions are cached (default {DEFAULT_CACHE_DIR} in rootdir)")
    group.addoption("--probe-no-cache", action="store_true", default=False,
                    help="do not read or write the completion cache")
    group.addoption("--probe-alpha", type=float, default=None, metavar="A",
                    help="override every suite's policy alpha (test level, Holm-corrected)")
    group.addoption("--probe-on-inconclusive", choices=("fail", "pass", "xfail"), default=None,
                    help="override what an INCONCLUSIVE verdict does to the build")
    group.addoption("--probe-trust-remote-code", action="store_true", default=False,
                    help="allow model repositories to run their own code (off by default)")
    group.addoption("--probe-allow-pickle", action="store_true", default=False,
                    help="allow pickle-based weight files (.bin); safetensors only by default")
    group.addoption("--probe-data-root", action="append", default=None, metavar="DIR",
                    help="a directory besides each suite's own that its `dataset:` files may "
                         "be read from (repeatable)")
    group.addoption("--probe-json", default=None, metavar="PATH",
                    help="write the JSON run record (every variant row, figures, verdicts)")
    group.addoption("--probe-html", default=None, metavar="PATH",
                    help="write the self-contained HTML report")
    group.addoption("--probe-parquet", default=None, metavar="PATH",
                    help="export the variant rows as a parquet dataset (Hugging Face datasets)")
    group.addoption("--probe-baseline", default=None, metavar="PATH",
                    help="fail only on regressions against the run record at PATH")
    group.addoption("--probe-update-baseline", action="store_true", default=False,
                    help="accept this run's results as the baseline (with --probe-baseline)")
    parser.addini("probe_base", "default for --probe-base")
    parser.addini("probe_candidate", "default for --probe-candidate")
    parser.addini("probe_suite_dirs", "directory names whose YAML files are suites",
                  type="args", default=["suites"])
    parser.addini("probe_data_root", "default for --probe-data-root (relative to the ini file)",
                  type="paths", default=[])


@pytest.hookimpl(tryfirst=True)  # before junitxml and the terminal reporter configure
def pytest_configure(config: pytest.Config) -> None:
    config.stash[SESSION_KEY] = None
    if distributed.env_rank() > 0:
        # Under torchrun every rank runs the whole session (the model work is sharded
        # inside the runner) and ends with the same results; rank 0 alone prints and
        # writes files, as with `probe run`, so one report comes out, not one per rank.
        if getattr(config.option, "xmlpath", None):
            config.option.xmlpath = None
        config.pluginmanager.set_blocked("terminalreporter")
    if config.getoption("probe_no_cache") and config.getoption("probe_cache_dir"):
        raise pytest.UsageError("--probe-no-cache and --probe-cache-dir contradict each other; "
                                "give one of them")
    config.stash[REPORTS_KEY] = _report_paths(config)
    config.stash[DATA_ROOTS_KEY] = _data_roots(config)
    config.stash[WRITTEN_KEY] = []


def _report_paths(config: pytest.Config) -> ReportPaths:
    def path(option: str) -> Path | None:
        value = config.getoption(option)
        return None if value is None else Path(value)

    paths = ReportPaths(json=path("probe_json"), html=path("probe_html"),
                        parquet=path("probe_parquet"), baseline=path("probe_baseline"),
                        update_baseline=config.getoption("probe_update_baseline"))
    if paths.update_baseline and paths.baseline is None:
        raise pytest.UsageError("--probe-update-baseline needs --probe-baseline PATH: where to "
                                "write the accepted results")
    try:
        config.stash[BASELINE_KEY] = (None if paths.baseline is None else
                                      load_baseline(paths.baseline,
                                                    updating=paths.update_baseline))
    except UsageError as err:
        raise pytest.UsageError(str(err)) from None
    return paths


def _data_roots(config: pytest.Config) -> tuple[Path, ...]:
    """``--probe-data-root`` (relative to where pytest runs) or the ini's, checked now."""
    from probe.spec.dataset import check_data_roots

    given = config.getoption("probe_data_root")
    roots = ([config.invocation_params.dir / d for d in given] if given else
             config.getini("probe_data_root"))
    try:
        return check_data_roots(roots, "--probe-data-root" if given else "probe_data_root")
    except UsageError as err:
        raise pytest.UsageError(str(err)) from None


def _settings(config: pytest.Config) -> RunSettings:
    base = config.getoption("probe_base") or config.getini("probe_base")
    candidate = config.getoption("probe_candidate") or config.getini("probe_candidate")
    missing = [name for name, value in (("--probe-base", base),
                                        ("--probe-candidate", candidate)) if not value]
    if missing:
        raise pytest.UsageError(
            f"probe suites were collected but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing; for example: "
            "pytest suites/ --probe-base smollm2-135m --probe-candidate models/demo-adapter")
    cache_dir: Path | None = None
    if not config.getoption("probe_no_cache"):
        cache_dir = completions_dir(config.getoption("probe_cache_dir") or
                                    config.rootpath / DEFAULT_CACHE_DIR)
    overrides: dict[str, Any] = {}
    if config.getoption("probe_alpha") is not None:
        overrides["alpha"] = config.getoption("probe_alpha")
    if config.getoption("probe_on_inconclusive") is not None:
        overrides["on_inconclusive"] = config.getoption("probe_on_inconclusive")
    try:
        batch_size = parse_batch_size(_or_default(config.getoption("probe_batch_size"), 16))
    except UsageError as err:
        raise pytest.UsageError(str(err)) from None
    settings = RunSettings(
        base=str(base), candidate=str(candidate), policy_overrides=overrides,
        seed=_or_default(config.getoption("probe_seed"), 0),
        cache_dir=cache_dir,
        backend=BackendOptions(
            device=config.getoption("probe_device") or "auto",
            dtype=config.getoption("probe_dtype") or "auto",
            batch_size=batch_size,
            trust_remote_code=config.getoption("probe_trust_remote_code"),
            allow_pickle=config.getoption("probe_allow_pickle")))
    try:
        settings.check()
    except UsageError as err:
        raise pytest.UsageError(str(err)) from None
    return settings


def _or_default(value: int | None, default: int) -> int:
    # Not ``value or default``: 0 is a value the user gave (and may be an error).
    return default if value is None else value


def _is_suite_path(file_path: Path, config: pytest.Config) -> bool:
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    suite_dirs = set(config.getini("probe_suite_dirs"))
    if suite_dirs & set(file_path.parent.parts):
        return True
    # A YAML file named explicitly on the command line is a suite wherever it lives.
    explicit = {Path(os.path.abspath(a.split("::")[0])) for a in config.args}
    return file_path in explicit


def _display_path(path: Path, config: pytest.Config) -> str:
    """``path`` relative to where pytest was invoked, when it lies below it."""
    try:
        return str(path.relative_to(config.invocation_params.dir))
    except ValueError:
        return str(path)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> SuiteFile | None:
    if _is_suite_path(file_path, parent.config):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    if any(isinstance(item, ProbeItem | SuiteGateItem) for item in items):
        settings = _settings(config)
        _check_outputs(config, items, settings)
        config.stash[SESSION_KEY] = ProbeSession(settings, progress=_progress(config))


def _check_outputs(config: pytest.Config, items: list[pytest.Item],
                   settings: RunSettings) -> None:
    """Report paths that are an input (a suite, a model file, the baseline read), each
    other, or not a file are a usage error now, not a destroyed file after the run."""
    deselected: dict[str, Suite] = config.stash.get(DESELECTED_KEY, {})
    suites = {**deselected, **{item.suite.source: item.suite for item in items
                               if isinstance(item, ProbeItem | SuiteGateItem)}}
    paths = config.stash[REPORTS_KEY]
    # Any file named on the command line too (a suite that failed to collect, say).
    named = [(f"the file {arg} given to pytest", arg) for arg in
             (a.split("::")[0] for a in config.args) if os.path.isfile(arg)]
    try:
        check_report_paths(paths, [*run_inputs(suites.values(), settings, paths), *named])
    except UsageError as err:
        raise pytest.UsageError(str(err)) from None


def pytest_deselected(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, ProbeItem | SuiteGateItem):
            item.config.stash.setdefault(DESELECTED_KEY, {})[item.suite.source] = item.suite


def _progress(config: pytest.Config) -> TqdmProgress | None:
    """Progress bars for the model work, drawn past pytest's capturing; none under -q."""
    if config.get_verbosity() < 0:
        return None
    capture = config.pluginmanager.getplugin("capturemanager")
    suspend = capture.global_and_fixture_disabled if capture is not None else None
    return TqdmProgress(suspend=suspend)


class ProbeFailed(Exception):
    """Raised by a failing probe or suite gate; ``report`` replaces the traceback."""

    def __init__(self, report: str) -> None:
        super().__init__(report.splitlines()[0])
        self.report = report


TAG_MARKER_DOC = "probe tag from suite files"


def _foreign_markers(config: pytest.Config) -> set[str]:
    """Marker names registered by anyone but our tags (pytest parses lines the same way)."""
    names = set()
    for line in config.getini("markers"):
        name, _, doc = line.partition(":")
        if doc.strip() != TAG_MARKER_DOC:
            names.add(name.split("(")[0].strip())
    return names


class SuiteFile(pytest.File):
    """A suite YAML file: one ``ProbeItem`` per probe."""

    def collect(self) -> Iterator[ProbeItem | SuiteGateItem]:
        try:
            roots: tuple[Path, ...] = self.config.stash[DATA_ROOTS_KEY]
            suite = load_suite(self.path, _display_path(self.path, self.config),
                               data_roots=roots)
            # A stale lock is the suite author's to refresh: a collection error too.
            from probe.engine.lock import read_lock

            read_lock(suite)
        except SpecError as err:
            # Only the message: a bad suite is the author's to fix, not ours to debug.
            raise self.CollectError(visible_lines(err.render())) from None
        foreign = _foreign_markers(self.config)
        for probe in suite.probes:
            item = ProbeItem.from_parent(self, name=probe.id, suite=suite, probe=probe)
            for tag in probe.tags:
                if tag in foreign:
                    # A marker pytest, a plugin or the ini file registered may change how
                    # the test runs (skip it, expect it to fail): a suite file must not
                    # take its own gate off (issue 14). Still selectable with -k.
                    item.extra_keyword_matches.add(tag)
                    continue
                self.config.addinivalue_line("markers", f"{tag}: {TAG_MARKER_DOC}")
                item.add_marker(tag)
            yield item
        yield SuiteGateItem.from_parent(self, name=SUITE_GATE, suite=suite)


def _run_selected(item: pytest.Item) -> ProbeSession:
    """Measure every suite with a selected item at once: each suite file is measured
    whole and is one Holm family (``ProbeSession.run_all``), so a selection never moves
    a verdict."""
    session = item.config.stash[SESSION_KEY]
    assert session is not None
    failure = item.config.stash.get(FAILURE_KEY, None)
    if failure is not None:
        # The models failed to load or run once; every other probe reports the same
        # error instead of trying again (and spending the same minutes again).
        raise failure
    if not session.suite_results:
        selection: dict[str, tuple[Suite, list[Probe]]] = {}
        for other in item.session.items:
            if isinstance(other, ProbeItem | SuiteGateItem):
                entry = selection.setdefault(other.suite.source, (other.suite, []))
                if isinstance(other, ProbeItem):
                    entry[1].append(other.probe)
        chosen = [(suite, probes or list(suite.probes)) for suite, probes in selection.values()]
        try:
            session.run_all(chosen)
        except UsageError as err:
            # Found only once the models were looked at (an adapter for another base, a
            # device this machine lacks): still the command line's fault, so exit 4.
            pytest.exit(visible_lines(f"usage error: {err}"),
                        returncode=pytest.ExitCode.USAGE_ERROR)
        except ModelLoadError as err:
            # No model, no probe: one line and exit 3 (as `probe run`), not the same
            # error repeated under every probe of every suite.
            pytest.exit(visible_lines(f"ModelLoadError: {err}"),
                        returncode=pytest.ExitCode.INTERNAL_ERROR)
        except ProbeError as err:
            item.config.stash[FAILURE_KEY] = err
            raise
        baseline = item.config.stash.get(BASELINE_KEY, None)
        if baseline is not None:
            from probe.report.record import build_record

            paths = item.config.stash[REPORTS_KEY]
            item.config.stash[JUDGE_KEY] = BaselineJudge(baseline, build_record(session),
                                                         str(paths.baseline))
    return session


def _apply_outcome(verdict: Verdict, policy: Policy, failure: ProbeFailed,
                   item: pytest.Item | None = None, key: str = "") -> None:
    outcome = build_outcome(verdict, policy)
    if outcome == "pass":
        return
    if outcome == "xfail":
        key_name = ("on_inconclusive" if verdict is Verdict.INCONCLUSIVE
                    else "on_uninformative")
        pytest.xfail(f"{verdict.value} (policy {key_name}: xfail)")
    if item is not None:
        _apply_baseline(item, key, failure)
    raise failure


def _apply_baseline(item: pytest.Item, key: str, failure: ProbeFailed) -> None:
    """A failure the baseline already has is an xfail; a regression fails, with a note."""
    paths = item.config.stash[REPORTS_KEY]
    if paths.update_baseline:
        pytest.xfail(f"{failure.args[0]}; accepted into the baseline {paths.baseline}")
    judge = item.config.stash.get(JUDGE_KEY, None)
    if judge is None:
        return
    judgement = judge.judge(key)
    if not judgement.regression:
        pytest.xfail(f"{failure.args[0]}; {judgement.note}")
    failure.report += f"\n  {judgement.note}"


class _ReportItem(pytest.Item):
    """Renders our own failures as their report and our errors as one line."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | Any:
        # Reports quote completions and ids: shown safely (probe.report.safe_text).
        if isinstance(excinfo.value, ProbeFailed):
            return visible_lines(excinfo.value.report)
        if isinstance(excinfo.value, ProbeError):
            return visible_lines(f"{type(excinfo.value).__name__}: {excinfo.value}")
        return super().repr_failure(excinfo, style=style)


class ProbeItem(_ReportItem):
    """One probe: its variants on both models, judged by the suite's policy."""

    def __init__(self, *, suite: Suite, probe: Probe, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.probe = probe
        self.result: ProbeResult | None = None

    def setup(self) -> None:
        # Model work happens in setup so a backend crash is an error, not a failure.
        self.result = _run_selected(self).results[(self.suite.source, self.probe.id)]

    def runtest(self) -> None:
        result = self.result
        assert result is not None
        session = self.config.stash[SESSION_KEY]
        assert session is not None
        self.user_properties += probe_properties(result, self.suite.name, session.settings.seed)
        self.user_properties += model_properties(session.pair if session.loaded else None)
        _apply_outcome(result.verdict, result.policy, ProbeFailed(failure_report(result)),
                       self, f"{self.suite.name}::{self.probe.id}")

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.probe.line - 1, f"{self.suite.name}::{self.probe.id}"


class SuiteGateItem(_ReportItem):
    """The suite's pooled gate: every counted variant of every probe, probes as clusters."""

    def __init__(self, *, suite: Suite, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.result: SuiteResult | None = None

    def setup(self) -> None:
        self.result = _run_selected(self).suite_results[self.suite.source]

    def runtest(self) -> None:
        result = self.result
        assert result is not None
        session = self.config.stash[SESSION_KEY]
        assert session is not None
        self.user_properties += suite_properties(result, session.settings.seed)
        _apply_outcome(result.verdict, result.suite.policy,
                       ProbeFailed(suite_report(result)), self,
                       f"{self.suite.name}::{SUITE_GATE}")

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.suite.name}::{SUITE_GATE}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None],
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # Models load in setup, and pytest renders setup errors itself (repr_failure is
    # only asked about the call): one line, not pytest's own frames.
    error = call.excinfo.value if call.excinfo is not None else None
    if call.when != "call" and isinstance(item, _ReportItem) and isinstance(error, ProbeError):
        report.longrepr = visible_lines(f"{type(error).__name__}: {error}")
    return report


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    base = config.getoption("probe_base") or config.getini("probe_base")
    candidate = config.getoption("probe_candidate") or config.getini("probe_candidate")
    if not (base or candidate):
        return None
    return [f"probe: base={visible(base)} candidate={visible(candidate)} "
            f"seed={config.getoption('probe_seed') or 0}"]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    from probe.report.terminal import summary_lines

    session = config.stash.get(SESSION_KEY, None)
    if session is None or not session.results:
        return
    terminalreporter.section("probe summary")
    for line in summary_lines(session):
        terminalreporter.write_line(visible_lines(line))
    judge = config.stash.get(JUDGE_KEY, None)
    if judge is not None:
        from probe.report.terminal import baseline_lines

        for line in baseline_lines(judge):
            terminalreporter.write_line(visible_lines(line))
    for line in config.stash.get(WRITTEN_KEY, []):
        terminalreporter.write_line(visible_lines(line))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Before the terminal summary, which lists what was written.
    probe_session = session.config.stash.get(SESSION_KEY, None)
    if probe_session is None or not probe_session.suite_results:
        return
    if distributed.env_rank() > 0:
        return  # rank 0 writes the reports (see pytest_configure)
    paths = session.config.stash[REPORTS_KEY]
    try:
        written = write_reports(probe_session, paths)
    except (ProbeError, OSError) as err:
        # One line and exit 3, as `probe run` (WriteError: the old file is kept).
        written = [f"probe: could not write a report file: "
                   f"{str(err).removeprefix('cannot write ')}"]
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
    session.config.stash[WRITTEN_KEY] = written
