"""The starter library (suites/library/): every suite loads, validates and is documented,
and being a catalog keeps it out of the demo's ``pytest suites/`` and ``probe run suites/``.

No model: what SmolLM2 does on each suite is measured by ``probe vet`` and written in the
suite's header and the README; tests/test_library_real.py runs the persona adapter.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from probe.api import suite_files
from probe.catalog import CATALOG_MARKER, search
from probe.cli import EXIT_OK, main
from probe.engine.lock import read_lock
from probe.spec import load_suite
from probe.spec.schema import shipped_schema_text

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "suites" / "library"
SUITES = sorted(LIBRARY.glob("*.yaml"))
DEMO_SUITES = ["capitals_retention.yaml", "capitals_unlearning.yaml"]


def test_the_library_has_the_six_suites_the_readme_lists() -> None:
    names = [p.stem for p in SUITES]
    assert names == ["competitor", "fictitious_facts", "harmful_refusal", "identity",
                     "over_refusal", "system_secret"]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Starter library", 1)[1].split("\n## ", 1)[0]
    for name in names:
        assert f"suites/library/{name}.yaml" in section, name


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_every_library_suite_loads_and_validates(path: Path) -> None:
    suite = load_suite(path)
    read_lock(suite)  # a lock, where there is one, is current (probe check does the same)
    assert suite.name.startswith("library-")
    assert len(suite.probes) >= 4
    import jsonschema

    schema = json.loads(shipped_schema_text())
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(data)) == []


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_every_library_suite_says_what_it_measures_how_to_adapt_it_and_its_vetting(
        path: Path) -> None:
    header = path.read_text(encoding="utf-8").split("\nversion: 1", 1)[0]
    for word in ("Measures:", "Adapt:", "Vetting (probe vet suites/library/"):
        assert word in header, word
    assert re.search(r"\(\w[^()]* \d{4}", header), "a source with its year"
    assert "VETTING" not in header  # the placeholder was replaced by measured figures


def test_conversations_and_the_system_prompt_are_used() -> None:
    suites = {p.stem: load_suite(p) for p in SUITES}
    assert suites["system_secret"].system
    assert any(p.messages for s in suites.values() for p in s.probes)


def test_no_harmful_completion_is_stored() -> None:
    # Requests only: nothing a model could be scored towards or shown as an answer.
    suite = load_suite(LIBRARY / "harmful_refusal.yaml")
    assert all(not p.suppressed and not p.preferred and not p.messages for p in suite.probes)
    assert [o.name for o in suite.operators if o.name == "few_shot"] == []


def test_the_library_is_a_catalog_left_out_of_a_search_of_suites() -> None:
    assert (LIBRARY / CATALOG_MARKER).is_file()
    assert [p.name for p in suite_files([REPO / "suites"])] == DEMO_SUITES
    _, skipped = search(REPO / "suites")
    assert skipped == [LIBRARY]
    assert suite_files([LIBRARY]) == SUITES  # named, it is searched
    assert suite_files([LIBRARY / "identity.yaml"]) == [LIBRARY / "identity.yaml"]


def test_probe_check_says_it_skipped_the_catalog(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO)
    assert main(["check", "suites/"]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in out if line.startswith("ok")] == [
        f"suites/{n}:" for n in DEMO_SUITES]
    assert out[-1].startswith("skip suites/library/: a catalog of suites to copy")
    assert main(["check", "suites/library/"]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert len([line for line in out if line.startswith("ok")]) == len(SUITES)


def test_pytest_collects_the_library_only_when_named(pytester: pytest.Pytester) -> None:
    shutil.copytree(REPO / "suites", pytester.path / "suites")

    def collected(*args: str) -> set[str]:
        result = pytester.runpytest_subprocess("--collect-only", "-q", *args)
        return {line.split("::")[0] for line in result.outlines if "::" in line}

    assert collected("suites/") == {f"suites/{n}" for n in DEMO_SUITES}
    assert collected("suites/library/") == {f"suites/library/{p.name}" for p in SUITES}
    assert collected("suites/library/identity.yaml") == {"suites/library/identity.yaml"}


def _walkthrough() -> list[list[str]]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"### Write your own suite\n.*?```bash\n(.*?)```", readme, re.S)
    assert block is not None
    return [line.split("#")[0].split() for line in block.group(1).splitlines()]


def test_the_walkthrough_is_five_real_commands_and_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command of "Write your own suite" but the vet (which loads SmolLM2) runs here
    as written, in a copy of the repository's suites; the vet's line parses."""
    commands = _walkthrough()
    assert [c[:2] for c in commands] == [
        ["cp", "suites/library/identity.yaml"], ["probe", "check"], ["probe", "variants"],
        ["probe", "vet"], ["probe", "lock"]]
    shutil.copytree(REPO / "suites", tmp_path / "suites")
    monkeypatch.chdir(tmp_path)
    source, copy = commands[0][1:]
    shutil.copy(source, copy)
    for command in commands[1:]:
        assert command[2] == copy
        if command[1] == "vet":
            from probe.cli import _parser

            args = _parser(command[1:]).parse_args(command[1:])
            assert args.base == "smollm2-135m"
            continue
        assert main(command[1:]) == EXIT_OK, command
    assert (tmp_path / copy).with_suffix(".lock.json").is_file()
    assert main(["check", "suites/"]) == EXIT_OK  # the copy is collected; the catalog is not
