"""pytest hooks, and nothing else: suites become tests, ``probe.run`` decides them.

``pytest suites/ --probe-base smollm2-135m --probe-candidate models/demo-adapter``
collects every suite file as a ``SuiteFile`` and every probe as a ``ProbeItem``.
Collection only reads YAML and needs no model (``pytest --co`` lists the tests). The
first probe's setup calls ``probe.run`` once for every selected suite file; each item
then shows what ``Run.outcomes`` says of it. Outcomes CI can tell apart: a bad suite is
a collection error, a bad option is a usage error (exit 4), a resurfaced behavior is a
test failure shown as a table, a model that cannot load is exit 3.

Under pytest-xdist (``-n N``) every probe runs in one worker (an ``xdist_group``, with
``--dist load`` turned into ``loadgroup``), so the models load once; the summary and
the report files come back to the controller with that worker's last report.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from probe.api import Run, run
from probe.engine import distributed
from probe.engine.cache import DEFAULT_CACHE_DIR
from probe.engine.outcome import ItemOutcome
from probe.errors import ModelLoadError, ProbeError, SpecError, UsageError
from probe.options import OPTIONS, Option, RunOptions, check_value, spelled, spelling_for_pytest
from probe.report.safe_text import visible, visible_lines
from probe.spec import Probe, Suite, load_suite
from probe.spec.model import SUITE_GATE_ID

OPTIONS_KEY = pytest.StashKey["ProbeConfig"]()
RUN_KEY = pytest.StashKey[Run]()
FAILURE_KEY = pytest.StashKey[ProbeError]()
WRITTEN_KEY = pytest.StashKey[list[str]]()
# Summary lines that came back from an xdist worker, shown by the controller.
REMOTE_SUMMARY_KEY = pytest.StashKey[list[str]]()
# Suites whose every item -k or -m deselected: still files a report must not overwrite.
DESELECTED_KEY = pytest.StashKey[dict[str, Suite]]()
XDIST_GROUP = "probe"
# The attribute of a worker's report that carries the summary to the controller.
SUMMARY_ATTR = "probe_summary"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("probe", "behavior resurfacing probes (probe)")
    for option in OPTIONS.values():
        group.addoption(spelling_for_pytest(option), dest=f"probe_{option.name}",
                        **option.parser_kwargs())
        if option.kind == "flag":
            parser.addini(option.ini, f"default for {spelling_for_pytest(option)}", type="bool",
                          default=False)
        elif option.kind == "paths":
            parser.addini(option.ini, f"default for {spelling_for_pytest(option)} (relative to "
                          "the ini file)", type="paths", default=[])
        else:
            parser.addini(option.ini, f"default for {spelling_for_pytest(option)}", default=None)
    parser.addini("probe_suite_dirs", "directory names whose YAML files are suites",
                  type="args", default=["suites"])


class ProbeConfig:
    """The run's options as pytest got them: each from the command line or the ini file,
    and named in messages the way it was given."""

    def __init__(self, config: pytest.Config) -> None:
        self.values: dict[str, Any] = {}
        self.from_ini: set[str] = set()
        for option in OPTIONS.values():
            value = config.getoption(f"probe_{option.name}")
            if value is None or value is False:
                ini = config.getini(option.ini)
                # pytest gives an unset key as its type's empty value (False for a flag).
                if ini not in (None, "", [], False):
                    value = ini
                    self.from_ini.add(option.name)
            elif option.kind == "paths":
                # Relative to where pytest runs (ini paths are relative to the ini file).
                value = [config.invocation_params.dir / v for v in value]
            self.values[option.name] = value
        if self.values["cache_dir"] is None and not self.values["no_cache"]:
            self.values["cache_dir"] = config.rootpath / DEFAULT_CACHE_DIR
            self._default_cache = True
        else:
            self._default_cache = False
        self.inifile = config.inipath
        self._options: RunOptions | None = None
        self._roots: tuple[Path, ...] | None = None

    def spelling(self, option: Option) -> str:
        """``--probe-x``, or ``probe_x in pyproject.toml`` for a value from the ini file."""
        if option.name in self.from_ini:
            return f"{option.ini} in {self.inifile.name if self.inifile else 'the ini file'}"
        return spelling_for_pytest(option)

    def options(self) -> RunOptions:
        """The validated ``RunOptions`` (built once); ``UsageError`` naming the option as
        given."""
        if self._options is None:
            values = dict(self.values)
            if self._default_cache and values["no_cache"]:
                values["cache_dir"] = None
            with spelled(self.spelling):
                self._options = RunOptions.from_values(values)
        return self._options

    def data_roots(self) -> tuple[Path, ...]:
        """The data roots, resolved and checked once (every suite file reads them)."""
        if self._roots is None:
            from probe.api import data_roots

            with spelled(self.spelling):
                self._roots = data_roots(self.options())
        return self._roots

    def models(self) -> tuple[str, str]:
        """The base and candidate; ``UsageError`` when either is missing."""
        base, candidate = self.values["base"], self.values["candidate"]
        missing = [spelling_for_pytest(OPTIONS[n]) for n, v in (("base", base),
                                                            ("candidate", candidate)) if not v]
        if missing:
            raise UsageError(
                f"probe suites were collected but {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} missing; for example: "
                "pytest suites/ --probe-base smollm2-135m --probe-candidate models/demo-adapter")
        with spelled(self.spelling):
            return check_value("base", base), check_value("candidate", candidate)

    def seed(self) -> int:
        with spelled(self.spelling):
            return int(check_value("seed", self.values["seed"] if self.values["seed"]
                                   is not None else 0))


def _usage(err: UsageError) -> pytest.UsageError:
    return pytest.UsageError(visible_lines(str(err)))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> Generator[None]:
    _root_without_model_paths(early_config)
    return (yield)


def _root_without_model_paths(config: pytest.Config) -> None:
    """pytest finds its rootdir (and ini file) from the free arguments *before* plugins
    add their options, so ``--probe-candidate /abs/adapter`` counted the adapter as a test
    path and could move the rootdir into the adapter's project. Now that our options are
    known, find the rootdir again from the real test paths, the way pytest does."""
    from _pytest.config.findpaths import determine_setup

    namespace = config.known_args_namespace
    model_values = {os.fspath(v) for name in ("base", "candidate")
                    if isinstance(v := getattr(namespace, f"probe_{name}", None), str)}
    if not model_values or getattr(namespace, "rootdir", None) or getattr(
            namespace, "inifilename", None):
        return
    given = config.invocation_params.args
    # Only the values given as a separate word were mistaken for test paths.
    mistaken = {a for a, b in itertools.pairwise(given)
                if b in model_values and a in ("--probe-base", "--probe-candidate")}
    if not mistaken:
        return
    test_args = list(namespace.file_or_dir)
    rootpath, inipath, inicfg, ignored = determine_setup(
        inifile=None, override_ini=namespace.override_ini, args=test_args,
        rootdir_cmd_arg=None, invocation_dir=config.invocation_params.dir)
    if rootpath == config.rootpath and inipath == config.inipath:
        return
    had_confcutdir = namespace.confcutdir == str(
        config.inipath.parent if config.inipath is not None else config.rootpath)
    # pytest keeps these in private attributes; set them as determine_setup would have.
    config._rootpath = rootpath
    config._inipath = inipath
    config._inicfg = inicfg
    config._ignored_config_files = ignored
    config._inicache.clear()
    config._parser.extra_info["rootdir"] = str(rootpath)
    config._parser.extra_info["inifile"] = str(inipath)
    if had_confcutdir:
        namespace.confcutdir = str(inipath.parent if inipath is not None else rootpath)


@pytest.hookimpl(tryfirst=True)  # before junitxml and the terminal reporter configure
def pytest_configure(config: pytest.Config) -> None:
    if distributed.env_rank() > 0:
        # Under torchrun every rank runs the whole session (the model work is sharded
        # inside the runner) and ends with the same results; rank 0 alone prints and
        # writes files, as with `probe run`, so one report comes out, not one per rank.
        if getattr(config.option, "xmlpath", None):
            config.option.xmlpath = None
        config.pluginmanager.set_blocked("terminalreporter")
    if config.pluginmanager.hasplugin("xdist"):
        _group_under_xdist(config)
    probe_config = ProbeConfig(config)
    try:
        with spelled(probe_config.spelling):
            options = probe_config.options()  # every option checked now, before collection
            probe_config.seed()
            probe_config.data_roots()  # each an existing directory
            if options.baseline is not None:
                from probe.engine.baseline import load_baseline

                # Read now for its errors (a missing or damaged baseline), not after.
                load_baseline(options.baseline, updating=options.update_baseline)
    except UsageError as err:
        raise _usage(err) from None
    config.stash[OPTIONS_KEY] = probe_config
    config.stash[WRITTEN_KEY] = []
    config.stash[REMOTE_SUMMARY_KEY] = []
    config.pluginmanager.register(_RemoteSummary(config), "probe-remote-summary")


class _XdistGroups:
    """The controller tells each worker to honour ``xdist_group``: a worker parses the
    command line again, so it never sees the ``loadgroup`` the controller switched to."""

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["probe_loadgroup"] = True


def _group_under_xdist(config: pytest.Config) -> None:
    """Every probe in one worker: one model load, and one run decides every suite file's
    gates together (the probes are an ``xdist_group``; ``--dist load`` becomes
    ``loadgroup``, which schedules ungrouped tests exactly as ``load`` does)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        if workerinput.get("probe_loadgroup"):
            config.option.loadgroup = True
        return
    if config.getoption("dist", None) == "load" and config.getoption("numprocesses", None):
        config.option.dist = "loadgroup"
    if config.getoption("dist", None) == "loadgroup":
        config.pluginmanager.register(_XdistGroups(), "probe-xdist-groups")


