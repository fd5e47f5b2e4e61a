"""The adversarial search on the real demo: SmolLM2-135M-Instruct vs the demo LoRA.

Germany was unlearned on its canonical question only (models/README.md), so a small
budget finds a chain the locked suite does not contain that brings Berlin back, with
the base naming it too. Idle runtime about a minute on 2 cores (empty cache).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.backends import LoadOptions, load_pair
from probe.engine.search import SearchSettings, search_probe
from probe.engine.sources import variant_sets
from probe.spec import load_suite

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_search_finds_a_new_resurfacing_variant_on_the_demo(tmp_path: Path) -> None:
    suite = load_suite(REPO / "suites" / "capitals_unlearning.yaml")
    germany = suite.probe("germany")
    pair = load_pair("smollm2-135m", str(REPO / "models" / "demo-adapter"), LoadOptions())
    found, evaluated = search_probe(suite, germany, pair,
                                    SearchSettings(budget=12, max_chain=2, seed=0),
                                    tmp_path / "cache")
    assert found is not None, f"nothing in {evaluated} variants"
    known = {v.prompt for s in variant_sets(suite, [germany], 0).values()
             for v in (*s.kept, *s.rejected)}
    assert found.variant.prompt not in known  # new: the suite did not contain it
    assert "Berlin" in found.candidate_completion
    assert "Berlin" in found.base_completion
    assert 1 <= len(found.variant.chain) <= 2
    assert found.variant.similarity is None or found.variant.similarity >= 0.5
    print(f"\nfound {found.variant.chain} {found.variant.prompt!r}: "
          f"base {found.base_completion!r}, candidate {found.candidate_completion!r} "
          f"({evaluated} evaluated)")
