"""Progress bars for model work (tqdm): one bar per model and kind of work, with counts
and rate, fed by the runner's ``ProgressFn`` calls after every batch the backend computes
(``--probe-batch-size`` rows; ``Backend.on_batch``), not only after every saved chunk.

``enabled=None`` shows bars only when the stream is a terminal (tqdm's own rule), so
CI logs stay clean; the pytest plugin passes ``False`` under ``-q``. Under pytest the
bars are drawn with output capturing suspended (``suspend``), else pytest would
swallow them into the first probe's captured output.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TextIO


class TqdmProgress:
    """A ``ProgressFn``: ``progress(label, done, total)`` moves the bar for ``label``."""

    def __init__(self, *, enabled: bool | None = None, file: TextIO | None = None,
                 suspend: Callable[[], AbstractContextManager[Any]] | None = None) -> None:
        self.enabled = enabled
        self.file = file
        self.suspend = suspend or nullcontext
        self._bars: dict[str, Any] = {}

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.enabled is False:
            return
        import sys

        from tqdm import tqdm

        with self.suspend():
            bar = self._bars.get(label)
            if bar is None or bar.total != total or done < bar.n:
                if bar is not None:
                    bar.close()
                # disable=None: tqdm draws only on a terminal.
                bar = tqdm(total=total, desc=f"probe {label}", unit="req", leave=True,
                           file=self.file or sys.stderr, dynamic_ncols=True,
                           disable=None if self.enabled is None else not self.enabled)
                self._bars[label] = bar
            bar.update(done - bar.n)
            if done >= total:
                bar.close()
                del self._bars[label]

    def close(self) -> None:
        """Close any bar left open (a run that stopped part-way)."""
        with self.suspend():
            for bar in self._bars.values():
                bar.close()
        self._bars.clear()
