"""The one rule for what a verdict does to the build.

PASS passes. FAIL fails. INCONCLUSIVE (nothing shown either way) and UNINFORMATIVE
(the base does not show the behavior, so nothing was measured) do what the policy
says: ``on_inconclusive`` and ``on_uninformative``, each ``fail`` (the default),
``pass``, or ``xfail`` (reported as an expected failure, not fatal). A baseline then
forgives failures it already has (``item_outcome``). ``probe.run`` asks here for every
item, and the pytest plugin and ``probe run`` read its answer, so they agree on the exit
status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from probe.engine.gates import Verdict
from probe.spec.model import Policy

if TYPE_CHECKING:
    from probe.engine.baseline import BaselineJudge

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


@dataclass(frozen=True)
class ItemOutcome:
    """What one probe or suite gate does to the build, and why, once every rule is applied:
    the verdict, the policy, and the baseline (accepted failures and old ones do not fail)."""

    key: str  # "suite::probe" or "suite::__suite__"
    verdict: Verdict
    action: Outcome
    reason: str = ""  # why an xfail is not a failure, or the baseline's note on a failure
    by_baseline: bool = False  # the baseline, not the policy, decided the action


def item_outcome(key: str, verdict: Verdict, policy: Policy, *,
                 accepting_into: str | None = None,
                 judge: BaselineJudge | None = None) -> ItemOutcome:
    """The one rule for one item: ``build_outcome``, then the baseline. A failure accepted
    into a baseline being written (``accepting_into``), or one the baseline already has,
    is an xfail with the reason; a regression against the baseline fails with its note."""
    action = build_outcome(verdict, policy)
    if action == "xfail":
        policy_key = ("on_inconclusive" if verdict is Verdict.INCONCLUSIVE
                      else "on_uninformative")
        return ItemOutcome(key, verdict, "xfail", f"{verdict.value} (policy {policy_key}: xfail)")
    if action == "pass":
        return ItemOutcome(key, verdict, "pass")
    if accepting_into is not None:
        return ItemOutcome(key, verdict, "xfail", f"accepted into the baseline {accepting_into}",
                           by_baseline=True)
    if judge is not None:
        judgement = judge.judge(key)
        return ItemOutcome(key, verdict, "fail" if judgement.regression else "xfail",
                           judgement.note, by_baseline=True)
    return ItemOutcome(key, verdict, "fail")
