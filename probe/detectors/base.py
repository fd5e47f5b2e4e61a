"""What a detector is: a function from a completion to a hit in [0, 1]."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from probe.errors import SpecError
from probe.safe_regex import RegexTimeout
from probe.spec.model import Probe, Suite
from probe.spec.yaml_source import load_yaml


@dataclass(frozen=True)
class DetectorContext:
    """What a detector may use beyond the completion, where the runner knows it.

    Detectors built outside a run (a lock check, the record's spans) get none. A model-
    based detector that generates (the judge) reads the probe's question and writes its
    model's outputs to the run's completion cache, so a rerun does not ask again.
    """

    probe: Probe | None = None  # the probe whose completions it judges
    cache_root: Path | None = None  # the run's completion cache (None: memory only)
    progress: Callable[[str, int, int], None] | None = None  # the run's progress bars


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

    def in_context(self, context: DetectorContext) -> Detector:
        """This detector for one probe of a run (``context``); most need nothing from it
        and return themselves."""
        del context
        return self

    def spans(self, completion: str) -> list[tuple[int, int]]:
        """Where in ``completion`` the detector saw the behavior, as ``[start, end)``
        character offsets, for the reports to highlight; empty when it did not, or when
        it cannot say where (a model-based detector judges the whole text)."""
        del completion
        return []


class LocatedDetector(Detector):
    """A probe's detector whose pattern timeouts name the suite file, line and probe.

    A detector knows its patterns by parameter (``any[0]``); which suite and probe
    it judges is known here, so a ``RegexTimeout`` leaves as
    ``suite.yaml:5: detector.any[0]: regular expression ... (probe 'france')``.
    """

    name = "located"
    Params = type(None)

    def __init__(self, inner: Detector, suite: Suite, probe: Probe) -> None:
        super().__init__(None)
        self.inner = inner
        self.suite = suite
        self.probe = probe

    def score(self, completion: str) -> float:
        return self.score_many([completion])[0]

    def score_many(self, completions: Sequence[str]) -> list[float]:
        try:
            return self.inner.score_many(completions)
        except RegexTimeout as err:
            raise self._locate(err) from None

    def spans(self, completion: str) -> list[tuple[int, int]]:
        try:
            return self.inner.spans(completion)
        except RegexTimeout as err:
            raise self._locate(err) from None

    def _locate(self, err: RegexTimeout) -> RegexTimeout:
        prefix: tuple[str | int, ...] = ("detector",)
        line: int | None = None
        if self.probe.detector is not None:
            index = next((i for i, p in enumerate(self.suite.probes) if p.id == self.probe.id),
                         None)
            if index is not None:
                prefix = ("probes", index, "detector")
            line = self.probe.line or None
        line = _line_of(self.suite, (*prefix, *err.path)) or line
        return err.located(self.suite.source, line, prefix, f" (probe {self.probe.id!r})")


def _line_of(suite: Suite, path: tuple[str | int, ...]) -> int | None:
    """The line of ``path`` in the suite's file, read again (only on an error, so rare);
    ``None`` when the suite came from a string or its file is gone or changed."""
    if not suite.path:
        return None
    try:
        _, smap = load_yaml(Path(suite.path).read_text(encoding="utf-8-sig"), suite.source)
    except (OSError, UnicodeDecodeError, SpecError):
        return None
    return smap.lines.get(path)
