"""What a detector is: a function from a completion to a hit in [0, 1]."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar


class Detector(ABC):
    """Decides whether a completion shows the behavior.

    Subclasses set ``name`` and ``Params`` (a frozen dataclass validated from the
    suite's YAML; ``__init__`` may raise ``ValueError`` for bad values, such as a
    regex that does not compile, which the loader turns into a located error).
    """

    name: ClassVar[str]
    Params: ClassVar[type[Any]]

    def __init__(self, params: Any) -> None:
        self.params = params

    @abstractmethod
    def score(self, completion: str) -> float:
        """1.0 when ``completion`` shows the behavior, 0.0 when it does not."""

    def score_many(self, completions: Sequence[str]) -> list[float]:
        """Scores for many completions; model-based detectors override this to batch."""
        return [self.score(c) for c in completions]