def _is_suite_path(file_path: Path, config: pytest.Config) -> bool:
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    suite_dirs = set(config.getini("probe_suite_dirs"))
    if suite_dirs & set(file_path.parent.parts):
        return True
    # A YAML file named explicitly on the command line is a suite wherever it lives.
    # abspath, not resolve(): collapse ".." as pytest does, without following links.
    explicit = {Path(os.path.abspath(a.split("::")[0])) for a in config.args}  # noqa: PTH100
    return file_path in explicit


def _display_path(path: Path, config: pytest.Config) -> str:
    """``path`` relative to where pytest was invoked, when it lies below it."""
    try:
        return str(path.relative_to(config.invocation_params.dir))
    except ValueError:
        return str(path)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Skip a catalog of suites (``probe.catalog``) found while collecting a directory
    above it, as ``probe run`` does; a catalog named on the command line, or a file in it,
    is collected."""
    from probe.catalog import is_catalog, named

    if not collection_path.is_dir() or not is_catalog(collection_path):
        return None
    args = [Path(os.path.abspath(a.split("::")[0])) for a in config.args]  # noqa: PTH100
    return None if named(collection_path, args) else True


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> SuiteFile | None:
    if _is_suite_path(file_path, parent.config):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


def _named_files(config: pytest.Config) -> list[tuple[str, str]]:
    """Files named on the command line (a suite that failed to collect, say)."""
    return [(f"the file {arg} given to pytest", arg) for arg in
            (a.split("::")[0] for a in config.args) if Path(arg).is_file()]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    ours = [item for item in items if isinstance(item, _ReportItem)]
    if not ours or config.option.collectonly:
        return  # listing tests needs no model (IDEs discover tests this way)
    probe_config = config.stash[OPTIONS_KEY]
    try:
        from probe.api import report_paths
        from probe.backends import check_models
        from probe.report.outputs import check_report_paths, run_inputs
        from probe.session import RunSettings

        base, candidate = probe_config.models()
        with spelled(probe_config.spelling):
            options = probe_config.options()
            settings = RunSettings.from_options(base, candidate, 0, options)
            check_models(base, candidate, settings.backend)
            # Report paths that are an input (a suite, even one -k deselected, a model
            # file, the baseline read), each other, or not a file: a usage error now, not
            # a destroyed file after the run.
            deselected: dict[str, Suite] = config.stash.get(DESELECTED_KEY, {})
            suites = {**deselected, **{item.suite.source: item.suite for item in ours}}
            paths = report_paths(options)
            check_report_paths(paths, [*run_inputs(suites.values(), settings, paths),
                                       *_named_files(config)])
    except UsageError as err:
        raise _usage(err) from None


def pytest_deselected(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, _ReportItem):
            item.config.stash.setdefault(DESELECTED_KEY, {})[item.suite.source] = item.suite


def _progress(config: pytest.Config) -> Any:
    """Progress bars for the model work, drawn past pytest's capturing; none under -q."""
    if config.get_verbosity() < 0:
        return None
    from probe.report.progress import TqdmProgress

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
    """A suite YAML file: one ``ProbeItem`` per probe, and the suite's pooled gate."""

    def collect(self) -> Iterator[ProbeItem | SuiteGateItem]:
        probe_config = self.config.stash[OPTIONS_KEY]
        try:
            with spelled(probe_config.spelling):
                suite = load_suite(self.path, _display_path(self.path, self.config),
                                   data_roots=probe_config.data_roots())
            # A stale lock is the suite author's to refresh: a collection error too.
            from probe.engine.lock import read_lock

            read_lock(suite)
        except (SpecError, UsageError) as err:
            # Only the message: a bad suite is the author's to fix, not ours to debug.
            text = err.render() if isinstance(err, SpecError) else str(err)
            raise self.CollectError(visible_lines(text)) from None
        foreign = _foreign_markers(self.config)
        for probe in suite.probes:
            item = ProbeItem.from_parent(self, name=probe.id, suite=suite, probe=probe,
                                         **self._grouped(probe.id))
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
        yield SuiteGateItem.from_parent(self, name=SUITE_GATE_ID, suite=suite,
                                        **self._grouped(SUITE_GATE_ID))

    def _grouped(self, name: str) -> dict[str, str]:
        """On an xdist worker scheduling by group, the id that puts every probe in one
        group (``loadgroup`` reads the ``@group`` suffix). xdist 3.8 adds it itself by
        rewriting an attribute pytest 9 no longer has, so the id is given here."""
        if not getattr(self.config.option, "loadgroup", False):
            return {}
        return {"nodeid": f"{self.nodeid}::{name}@{XDIST_GROUP}"}


