"""Packaging: the core install works without the heavy extras, a missing extra is one
line that names it, every import is declared, and the version lives in one place.

The "without the extras" runs use a ``sitecustomize`` that makes torch, transformers, peft
and matplotlib (and the rest of the extras) unimportable in a subprocess, and logs every
attempt: building a fresh core-only venv would take minutes and the package registries.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from packaging.requirements import Requirement

import probe
from probe.extras import EXTRAS

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
HEAVY = ("torch", "transformers", "peft", "matplotlib", "safetensors", "gguf", "accelerate")

BLOCKER = '''
import os, sys

BLOCKED = set(os.environ["PROBE_TEST_BLOCK"].split(","))
LOG = os.environ["PROBE_TEST_BLOCK_LOG"]


class _Uninstalled:
    """Behaves as if the blocked distributions were not installed, and logs each try."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            with open(LOG, "a", encoding="utf-8") as log:
                log.write(name + "\\n")
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Uninstalled())
'''

CLI = "import sys; from probe.cli import main; sys.exit(main())"


def _run_without(tmp_path: Path, blocked: Iterable[str], args: Sequence[str],
                 ) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``python args...`` in the repository with ``blocked`` unimportable; return the
    process and the module names it tried to import."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    log = tmp_path / "attempts.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(site), "PROBE_TEST_BLOCK": ",".join(blocked),
           "PROBE_TEST_BLOCK_LOG": str(log), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    attempts = log.read_text(encoding="utf-8").split() if log.exists() else []
    return proc, attempts


def test_the_blocker_blocks(tmp_path: Path) -> None:
    """The environment the tests below rely on: torch really cannot be imported there."""
    proc, attempts = _run_without(tmp_path, HEAVY, ["-c", "import torch"])
    assert proc.returncode == 1
    assert "No module named 'torch'" in proc.stderr
    assert attempts == ["torch"]


def test_probe_check_needs_no_extra(tmp_path: Path) -> None:
    proc, attempts = _run_without(tmp_path, HEAVY, ["-c", CLI, "check", "suites/"])
    assert proc.returncode == 0, proc.stderr
    assert "ok  suites/capitals_unlearning.yaml" in proc.stdout
    assert attempts == []


def test_pytest_collection_needs_no_extra(tmp_path: Path) -> None:
    proc, attempts = _run_without(tmp_path, HEAVY, [
        "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "suites/",
        "--probe-base", "smollm2-135m", "--probe-candidate", "models/demo-adapter"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b\d+ tests? collected", proc.stdout), proc.stdout
    assert attempts == []


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The run's error output, checked to be a single line with no traceback."""
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


HF_HINT = "needs the hf extra (torch, transformers, peft, safetensors, gguf, accelerate are " \
          "not installed): pip install 'probe-resurface[hf]'"


def test_probe_run_without_hf_names_the_extra(tmp_path: Path) -> None:
    proc, _ = _run_without(tmp_path, HEAVY, [
        "-c", CLI, "run", "suites/", "--base", "smollm2-135m",
        "--candidate", "models/demo-adapter", "--no-cache"])
    assert proc.returncode == 4
    assert _one_line_error(proc) == f"usage error: the Hugging Face backend {HF_HINT}"


def test_pytest_run_without_hf_names_the_extra(tmp_path: Path) -> None:
    proc, _ = _run_without(tmp_path, HEAVY, [
        "-m", "pytest", "-q", "-p", "no:cacheprovider", "suites/capitals_retention.yaml",
        "--probe-base", "smollm2-135m", "--probe-candidate", "models/demo-adapter",
        "--probe-no-cache"])
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"the Hugging Face backend {HF_HINT}" in proc.stdout + proc.stderr


def test_html_report_without_report_extra_names_it_before_the_run(tmp_path: Path) -> None:
    # Only matplotlib is missing: the run is refused before any model loads.
    proc, attempts = _run_without(tmp_path, ["matplotlib"], [
        "-c", CLI, "run", "suites/", "--base", "smollm2-135m",
        "--candidate", "models/demo-adapter", "--no-cache",
        "--html", str(tmp_path / "report.html")])
    assert proc.returncode == 4
    assert _one_line_error(proc) == (
        "usage error: --html (the HTML report) needs the report extra (matplotlib is not "
        "installed): pip install 'probe-resurface[report]'")
    assert set(attempts) == {"matplotlib"}  # nothing else was looked for
    assert not (tmp_path / "report.html").exists()


# -- what pyproject.toml declares ---------------------------------------------------------

def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def _declared(group: str | None = None) -> set[str]:
    """Distribution names in the core dependencies (``group`` None) or in one extra."""
    listed = PYPROJECT["dependencies"] if group is None else \
        PYPROJECT["optional-dependencies"][group]
    return {_name(r) for r in listed}


def _imports(tree: ast.AST) -> Iterator[str]:
    """Top-level names of the absolute imports in ``tree``, outside TYPE_CHECKING blocks
    (those run only under a type checker)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (name for child in node.orelse for name in _imports(child))
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0]
        yield from _imports(node)


def third_party_imports() -> dict[str, set[str]]:
    """Module -> files of probe/ that import it, for every module outside the standard
    library and probe itself."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "probe").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for module in _imports(tree):
            if module != "probe" and module not in sys.stdlib_module_names:
                found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_imported_module_is_declared() -> None:
    declared = _declared().union(*(_declared(g) for g in PYPROJECT["optional-dependencies"]))
    providers = importlib.metadata.packages_distributions()
    imports = third_party_imports()
    assert {"torch", "yaml", "tqdm", "matplotlib"} <= imports.keys()  # the parse finds them
    undeclared = {module: sorted(files) for module, files in imports.items()
                  if not {_name(d) for d in providers.get(module, [module])} & declared}
    assert undeclared == {}


def test_each_extra_module_comes_from_that_extra() -> None:
    """probe.extras (what the one-line error checks) agrees with pyproject.toml."""
    providers = importlib.metadata.packages_distributions()
    assert set(EXTRAS) <= set(PYPROJECT["optional-dependencies"])
    for extra, modules in EXTRAS.items():
        for module in modules:
            assert {_name(d) for d in providers[module]} & _declared(extra), (extra, module)
    assert _declared("all") == {"probe-resurface"}
    assert {r.partition("[")[2].rstrip("]") for r in PYPROJECT["optional-dependencies"]["all"]
            } == {"hf,report"}


def _closure(names: Iterable[str]) -> set[str]:
    """Installed distributions ``names`` need, transitively (no extras of theirs)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:  # an optional platform package
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_name(line))
    return seen


def test_the_core_install_brings_no_heavy_package() -> None:
    core = _closure(_declared())
    assert {"pytest", "pyyaml", "datasets", "tqdm", "numpy"} <= core
    assert core.isdisjoint(HEAVY), sorted(core.intersection(HEAVY))


# -- the version, in one place -------------------------------------------------------------

def test_version_is_read_from_the_package() -> None:
    raw = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in raw["project"]
    assert raw["project"]["dynamic"] == ["version"]
    assert raw["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "probe.__version__"}
    assert importlib.metadata.version("probe-resurface") == probe.__version__


def test_built_wheel_takes_its_version_from_init_and_ships_the_data_files(
        tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "probe", source / "probe",
                    ignore=shutil.ignore_patterns("__pycache__"))
    init = source / "probe" / "__init__.py"
    text, count = re.subn(r'(?m)^__version__ = ".*"$', '__version__ = "9.8.7"',
                          init.read_text(encoding="utf-8"))
    assert count == 1
    init.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "-w", str(tmp_path / "dist"),
         str(source)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name.startswith("probe_resurface-9.8.7-")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read("probe_resurface-9.8.7.dist-info/METADATA").decode()
    assert {"probe/py.typed", "probe/spec/suite.schema.json"} <= names
    assert "\nVersion: 9.8.7\n" in metadata
    assert "Provides-Extra: hf" in metadata
