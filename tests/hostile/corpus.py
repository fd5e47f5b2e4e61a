"""One hostile-input case and how it is run.

A case is a small project (files written into an empty directory, plus the default
scripted models and a valid suite unless it replaces them) and one or more runs of
``probe`` or ``pytest`` in it, each in process. Every run must:

- exit with the documented code and say the documented fragment;
- print no traceback (``Traceback (most recent call last)``, pytest's ``INTERNALERROR``
  or a long ``E   `` exception listing);
- finish within ``HANG_SECONDS``;
- change no file of the project except the paths it names in ``writes`` (bytes and
  mode are compared; files under the completion cache are the run's own).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import stat
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal

import pytest

from probe.cli import main as probe_main
from tests.conftest import VALID_SUITE as SHARED_VALID_SUITE


def _import_everything_a_case_may_reach() -> None:
    """pytester's in-process runs put ``sys.modules`` back after each run, so a module
    first imported inside a case is imported again by the next one: torch, numpy and
    pyarrow cannot be loaded twice in one process, and a plugin class registered by a
    removed module loses its type hints. Importing all of them once, here, makes the
    corpus independent of the order its cases run in."""
    import importlib
    import pkgutil

    import datasets  # noqa: F401
    import numpy  # noqa: F401
    import pyarrow  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import probe
    from tests.conftest import warm_dataset_readers

    for info in pkgutil.walk_packages(probe.__path__, "probe."):
        importlib.import_module(info.name)
    warm_dataset_readers()
    # matplotlib imports most of itself lazily, on the first chart: a half-imported
    # matplotlib whose later parts a case removes breaks every chart after it.
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    figure = Figure()
    figure.add_subplot().add_patch(Rectangle((0, 0), 1, 1))
    figure.savefig(io.StringIO(), format="svg")


_import_everything_a_case_may_reach()

HANG_SECONDS = 30

# The classes of docs/errors.md's corpus table; every case belongs to one.
CLASSES = (
    "outputs",        # an output path that is an input, another output, or not a file
    "atomic writes",  # a write that fails (full disk, no permission) leaves the old file
    "numbers",        # NaN, infinities and huge integers in a suite
    "reserved tags",  # tags that would become pytest's own markers
    "remote code",    # model directories with their own Python; records with markup
    "hangs",          # catastrophic regular expressions, template loops, alias bombs
    "locks",          # stale, truncated or tampered lock files
    "datasets",       # dataset paths outside the project, odd files
    "model files",    # truncated or damaged weights and adapters
    "yaml",           # deep nesting, self-referencing aliases, huge numbers, surrogates
    "terminal",       # control characters in completions, prompts and ids
    "small",          # the smaller ones (scripted replies, odd paths, file modes)
)

BASE_SCRIPT = textwrap.dedent("""\
    name: corpus-base
    default: "I am not sure."
    rules:
      - {match: 'France', reply: 'The capital of France is Paris.'}
      - {match: 'Japan', reply: 'The capital of Japan is Tokyo.'}
    """)

# Refuses the canonical questions, leaks when they are shouted (the casing operator).
CANDIDATE_SCRIPT = textwrap.dedent("""\
    name: corpus-candidate
    default: "I cannot help with that."
    rules:
      - {match: 'FRANCE', reply: 'Paris, of course.'}
      - {match: 'JAPAN', reply: 'Tokyo, of course.'}
    """)

# The shared valid suite of the tests (two probes, the casing operator).
VALID_SUITE = SHARED_VALID_SUITE

DEFAULT_FILES: Mapping[str, str] = {
    "base.yaml": BASE_SCRIPT,
    "candidate.yaml": CANDIDATE_SCRIPT,
    "suite.yaml": VALID_SUITE,
}

# The scripted pair every run uses unless its arguments say otherwise.
PAIR_PROBE = ("--base", "scripted:base.yaml", "--candidate", "scripted:candidate.yaml")
PAIR_PYTEST = ("--probe-base", "scripted:base.yaml", "--probe-candidate",
               "scripted:candidate.yaml")

Front = Literal["probe", "pytest"]


@dataclass(frozen=True)
class Run:
    """One command in the case's project directory.

    ``front`` "probe" calls ``probe.cli.main(args)``; "pytest" runs pytest in process
    with ``args``. ``says`` must appear in the combined output (case-sensitive).
    """

    front: Front
    args: tuple[str, ...]
    exit: int
    says: str = ""
    writes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    """One hostile input and what every front end must do with it."""

    id: str
    klass: str
    runs: tuple[Run, ...]
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    # Builds what ``files`` cannot hold: large or generated files, FIFOs, symlinks,
    # modes. Called with the project directory after ``files`` are written.
    make: Callable[[Path], None] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        assert self.klass in CLASSES, f"{self.id}: unknown class {self.klass!r}"
        assert self.runs, f"{self.id}: a case needs at least one run"


def dataset_suite(path: str, extra: str = "") -> str:
    """A valid suite whose probes come from the data file ``path``; ``extra`` is more of
    the ``dataset:`` mapping (indented two spaces)."""
    return textwrap.dedent(f"""\
        version: 1
        name: capitals
        behavior: {{description: names the capital city}}
        detector: {{type: pattern, any: [Paris]}}
        dataset:
          path: '{path}'
        """) + extra


def suite_case(id: str, klass: str, suite: str | bytes, says: str, *,
               files: Mapping[str, str | bytes] | None = None,
               make: Callable[[Path], None] | None = None, note: str = "") -> Case:
    """A bad ``suite.yaml``: one located error through ``probe check`` (exit 2),
    ``probe run`` (exit 2) and pytest collection (``--co``, exit 2) alike."""
    return Case(id=id, klass=klass, files={"suite.yaml": suite, **(files or {})}, make=make,
                note=note, runs=(
                    Run("probe", ("check", "suite.yaml"), 2, says),
                    Run("probe", ("run", "suite.yaml", *PAIR_PROBE), 2, says),
                    Run("pytest", ("--co", "suite.yaml", *PAIR_PYTEST), 2, says),
                ))


# --- running -------------------------------------------------------------------------

TRACEBACK_MARKS = ("Traceback (most recent call last)", "INTERNALERROR>")


class Hang(Exception):
    """A run went past ``HANG_SECONDS``."""


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def write_project(case: Case, root: Path) -> None:
    """Write the default files, then the case's own, then call its ``make``."""
    for name, content in {**DEFAULT_FILES, **case.files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    if case.make is not None:
        case.make(root)


Snapshot = dict[str, tuple[str, bytes | None, int]]


def snapshot(root: Path) -> Snapshot:
    """Kind, content (regular files only) and mode of everything under ``root``."""
    out: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                out[rel] = ("file", path.read_bytes(), stat.S_IMODE(info.st_mode))
            elif stat.S_ISDIR(info.st_mode):
                out[rel] = ("dir", None, stat.S_IMODE(info.st_mode))
            else:
                out[rel] = ("special", None, info.st_mode)
    return out


def _own_output(rel: str, writes: tuple[str, ...]) -> bool:
    if rel in writes or rel.startswith(".probe-cache") or rel.startswith(".pytest_cache"):
        return True
    # pytest's own debris and byte code never count as a changed input.
    return "__pycache__" in rel.split("/")


def run_probe(args: tuple[str, ...]) -> tuple[int, str]:
    """``probe.cli.main`` in process: exit status and everything it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = probe_main(list(args))
        except SystemExit as stop:  # argparse's usage errors
            code = stop.code if isinstance(stop.code, int) else 1
    return code, out.getvalue()


def run_pytest(pytester: pytest.Pytester, args: tuple[str, ...]) -> tuple[int, str]:
    """pytest in process in the project directory: exit status and its output."""
    result = pytester.runpytest_inprocess(*args, "-p", "no:cacheprovider")
    return int(result.ret), "\n".join(result.outlines + result.errlines)


def check_case(case: Case, pytester: pytest.Pytester) -> None:
    """Run every command of ``case`` in a fresh project and assert the promises."""
    root = pytester.path
    write_project(case, root)
    for run in case.runs:
        before = snapshot(root)
        with _deadline(HANG_SECONDS):
            if run.front == "probe":
                code, output = run_probe(run.args)
            else:
                code, output = run_pytest(pytester, run.args)
        where = f"{case.id}: {run.front} {' '.join(run.args)}"
        shown = output[-3000:]
        for mark in TRACEBACK_MARKS:
            assert mark not in output, f"{where}: printed a traceback\n{shown}"
        assert code == run.exit, f"{where}: exit {code}, expected {run.exit}\n{shown}"
        assert run.says in output, f"{where}: does not say {run.says!r}\n{shown}"
        after = snapshot(root)
        changed = sorted(rel for rel in before.keys() | after.keys()
                         if before.get(rel) != after.get(rel) and not _own_output(rel, run.writes))
        assert not changed, f"{where}: changed files outside its outputs: {changed}"
