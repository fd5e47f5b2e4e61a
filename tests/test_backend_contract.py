"""The backend seam: ``Prompt``, ``Completion`` and ``LoadOptions`` in the contract, the
cache format of completions, and what the backend package says about itself."""

from __future__ import annotations

import ast
import dataclasses
import pkgutil
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

import probe.backends.hf as hf
from probe.backends import Completion, GenerationSettings, LoadOptions, Prompt
from probe.backends.scripted import Rule, Script, ScriptedBackend
from probe.engine.cache import CompletionCache, prompt_key
from probe.engine.limits import completion_note
from probe.engine.runner import complete
from probe.errors import BackendError, UsageError

REPO = Path(__file__).resolve().parents[1]
BACKENDS = REPO / "probe" / "backends"
SCRIPT = Script("base", "no idea", (Rule("France", "Paris."),))
SETTINGS = GenerationSettings(max_new_tokens=4)


class _NeverCalled(ScriptedBackend):
    """Same fingerprint as ``SCRIPT``'s backend; fails if the cache did not answer."""

    def generate(self, prompts: Sequence[Prompt],
                 settings: GenerationSettings) -> list[Completion]:
        raise AssertionError(f"computed {prompts!r}: the cache should have answered")


class _PlainStrings(ScriptedBackend):
    """A backend written against the old contract: completions as plain strings."""

    def generate(self, prompts: Sequence[Prompt],
                 settings: GenerationSettings) -> list[Completion]:
        return [p.text for p in prompts]  # type: ignore[misc]


def test_a_completion_is_a_value_not_a_string() -> None:
    done = Completion("Paris.", cut=True)
    assert not isinstance(done, str)
    assert (done.text, done.cut) == ("Paris.", True)
    assert done == Completion("Paris.", True) != Completion("Paris.", False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        done.cut = False  # type: ignore[misc]


def test_cached_completions_keep_their_on_disk_format(tmp_path: Path) -> None:
    cut, ended, unknown = Prompt("France, cut"), Prompt("France, ended"), Prompt("unknown")
    cache = CompletionCache(tmp_path, ScriptedBackend(SCRIPT).info.fingerprint)
    # Lines as cache schema 2 has always written them: [text, cut], or the bare text
    # from a backend that could not tell whether it was cut.
    cache.put_many({prompt_key(SETTINGS, cut): '["Paris. It is", true]',
                    prompt_key(SETTINGS, ended): '["Paris.", false]',
                    prompt_key(SETTINGS, unknown): '"no idea"'})
    assert complete(_NeverCalled(SCRIPT), [cut, ended, unknown], SETTINGS, tmp_path) == [
        Completion("Paris. It is", True), Completion("Paris.", False),
        Completion("no idea", None)]
    fresh = Prompt("France, fresh")
    assert complete(ScriptedBackend(SCRIPT), [fresh], SETTINGS, tmp_path) == [
        Completion("Paris.", False)]
    reread = CompletionCache(tmp_path, ScriptedBackend(SCRIPT).info.fingerprint)
    assert reread.get(prompt_key(SETTINGS, fresh)) == '["Paris.", false]'


def test_a_completion_of_unknown_cut_is_judged_by_its_length() -> None:
    backend = ScriptedBackend(SCRIPT)
    long, short = Completion("one two three four", None), Completion("one two", None)
    assert completion_note(backend, "base", [short], 4) is None
    assert completion_note(backend, "base", [long], 4) == \
        "base completion cut at max_new_tokens (4)"
    # A backend that knows beats the word count either way.
    assert completion_note(backend, "base", [Completion("one two", True)], 4) is not None
    assert completion_note(backend, "base", [Completion(long.text, False)], 4) is None


def test_a_backend_returning_plain_strings_gets_a_one_line_error() -> None:
    with pytest.raises(BackendError) as caught:
        complete(_PlainStrings(SCRIPT), [Prompt("France")], SETTINGS, None)
    assert str(caught.value) == "base: returned a str, not a probe.backends.Completion"


def test_load_options_are_one_dataclass_checked_when_made() -> None:
    # Every "load" option of the one table, in its order, with its default.
    from probe.options import options_in

    load = options_in("load")
    assert [f.name for f in dataclasses.fields(LoadOptions)] == [o.name for o in load]
    defaults = LoadOptions()
    assert [getattr(defaults, o.name) for o in load] == [o.default for o in load]
    with pytest.raises(UsageError, match="memory_fraction: must be in"):
        LoadOptions(memory_fraction=1.5)
    with pytest.raises(UsageError, match="server_url: must be an http"):
        LoadOptions(server_url="localhost:8000")
    with pytest.raises(UsageError, match="api_key_env: must name an environment variable"):
        LoadOptions(api_key_env="sk-abc123")
    assert not hasattr(hf, "LoadOptions")  # one definition, in the contract
    with pytest.raises(UsageError, match="device: 'toaster' is not a device"):
        LoadOptions(device="toaster")
    with pytest.raises(UsageError, match="device: '' is not a device"):
        LoadOptions(device="")
    with pytest.raises(UsageError, match="dtype: unknown dtype 'fp8'"):
        LoadOptions(dtype="fp8")
    with pytest.raises(UsageError, match="batch_size: must be a positive"):
        LoadOptions(batch_size=0)
    assert LoadOptions(device="CUDA:1", dtype="bf16", batch_size=None).batch_size is None


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from probe... import name`` in ``path``."""
    return [(node.module or "", alias.name)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("probe.")
            for alias in node.names]


def test_backends_do_not_depend_on_the_operators() -> None:
    # The seam runs one way: operators make Prompts from the backend contract.
    found = [f"{path.name}: {module}" for path in sorted(BACKENDS.rglob("*.py"))
             for module, _ in _imports(path) if module.startswith("probe.operators")]
    assert found == []


def test_backend_modules_import_no_private_names_from_each_other() -> None:
    private = [f"{path.name}: {module}.{name}" for path in sorted(BACKENDS.rglob("*.py"))
               for module, name in _imports(path) if name.startswith("_")]
    assert private == []


def test_the_hf_package_docstring_lists_every_module() -> None:
    listed = re.findall(r"^- ``(\w+)``:", hf.__doc__ or "", re.M)
    modules = [m.name for m in pkgutil.iter_modules(hf.__path__)]
    assert sorted(listed) == sorted(modules)


def test_docstrings_point_only_at_files_that_exist() -> None:
    missing = []
    for path in sorted((REPO / "probe").rglob("*.py")):
        for name in re.findall(r"[\w./-]+\.md\b", path.read_text(encoding="utf-8")):
            if not (REPO / name).is_file():
                missing.append(f"{path.relative_to(REPO)}: {name}")
    assert missing == []