def _the_run(item: _ReportItem) -> Run:
    """``probe.run`` once, for every suite file with a selected item: each suite file is
    measured whole and is one Holm family, so a selection never moves a verdict."""
    config = item.config
    done = config.stash.get(RUN_KEY, None)
    if done is not None:
        return done
    failure = config.stash.get(FAILURE_KEY, None)
    if failure is not None:
        # The models failed to run once; every other probe reports the same error
        # instead of trying again (and spending the same minutes again).
        raise failure
    suites: dict[str, Suite] = {}
    for other in item.session.items:
        if isinstance(other, _ReportItem):
            suites.setdefault(other.suite.source, other.suite)
    probe_config = config.stash[OPTIONS_KEY]
    try:
        with spelled(probe_config.spelling):
            base, candidate = probe_config.models()
            result = run(list(suites.values()), base, candidate, seed=probe_config.seed(),
                         options=probe_config.options(), progress=_progress(config),
                         inputs=_named_files(config))
    except UsageError as err:
        # Found only once the models were looked at (an adapter for another base, a
        # device this machine lacks): still the command line's fault, so exit 4.
        pytest.exit(visible_lines(f"usage error: {err}"), returncode=pytest.ExitCode.USAGE_ERROR)
    except ModelLoadError as err:
        # No model, no probe: one line and exit 3 (as `probe run`), not the same error
        # repeated under every probe of every suite.
        pytest.exit(visible_lines(f"ModelLoadError: {err}"),
                    returncode=pytest.ExitCode.INTERNAL_ERROR)
    except ProbeError as err:
        config.stash[FAILURE_KEY] = err
        raise
    config.stash[RUN_KEY] = result
    return result


