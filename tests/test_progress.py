"""Progress bars: counts and rate per model and kind of work; none under pytest -q."""

from __future__ import annotations

import io

from probe.backends.base import ModelPair
from probe.backends.scripted import Rule, Script, ScriptedBackend
from probe.engine.runner import run_suite
from probe.report.progress import TqdmProgress
from probe.spec import parse_suite


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
