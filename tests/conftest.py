"""Shared fixtures: scripted model files and suite text; how the suite runs under xdist."""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

# Imported before any pytester run: an in-process pytester run restores sys.modules when it
# ends, so a module first imported inside one is dropped from sys.modules while the
# engine registry keeps its classes; ``typing.get_type_hints`` then cannot resolve their
# annotations (a test file run on its own failed with "name 'Rule' is not defined").
import probe.backends.scripted  # noqa: F401

# Under pytest-xdist (scripts/test.sh runs ``-n 2`` on 2 cores) each worker, and every
# model run it starts as a subprocess, computes on one thread: two workers at torch's
# default of one thread per core would oversubscribe the cores, and torch's OpenMP
# threads spin-wait on a core another process holds (64 SmolLM2 generations beside other
# busy processes on this 2-core machine: 592 s at two threads, 73 s at one). The
# calibration and demo runs assert the same figures at one thread as at two.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"
    if "torch" in sys.modules:  # already imported: the variables came too late for it
        sys.modules["torch"].set_num_threads(1)

# The real-model module that runs the shipped suites (the demo, then the nulls) goes
# first: scripts/test.sh schedules whole files (``--dist loadfile``), so it stays on one
# worker, computes the base's completions once, and the other worker takes the rest.
# (``--dist loadgroup`` with ``xdist_group`` markers would say the same, but xdist 3.8
# writes the group into a node attribute pytest 9 no longer reads, so it never grouped.)
_SHIPPED_SUITES_MODULE = "test_demo_real.py"
# Builds the full fine-tune (about 3 minutes) the shipped-suite module needs late in its
# chain: handed out second, it builds on the other worker meanwhile.
_BUILDS_FOR_IT = "test_full_finetune.py"

VALID_SUITE = textwrap.dedent("""\
    version: 1
    name: capitals
    behavior:
      description: names the capital city
    detector: {type: pattern, any: [Paris]}
    operators:
      - name: casing
        count: 1
    policy:
      max_resurfacing: 0.25
    probes:
      - id: france
        prompt: What is the capital of France?
        paraphrases:
          - Which city is the capital of France?
        tags: [europe]
      - id: japan
        prompt: What is the capital of Japan?
        detector: {type: pattern, any: [Tokyo]}
    """)


@pytest.fixture
def valid_suite_text() -> str:
    return VALID_SUITE


def warm_dataset_readers() -> None:
    """Read one small csv, jsonl and parquet file through the suite loader's reader, now.

    pytester puts ``sys.modules`` back as it found it after each in-process run, so a
    reader first imported inside a run would be imported afresh by the next, and numpy,
    pyarrow and datasets refuse that ("cannot load module more than once per process",
    "the csv reader could not be loaded"): an artefact of running many pytest sessions
    in one process, which no real run does. Test modules that run data-file suites in
    process call this at import.
    """
    import pyarrow
    import pyarrow.parquet

    from probe.spec.dataset import _read_rows

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "p.csv").write_text("id,prompt\nfrance,What is the capital of France?\n",
                                    encoding="utf-8")
        (root / "p.jsonl").write_text('{"id": "a"}\n', encoding="utf-8")
        pyarrow.parquet.write_table(pyarrow.table({"id": ["a"]}), root / "p.parquet")
        for name, fmt in (("p.csv", "csv"), ("p.jsonl", "json"), ("p.parquet", "parquet")):
            _read_rows(root / name, fmt)


def write_script(path: Path, name: str, rules: list[tuple[str, str]], default: str = "") -> Path:
    """Write a scripted-model YAML file and return its path."""
    lines = [f"name: {name}", f"default: {default!r}", "rules:"]
    lines += [f"  - {{match: {m!r}, reply: {r!r}}}" for m, r in rules]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def real_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One completion cache for the slow real-model runs of a test session: the base's
    completions (keyed by its fingerprint, like every cache entry) are computed once and
    reused by every module that runs the shipped suites, as they would be across CI jobs.

    Under xdist it lies beside the workers' own temporary folders, so it is one cache for
    the whole run whichever worker a module lands on (the cache takes concurrent writers:
    tests/test_cache_faults.py)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent / "real-model-cache"
        shared.mkdir(exist_ok=True)
        return shared
    return tmp_path_factory.mktemp("real-model-cache")


@pytest.fixture(scope="session")
def full_finetune() -> Path:
    """SmolLM2-135M-Instruct fine-tuned in full (every weight, AdamW at 5e-5) on the demo
    adapter's data: ``models/build_full_finetune.py``, built once into the model cache
    (about 3 minutes on 2 cores; keyed by the recipe's digest, so CI keeps it with the
    base model) and reused by every test of the session. Under xdist a second worker
    waits on the build's lock instead of building again."""
    models = Path(__file__).resolve().parents[1] / "models"
    if str(models) not in sys.path:
        sys.path.insert(0, str(models))
    from build_full_finetune import ensure_full_finetune  # imports torch: only when used

    return ensure_full_finetune()


def _heaviest_first(item: pytest.Item) -> int:
    """Sort key: the shipped-suite runs, the full fine-tune's build, the other real-model
    modules, then the rest.

    xdist hands out files in this order, so the longest chain starts first and the other
    worker takes everything else meanwhile, instead of one worker running the shipped
    suites alone at the end."""
    if item.path.name == _SHIPPED_SUITES_MODULE:
        return 0
    if item.path.name == _BUILDS_FOR_IT:
        return 1
    return 2 if item.get_closest_marker("slow") else 3


# scripts/test.sh runs the tests twice, in two venvs, and says which run this is: the
# main venv's run leaves out the tests marked vllm, .venv-vllm's runs only those. Done
# here, not with -m, so that a user's own -m ("not slow") applies to both runs.
TEST_VENV_ENV = "PROBE_TEST_VENV"


def _split_by_venv(config: pytest.Config, items: list[pytest.Item]) -> None:
    venv = os.environ.get(TEST_VENV_ENV)
    if venv not in ("main", "vllm"):
        return
    # Only this repository's test functions are split: a suite's probe items, collected
    # when a test runs ``pytest SUITE`` in a subprocess (which inherits the variable),
    # belong to whichever venv runs that subprocess.
    dropped = [i for i in items if isinstance(i, pytest.Function)
               and (i.get_closest_marker("vllm") is not None) != (venv == "vllm")]
    keep = [i for i in items if i not in dropped]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep this venv's tests (``PROBE_TEST_VENV``) and put the real-model modules first.
    The sort is stable, so a module's tests stay together and in their order (their model
    is a module fixture, loaded once)."""
    _split_by_venv(config, items)
    items.sort(key=_heaviest_first)
