"""The Python API: ``probe.run`` measures suites on a base and a candidate and returns a
``Run``, the one result every front end reads.

    import probe

    run = probe.run(["suites/"], "smollm2-135m", "models/demo-adapter",
                    options=probe.RunOptions(json="run.json"))
    print(run.exit_code, [o.key for o in run.outcomes if o.action == "fail"])
    run.write_reports()

The ``probe`` command and the pytest plugin are thin callers of this module: they turn
their options into ``RunOptions``, call ``run``, and show ``Run.outcomes``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.backends import Backend, LoadOptions, ModelPair, check_models
from probe.engine import distributed
from probe.engine.compare import ProbeResult, SuiteResult
from probe.engine.outcome import ItemOutcome, item_outcome
from probe.engine.runner import ProgressFn
from probe.errors import UsageError
from probe.files import PathLike
from probe.options import RunOptions, check_value, opt
from probe.report.outputs import ReportPaths, check_report_paths, run_inputs, write_reports
from probe.session import ProbeSession, RunSettings
from probe.spec import Suite, load_suite
from probe.spec.model import SUITE_GATE_ID

if TYPE_CHECKING:
    from probe.engine.baseline import BaselineJudge

SuiteRef = str | os.PathLike[str] | Suite
ModelRef = str | os.PathLike[str] | Backend


def suite_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The suite files named by ``paths``: files as given, directories searched for
    ``*.yaml``/``*.yml`` (catalogs below them skipped: ``probe.catalog``); ``UsageError``
    for a path that is missing or not a file."""
    return search_suite_files(paths)[0]


def search_suite_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[Path]]:
    """``suite_files``, and the catalog directories its search skipped."""
    from probe.catalog import search

    files: list[Path] = []
    skipped: list[Path] = []
    shown = []
    for raw in paths:
        path = Path(raw)
        shown.append(str(raw))
        if path.is_dir():
            found, passed = search(path)
            files += found
            skipped += passed
        elif path.is_file():
            files.append(path)
        else:
            from probe.files import special_kind

            # /dev/zero or a FIFO is there, and is no suite: say what it is.
            kind = special_kind(path)
            raise UsageError(f"{raw}: {kind}, not a suite file" if kind else
                             f"{raw}: no such file or directory")
    if not files:
        raise UsageError(f"no suite files (*.yaml) found in {', '.join(shown) or 'nothing'}")
    return files, skipped


def data_roots(options: RunOptions) -> tuple[Path, ...]:
    """Where ``dataset:`` files may be read besides each suite's own directory, resolved
    and checked (``UsageError`` for a root that is not a directory)."""
    from probe.spec.dataset import check_data_roots

    return check_data_roots(options.data_root, opt("data_root"))  # type: ignore[arg-type]


def load_suites(suites: SuiteRef | Sequence[SuiteRef],
                options: RunOptions | None = None) -> list[Suite]:
    """``suites`` as ``Suite`` objects: paths (files or directories) are loaded and checked,
    ``dataset:`` files confined to the suite's directory and ``options.data_root``."""
    options = options if options is not None else RunOptions()
    items: Sequence[SuiteRef] = ([suites] if isinstance(suites, str | os.PathLike | Suite)
                                 else suites)
    roots = data_roots(options)
    loaded: list[Suite] = []
    for item in items:
        if isinstance(item, Suite):
            loaded.append(item)
        else:
            loaded += [load_suite(f, data_roots=roots) for f in suite_files([item])]
    return loaded


def _model_name(ref: ModelRef, name: str) -> str:
    if isinstance(ref, Backend):
        return ref.info.name
    text = os.fspath(ref)
    if not text.strip():
        raise UsageError(f"{opt(name)} is empty; give a model, for example smollm2-135m")
    return text


def report_paths(options: RunOptions) -> ReportPaths:
    """The report files ``options`` ask for."""
    def path(value: object) -> Path | None:
        return None if value is None else Path(str(value))

    return ReportPaths(json=path(options.json), html=path(options.html),
                       parquet=path(options.parquet), baseline=path(options.baseline),
                       update_baseline=options.update_baseline)


