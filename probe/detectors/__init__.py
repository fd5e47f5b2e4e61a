"""Detector registry: names in suite files -> detector classes."""

from __future__ import annotations

from collections.abc import Sequence

from probe.detectors.base import Detector, DetectorContext
from probe.registry import Registry
from probe.spec.model import DetectorSpec

DETECTORS: Registry[type[Detector]] = Registry("detector", "probe.detectors", {
    "pattern": "probe.detectors.pattern:PatternDetector",
    "refusal": "probe.detectors.refusal:RefusalDetector",
    "embedding": "probe.detectors.embedding:EmbeddingDetector",
    "classifier": "probe.detectors.classifier:ClassifierDetector",
    "judge": "probe.detectors.judge:JudgeDetector",
})


class _Inverted(Detector):
    """Hit when the wrapped detector misses (``invert: true``)."""

    name = "inverted"
    Params = type(None)

    def __init__(self, inner: Detector) -> None:
        super().__init__(None)
        self.inner = inner

    def score(self, completion: str) -> float:
        return 1.0 - self.inner.score(completion)

    def score_many(self, completions: Sequence[str]) -> list[float]:
        # Delegate so a model-based inner detector still batches.
        return [1.0 - s for s in self.inner.score_many(completions)]


def make_detector(spec: DetectorSpec, context: DetectorContext | None = None) -> Detector:
    """Instantiate the detector a validated ``DetectorSpec`` names, for ``context`` (the
    probe and the run's cache, where a run builds it)."""
    detector = DETECTORS.get(spec.type)(spec.params)
    if context is not None:
        detector = detector.in_context(context)
    return _Inverted(detector) if spec.invert else detector


__all__ = ["DETECTORS", "Detector", "DetectorContext", "make_detector"]