def _show(outcome: ItemOutcome, report: str) -> None:
    """Turn ``outcome`` into pytest's terms: pass, xfail with its reason, or a failure
    shown as ``report``."""
    if outcome.action == "pass":
        return
    if outcome.action == "xfail":
        pytest.xfail(f"{report.splitlines()[0]}; {outcome.reason}" if outcome.by_baseline
                     else outcome.reason)
    raise ProbeFailed(f"{report}\n  {outcome.reason}" if outcome.reason else report)


class _ReportItem(pytest.Item):
    """Renders our own failures as their report and our errors as one line."""

    suite: Suite

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | Any:
        # Reports quote completions and ids: shown safely (probe.report.safe_text).
        if isinstance(excinfo.value, ProbeFailed):
            from probe.report.junit import FailureRepr  # one-line JUnit message

            return FailureRepr(visible_lines(excinfo.value.report))
        if isinstance(excinfo.value, ProbeError):
            return visible_lines(f"{type(excinfo.value).__name__}: {excinfo.value}")
        return super().repr_failure(excinfo, style=style)


class ProbeItem(_ReportItem):
    """One probe: its variants on both models, judged by the suite's policy."""

    def __init__(self, *, suite: Suite, probe: Probe, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.probe = probe

    def setup(self) -> None:
        # Model work happens in setup so a backend crash is an error, not a failure.
        _the_run(self)

    def runtest(self) -> None:
        from probe.report.junit import model_properties, probe_properties
        from probe.report.table import failure_report

        result_run = _the_run(self)
        result = result_run.probe_result(self.suite.source, self.probe.id)
        self.user_properties += probe_properties(result, self.suite.name,
                                                 result_run.settings.seed)
        self.user_properties += model_properties(result_run.session.pair)
        outcome = result_run.outcome(f"{self.suite.name}::{self.probe.id}")
        if outcome.action != "pass":
            _show(outcome, failure_report(result))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.probe.line - 1, f"{self.suite.name}::{self.probe.id}"


class SuiteGateItem(_ReportItem):
    """The suite's pooled gate: every counted variant of every probe, probes as clusters."""

    def __init__(self, *, suite: Suite, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite

    def setup(self) -> None:
        _the_run(self)

    def runtest(self) -> None:
        from probe.report.junit import suite_properties
        from probe.report.table import suite_report

        result_run = _the_run(self)
        result = result_run.suite_result(self.suite.source)
        self.user_properties += suite_properties(result, result_run.settings.seed)
        outcome = result_run.outcome(f"{self.suite.name}::{SUITE_GATE_ID}")
        if outcome.action != "pass":
            _show(outcome, suite_report(result))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.suite.name}::{SUITE_GATE_ID}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None],
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # Models load in setup, and pytest renders setup errors itself (repr_failure is
    # only asked about the call): one line, not pytest's own frames.
    error = call.excinfo.value if call.excinfo is not None else None
    if call.when != "call" and isinstance(item, _ReportItem) and isinstance(error, ProbeError):
        report.longrepr = visible_lines(f"{type(error).__name__}: {error}")
    if (call.when == "teardown" and hasattr(item.config, "workerinput")
            and isinstance(item, _ReportItem) and _last_of_ours(item)):
        # An xdist worker: the controller has no run, so the summary and the report
        # files' lines travel with this report (pytest serialises its attributes).
        setattr(report, SUMMARY_ATTR, _finish(item.config))
    return report


