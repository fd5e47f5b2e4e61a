"""Progress bars: counts and rate per model and kind of work, moved per batch of model
work (not per chunk of saved results); none under pytest -q."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

from hf_fixtures import CPU

from probe.backends.base import GenerationSettings, ModelPair
from probe.backends.hf import load_backend
from probe.backends.hf.backoff import Backoff
from probe.backends.scripted import Rule, Script, ScriptedBackend
from probe.engine.runner import complete, run_suite
from probe.operators.base import Prompt
from probe.report.progress import TqdmProgress
from probe.spec import parse_suite

pytest_plugins = ["hf_fixtures"]


class Advances:
    """A progress sink that records every ``(label, done, total)`` it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, label: str, done: int, total: int) -> None:
        self.calls.append((label, done, total))

    def done(self, label: str) -> list[int]:
        return [d for name, d, _ in self.calls if name == label]


class Batched(ScriptedBackend):
    """A scripted model that computes in batches of 4, telling ``on_batch`` after each,
    as the transformers backend does."""

    @property
    def batch_size(self) -> int:
        return 4

    def generate(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[str]:
        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            out += super().generate(prompts[start:start + self.batch_size], settings)
            if self.on_batch is not None:
                self.on_batch(len(out), len(prompts))
        return out


def _prompts(n: int) -> list[Prompt]:
    return [Prompt(f"What is the capital of country {i}?") for i in range(n)]


def test_bars_count_each_models_work(valid_suite_text: str) -> None:
    suite = parse_suite(valid_suite_text)
    script = Script("m", "no idea", (Rule("France", "Paris."),))
    out = io.StringIO()
    progress = TqdmProgress(enabled=True, file=out)
    runs = run_suite(suite, suite.probes, ModelPair(ScriptedBackend(script),
                                                    ScriptedBackend(script)), progress=progress)
    rows = sum(len(r.rows) for r in runs.values())
    text = out.getvalue()
    for label in ("probe base generate", "probe candidate generate"):
        assert label in text
    assert f"{rows}/{rows}" in text  # the count, finished
    assert "req/s" in text  # the rate
    assert "100%" in text


def test_disabled_bars_write_nothing() -> None:
    out = io.StringIO()
    progress = TqdmProgress(enabled=False, file=out)
    progress("base generate", 0, 10)
    progress("base generate", 10, 10)
    assert out.getvalue() == ""


def test_the_bar_moves_after_each_batch_not_each_chunk() -> None:
    sink = Advances()
    complete(Batched(Script("m", "no idea")), _prompts(10), GenerationSettings(8), None,
             progress=sink, label="base generate")
    # Batches of 4: 4, 8, 10 (one 32-prompt chunk used to move it once, 0 -> 10).
    assert sink.done("base generate") == [0, 4, 8, 10]
    assert {total for _, _, total in sink.calls} == {10}


def test_a_chunk_of_several_batches_moves_the_bar_per_batch_and_never_back() -> None:
    sink = Advances()
    complete(Batched(Script("m", "no idea")), _prompts(70), GenerationSettings(8), None,
             progress=sink, label="base generate")
    done = sink.done("base generate")
    assert done == sorted(set(done))  # each count once, only forwards
    assert done == [0, *range(4, 33, 4), *range(36, 65, 4), 68, 70]


def test_backoff_tells_each_batch_it_computed() -> None:
    told: list[tuple[int, int]] = []
    out = list(Backoff(2, "m").run([[1, 2], [3, 4], [5]], lambda b: [x * 10 for x in b],
                                   "generation", lambda done, rows: told.append((done, rows))))
    assert [r for _, r in out] == [[10, 20], [30, 40], [50]]
    assert told == [(2, 5), (4, 5), (5, 5)]


def test_the_transformers_backend_moves_the_bar_per_batch(tiny: dict[str, Path]) -> None:
    backend = load_backend(str(tiny["model"]), dataclasses.replace(CPU, batch_size=2))
    sink = Advances()
    complete(backend, _prompts(5), GenerationSettings(2), None, progress=sink,
             label="base generate")
    assert sink.done("base generate") == [0, 2, 4, 5]
    assert backend.on_batch is None  # the runner's hook does not outlive the call
