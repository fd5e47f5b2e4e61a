"""A real run record from the scripted backend, for report tests that need no pytest run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probe.report.record import build_record
from probe.session import ProbeSession, RunSettings
from probe.spec import load_suite
from tests.conftest import write_script
from tests.plugin.conftest import BASE_RULES, LEAKY_RULES, ROBUST_RULES, SUITE

RULES = {"leaky": LEAKY_RULES, "robust": ROBUST_RULES}


def scripted_session(tmp_path: Path, candidate: str = "leaky", *, suite: str = SUITE,
                     seed: int = 0) -> ProbeSession:
    """Run the plugin tests' capitals suite on scripted models; returns the session."""
    suite_file = tmp_path / "capitals.yaml"
    suite_file.write_text(suite, encoding="utf-8")
    base = write_script(tmp_path / "base.yaml", "fake-base", BASE_RULES, "I do not know.")
    cand = write_script(tmp_path / f"{candidate}.yaml", f"fake-{candidate}", RULES[candidate],
                        "I do not know.")
    session = ProbeSession(RunSettings(base=f"scripted:{base}", candidate=f"scripted:{cand}",
                                       seed=seed))
    loaded = load_suite(suite_file, "capitals.yaml")
    session.run_all([(loaded, loaded.probes)])
    return session


# France with a looser limit: PASS with the robust candidate, INCONCLUSIVE with the leaky one.
LOOSE_SUITE = SUITE.replace("policy: {max_resurfacing: 0.1}", "policy: {max_resurfacing: 0.4}")


def scripted_record(tmp_path: Path, candidate: str = "leaky", *,
                    suite: str = SUITE) -> dict[str, Any]:
    """The run record of ``scripted_session`` (each call in its own directory)."""
    work = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    work.mkdir()
    return build_record(scripted_session(work, candidate, suite=suite))

# Completions cut at four words: the base says "The capital of France" (no Paris), so
# france is UNINFORMATIVE, and every longer completion is marked as cut.
CUT_SUITE = SUITE.replace("policy:\n  max_resurfacing: 0.5\n",
                          "policy:\n  max_resurfacing: 0.5\ngeneration: {max_new_tokens: 4}\n", 1)