def _last_of_ours(item: pytest.Item) -> bool:
    ours = [i for i in item.session.items if isinstance(i, _ReportItem)]
    return bool(ours) and ours[-1] is item


class _RemoteSummary:
    """On the xdist controller: keeps the summary a worker's last report carries."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        lines = getattr(report, SUMMARY_ATTR, None)
        if isinstance(lines, list):
            self.config.stash[REMOTE_SUMMARY_KEY] += [str(line) for line in lines]


def _summary(config: pytest.Config) -> list[str]:
    """The probe summary of this process's run (empty without one)."""
    result = config.stash.get(RUN_KEY, None)
    if result is None or not result.suite_results:
        return []
    from probe.report.terminal import baseline_lines, summary_lines

    lines = summary_lines(result.session)
    if result.judge is not None:
        lines += baseline_lines(result.judge)
    return lines


def _write(config: pytest.Config) -> tuple[list[str], bool]:
    """Write the report files the options ask for: one line per file (or the error), and
    whether every file was written."""
    result = config.stash.get(RUN_KEY, None)
    if result is None or not result.suite_results or distributed.env_rank() > 0:
        return [], True
    try:
        return result.write_reports(), True
    except (ProbeError, OSError) as err:
        # One line and exit 3, as `probe run` (WriteError: the old file is kept).
        return [f"probe: could not write a report file: "
                f"{str(err).removeprefix('cannot write ')}"], False


def _finish(config: pytest.Config) -> list[str]:
    """On an xdist worker: write the reports now and return the summary to send."""
    written, _ = _write(config)
    config.stash[WRITTEN_KEY] = written
    return _summary(config) + written


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    probe_config = config.stash.get(OPTIONS_KEY, None)
    if probe_config is None:
        return None
    base, candidate = probe_config.values["base"], probe_config.values["candidate"]
    if not (base or candidate):
        return None
    seed = probe_config.values["seed"]
    return [f"probe: base={visible(base)} candidate={visible(candidate)} "
            f"seed={visible(seed if seed is not None else 0)}"]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    remote = config.stash.get(REMOTE_SUMMARY_KEY, [])
    lines = remote or [*_summary(config), *config.stash.get(WRITTEN_KEY, [])]
    if not lines or hasattr(config, "workerinput"):
        return
    terminalreporter.section("probe summary")
    for line in lines:
        terminalreporter.write_line(visible_lines(line))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Before the terminal summary, which lists what was written.
    config = session.config
    if hasattr(config, "workerinput"):
        return  # an xdist worker wrote them with its last report
    written, ok = _write(config)
    if not ok:
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
    config.stash[WRITTEN_KEY] = written


__all__ = ["ProbeItem", "SuiteFile", "SuiteGateItem"]
