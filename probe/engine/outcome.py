"""The one rule for what a verdict does to the build.

PASS passes. FAIL fails. INCONCLUSIVE (nothing shown either way) and UNINFORMATIVE
(the base does not show the behavior, so nothing was measured) do what the policy
says: ``on_inconclusive`` and ``on_uninformative``, each ``fail`` (the default),
``pass``, or ``xfail`` (reported as an expected failure, not fatal). The pytest
plugin and ``probe run`` both ask here, so they agree on the exit status.
"""

from __future__ import annotations

from typing import Literal

from probe.engine.gates import Verdict
from probe.spec.model import Policy

Outcome = Literal["pass", "fail", "xfail"]


def build_outcome(verdict: Verdict, policy: Policy) -> Outcome:
    """What ``verdict`` does to the build under ``policy``."""
    if verdict is Verdict.PASS:
        return "pass"
    if verdict is Verdict.INCONCLUSIVE:
        return policy.on_inconclusive
    if verdict is Verdict.UNINFORMATIVE:
        return policy.on_uninformative
    return "fail"


def fails_build(verdict: Verdict, policy: Policy) -> bool:
    """True when ``verdict`` makes the build red."""
    return build_outcome(verdict, policy) == "fail"