def run(suites: SuiteRef | Sequence[SuiteRef], base: ModelRef, candidate: ModelRef, *,
        seed: int = 0, options: RunOptions | None = None,
        progress: ProgressFn | None = None,
        inputs: Iterable[tuple[str, PathLike | None]] = ()) -> Run:
    """Measure ``suites`` on ``base`` and ``candidate`` and decide every verdict.

    ``suites``: suite files, directories of them, or loaded ``Suite`` objects; each suite
    file is measured whole and its gates are one Holm family. ``base``/``candidate``:
    model references (``smollm2-135m``, a directory, a peft adapter for the candidate, a
    hub id, ``scripted:FILE.yaml``; with ``options.engine="openai"`` model names on the
    server) or already-built ``Backend`` objects. ``options``: which engine runs the
    models and how they load, caching, policy overrides and report files (``RunOptions``);
    report files are checked now, written by ``Run.write_reports``. ``inputs``: more
    files the reports must not overwrite (``(description, path)``).

    Raises ``UsageError`` (bad options or paths), ``SpecError`` (a bad suite),
    ``ModelLoadError``/``BackendError`` (the models could not be loaded or run).
    """
    options = options if options is not None else RunOptions()
    seed = check_value("seed", seed)
    base_name, candidate_name = _model_name(base, "base"), _model_name(candidate, "candidate")
    pair: ModelPair | None = None
    if isinstance(base, Backend) and isinstance(candidate, Backend):
        pair = ModelPair(base, candidate)
    elif isinstance(base, Backend) or isinstance(candidate, Backend):
        raise UsageError("give both models as references or both as Backend objects")
    else:
        check_models(base_name, candidate_name, LoadOptions.from_options(options))
    loaded = load_suites(suites, options)
    if pair is None:
        from probe.backends import latent
        from probe.backends.engines import engine_name
        from probe.backends.perturbed import check_engine

        engine = engine_name(LoadOptions.from_options(options), base_name, candidate_name)
        loaded = latent.check_engine(engine, check_engine(engine, loaded))
    settings = RunSettings.from_options(base_name, candidate_name, seed, options)
    paths = report_paths(options)
    baseline = None
    if paths.baseline is not None:
        from probe.engine.baseline import load_baseline

        baseline = load_baseline(paths.baseline, updating=paths.update_baseline)
    # Before minutes of model work: no report may overwrite an input or another report.
    check_report_paths(paths, [*run_inputs(loaded, settings, paths),
                               *inputs])
    session = ProbeSession(settings, progress=progress, pair=pair)
    session.run_all([(suite, suite.probes) for suite in loaded])
    return Run(session, paths, baseline)


class Run:
    """The results of one ``probe.run``: every probe and suite gate, their verdicts, what
    each does to the build (``outcomes``), the run record (``record()``), and the report files."""

    def __init__(self, session: ProbeSession, paths: ReportPaths,
                 baseline: dict[str, Any] | None = None) -> None:
        self.session = session
        self.paths = paths
        self._baseline = baseline
        self._record: dict[str, Any] | None = None

    @property
    def settings(self) -> RunSettings:
        """The models, seed, cache and load options the run used."""
        return self.session.settings

    @property
    def suite_results(self) -> list[SuiteResult]:
        """One result per suite file, with its probes' results, in the order run."""
        return list(self.session.suite_results.values())

    @property
    def probe_results(self) -> list[ProbeResult]:
        """Every probe's result, suite by suite."""
        return [r for s in self.suite_results for r in s.probes]

    def probe_result(self, source: str, probe_id: str) -> ProbeResult:
        """The result of probe ``probe_id`` of the suite file ``source``."""
        return self.session.results[(source, probe_id)]

    def suite_result(self, source: str) -> SuiteResult:
        """The result of the suite file ``source`` (its pooled gate and its probes)."""
        return self.session.suite_results[source]

    @property
    def is_main(self) -> bool:
        """False on every rank but 0 under ``torchrun``: rank 0 alone reports."""
        shard = distributed.current()
        return shard is None or shard.is_main

    def record(self) -> dict[str, Any]:
        """The JSON run record (docs/record.md), built on first use and kept."""
        if self._record is None:
            from probe.report.record import build_record

            self._record = build_record(self.session)
        return self._record

    @cached_property
    def judge(self) -> BaselineJudge | None:
        """The baseline's judge (``None`` without a baseline to compare with)."""
        if self._baseline is None:
            return None
        from probe.engine.baseline import BaselineJudge

        return BaselineJudge(self._baseline, self.record(), str(self.paths.baseline))

    @cached_property
    def outcomes(self) -> list[ItemOutcome]:
        """What every probe and suite gate does to the build (``probe.engine.outcome``)."""
        accepting = str(self.paths.baseline) if self.paths.update_baseline else None
        found = []
        for suite_result in self.suite_results:
            name = suite_result.suite.name
            for result in suite_result.probes:
                found.append(item_outcome(f"{name}::{result.run.probe.id}", result.verdict,
                                          result.policy, accepting_into=accepting,
                                          judge=self.judge))
            found.append(item_outcome(f"{name}::{SUITE_GATE_ID}", suite_result.verdict,
                                      suite_result.suite.policy, accepting_into=accepting,
                                      judge=self.judge))
        return found

    def outcome(self, key: str) -> ItemOutcome:
        """The outcome of ``suite::probe`` or ``suite::__suite__``."""
        for found in self.outcomes:
            if found.key == key:
                return found
        raise KeyError(key)

    @property
    def failed(self) -> bool:
        """Whether any probe or suite gate fails the build."""
        return any(o.action == "fail" for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """The exit status a front end gives for the verdicts: 0 pass, 1 failed (pytest's)."""
        return 1 if self.failed else 0

    def write_reports(self) -> list[str]:
        """Write the report files the options ask for (JSON, HTML, parquet, the accepted
        baseline); one line per file written. Rank 0 alone writes under ``torchrun``."""
        if not self.is_main:
            return []
        return write_reports(self.session, self.paths, record=self.record())


__all__ = ["Run", "data_roots", "load_suites", "report_paths", "run", "suite_files"]
