"""Faults in the completion cache: corruption, torn writes, concurrent runs, SIGKILL.

The process tests run ``probe run`` for real, on scripted models that take
``delay`` seconds a prompt and append every prompt they actually compute to a
trace file: what a run recomputed is read from the trace, not guessed. Together
they take about 15 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from probe.backends.base import Completion, GenerationSettings, Prompt
from probe.backends.scripted import Rule, Script, ScriptedBackend, load_script
from probe.engine.cache import CompletionCache, ProbeCacheWarning, prompt_key
from probe.engine.runner import complete
from probe.errors import CacheError

ROOT = Path(__file__).parent.parent
BASE = Script("b", rules=(Rule("France", "Paris."),))
SETTINGS = GenerationSettings()
PROMPTS = [Prompt(f"France {i}") for i in range(6)]


def fingerprint() -> str:
    return ScriptedBackend(BASE).info.fingerprint


def test_a_corrupted_entry_is_reported_set_aside_and_recomputed(tmp_path: Path) -> None:
    complete(ScriptedBackend(BASE), PROMPTS, SETTINGS, tmp_path, chunk=2)
    path = tmp_path / f"{fingerprint()}.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 6
    lines[3] = lines[3].replace(b"Paris.", b"Paris!")  # a flipped byte on disk
    path.write_bytes(b"".join(lines))
    again = ScriptedBackend(BASE)
    with pytest.warns(ProbeCacheWarning) as caught:
        got = complete(again, PROMPTS, SETTINGS, tmp_path)
    assert got == [Completion("Paris.", False)] * 6
    message = str(caught[0].message)
    assert "1 corrupted or truncated entry discarded" in message
    assert "5 intact entries kept" in message
    assert again.prompts_seen == 1  # only the damaged entry was recomputed
    assert (tmp_path / f"{fingerprint()}.jsonl.corrupt").read_bytes() == lines[3]
    # Repaired: the next reader finds nothing wrong and computes nothing.
    third = ScriptedBackend(BASE)
    complete(third, PROMPTS, SETTINGS, tmp_path)
    assert third.prompts_seen == 0
    assert CompletionCache(tmp_path, fingerprint()).discarded_lines == 0


def test_an_entry_torn_by_a_kill_does_not_swallow_the_next_write(tmp_path: Path) -> None:
    complete(ScriptedBackend(BASE), PROMPTS[:2], SETTINGS, tmp_path)
    path = tmp_path / f"{fingerprint()}.jsonl"
    with path.open("ab") as f:
        f.write(b'{"k": "abc", "v": "Par')  # killed mid-line: no newline
    cache = CompletionCache(tmp_path, "other")  # another model's file: unaffected
    assert len(cache) == 0
    resumed = ScriptedBackend(BASE)
    with pytest.warns(ProbeCacheWarning, match="1 corrupted or truncated entry"):
        complete(resumed, PROMPTS, SETTINGS, tmp_path)
    assert resumed.prompts_seen == 4
    reread = CompletionCache(tmp_path, fingerprint())
    assert reread.discarded_lines == 0
    assert len(reread) == 6


def test_an_appended_line_after_a_torn_tail_starts_on_its_own_line(tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path, "fp")
    path = tmp_path / "fp.jsonl"
    path.write_bytes(b'{"k": "torn')  # another run, killed mid-write after we opened
    cache.put_many({"a": "1"})
    assert path.read_bytes().startswith(b'{"k": "torn\n{"k": "a"')
    with pytest.warns(ProbeCacheWarning):
        assert CompletionCache(tmp_path, "fp").get("a") == "1"


def test_an_unwritable_cache_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    cache = CompletionCache(blocker / "cache", "fp")
    with pytest.raises(CacheError, match=r"cannot write the completion cache .*pass no_cache"):
        cache.put_many({"a": "1"})


WRITER = textwrap.dedent("""\
    import sys
    from pathlib import Path
    from probe.engine.cache import CompletionCache
    root, tag, chunks = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    big = "x" * 150_000  # far over the size of one pipe or page write
    for i in range(chunks):
        CompletionCache(root, "shared").put_many(
            {f"{tag}-{i}-{j}": f"{tag}{i}{j}{big}" for j in range(3)})
    """)


def test_two_processes_appending_at_once_lose_and_tear_nothing(tmp_path: Path) -> None:
    (tmp_path / "shared.jsonl").write_bytes(b'{"k": "torn by an earlier kill\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), tag, "40"], env=env,
                              stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    # Whichever writer opened the file first repaired it, and said so; once.
    assert "".join(errors).count("1 corrupted or truncated entry discarded") == 1
    cache = CompletionCache(tmp_path, "shared")
    assert cache.discarded_lines == 0
    assert len(cache) == 2 * 40 * 3
    assert cache.get("b-39-2") == "b392" + "x" * 150_000


# --- whole runs in real processes ---------------------------------------------------------

SUITE = """\
version: 1
name: faults
behavior: {description: names the capital}
detector: {type: pattern, any: [Paris]}
operators: [{name: casing, count: 3}, {name: punctuation, count: 3}, {name: typos, count: 3}]
policy: {on_inconclusive: pass}
probes:
"""


def layout(tmp_path: Path, delay: float) -> Path:
    (tmp_path / "suites").mkdir()
    probes = "".join(f"  - id: p{i}\n    prompt: What is the capital of France, question {i}?\n"
                     for i in range(8))
    (tmp_path / "suites" / "faults.yaml").write_text(SUITE + probes, encoding="utf-8")
    for name, reply in (("base", "Paris."), ("cand", "I cannot say.")):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\ndefault: '{reply}'\ndelay: {delay}\ntrace: trace.jsonl\n",
            encoding="utf-8")
    return tmp_path


def probe_run(cwd: Path, cache: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "probe.cli", "run", "suites", "--base", "scripted:base.yaml",
         "--candidate", "scripted:cand.yaml", "--cache-dir", cache], cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def traced(cwd: Path) -> list[dict[str, object]]:
    path = cwd / "trace.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    path.unlink(missing_ok=True)
    return rows


Entry = tuple[str, str]  # (model fingerprint, request key)


def durable_entries(cache_dir: Path) -> set[Entry]:
    entries: set[Entry] = set()
    for file in cache_dir.glob("*.jsonl"):
        for line in file.read_bytes().splitlines():
            with contextlib.suppress(ValueError):  # the line being written at the kill
                entries.add((file.stem, json.loads(line)["k"]))
    return entries


def entry_of(cwd: Path, row: dict[str, object]) -> Entry:
    """The cache entry a traced prompt was computed for."""
    model = load_script(cwd / f"{row['model']}.yaml").info.fingerprint
    prompt = Prompt(str(row["text"]), str(row["prefill"]), bool(row["chat"]))
    return model, prompt_key(GenerationSettings(48), prompt)


def test_a_run_killed_with_sigkill_resumes_and_recomputes_nothing_finished(
        tmp_path: Path) -> None:
    cwd = layout(tmp_path, delay=0.02)
    completions = cwd / "c" / "completions"
    run = probe_run(cwd, "c")
    deadline = time.monotonic() + 60
    # Kill once at least three chunks (of 32) are durable, while work remains.
    while len(durable_entries(completions)) < 96 and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=30)
    assert run.returncode == -signal.SIGKILL
    before = {entry_of(cwd, r) for r in traced(cwd)}
    durable = durable_entries(completions)
    assert 96 <= len(durable) < 160  # killed part-way (8 probes x 10 variants x 2 models)
    assert durable <= before

    resumed = probe_run(cwd, "c")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "Traceback" not in err
    recomputed = [entry_of(cwd, r) for r in traced(cwd)]
    # Exactly what was not durable at the kill was computed, each once.
    assert len(recomputed) == len(set(recomputed)) == 160 - len(durable)
    assert not set(recomputed) & durable
    # And the resumed result is the result of an uninterrupted run.
    fresh = probe_run(cwd, "fresh")
    fresh_out, _ = fresh.communicate(timeout=120)
    assert fresh.returncode == 0
    assert out == fresh_out.replace("fresh/completions", "c/completions")
    assert len(traced(cwd)) == 160


def test_two_runs_sharing_a_cache_at_once_do_not_corrupt_it(tmp_path: Path) -> None:
    cwd = layout(tmp_path, delay=0.005)
    runs = [probe_run(cwd, "shared") for _ in range(2)]
    results = [r.communicate(timeout=120) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [e for _, e in results]
    assert results[0][0] == results[1][0]
    assert all("warning" not in err and "Traceback" not in err for _, err in results)
    completions = cwd / "shared" / "completions"
    for file in completions.glob("*.jsonl"):
        assert CompletionCache(completions, file.stem).discarded_lines == 0
    traced(cwd)
    third = probe_run(cwd, "shared")
    out, err = third.communicate(timeout=120)
    assert third.returncode == 0, err
    assert out == results[0][0], err
    assert traced(cwd) == []  # everything was in the shared cache
