"""Collecting a large suite stays cheap: 1,000 probes, and torch is never imported."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import models

PROBES = 1000


def _big_suite() -> str:
    lines = ["version: 1", "name: many", "behavior:", "  description: names a capital",
             "detector: {type: pattern, any: [Paris]}",
             "operators: [{name: casing, count: 3}, {name: typos, count: 3}, cloze, prefill]",
             "probes:"]
    for k in range(PROBES):
        lines += [f"  - id: p{k}", f"    prompt: What is the capital of country number {k}?",
                  "    suppressed: [The capital is Paris.]",
                  "    preferred: [I'm sorry, but I can't help with that.]"]
    return "\n".join(lines) + "\n"


def test_collecting_1000_probes_never_imports_torch(project: pytest.Pytester) -> None:
    (project.path / "suites" / "many.yaml").write_text(_big_suite(), encoding="utf-8")
    project.makeconftest(
        "import sys\n"
        "def pytest_collection_finish(session):\n"
        "    print('TORCH_IMPORTED=' + str('torch' in sys.modules))\n"
        "    print('TRANSFORMERS_IMPORTED=' + str('transformers' in sys.modules))\n")
    result = project.runpytest_subprocess("suites/many.yaml", "--collect-only", "-q",
                                          *models())
    result.stdout.fnmatch_lines(["TORCH_IMPORTED=False", "TRANSFORMERS_IMPORTED=False",
                                 f"{PROBES + 1} tests collected*"])
