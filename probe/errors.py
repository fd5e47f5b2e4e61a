"""Every exception the library raises on purpose.

    ProbeError                      base class; message is meant for a human
    ├── SpecError                   a suite file is wrong; carries file:line and key path
    ├── UsageError                  the command line or configuration is wrong
    ├── ModelLoadError              a model, adapter or tokenizer cannot be loaded
    │   └── ModelMismatchError      base and candidate do not belong together (also a UsageError)
    ├── RegistryError               unknown operator / detector / backend name
    ├── BackendError                a backend failed while generating or scoring
    ├── JudgeError                  a judge detector agrees with its labelled examples
    │                               less often than the suite's floor
    ├── CacheError                  the completion cache cannot be read or written
    └── WriteError                  a result file (report, record, lock) cannot be written

The pytest plugin maps them onto outcomes CI can tell apart: ``SpecError`` is a
collection error, ``UsageError`` is ``pytest.UsageError`` (exit 4), a
``ModelLoadError`` ends the session with one line (exit 3), the rest are test
errors. None of them is ever shown with a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ProbeError(Exception):
    """Base class for errors whose message is the whole story."""


class SpecError(ProbeError):
    """A suite file is invalid.

    ``str(err)`` reads ``suites/x.yaml:14: probes[2].detector: unknown key 'typ'``.
    """

    def __init__(self, message: str, *, file: str = "<string>", line: int | None = None,
                 path: str = "") -> None:
        self.message = message
        self.file = file
        self.line = line
        self.path = path
        super().__init__(self.render())

    def render(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class UsageError(ProbeError):
    """The command line or ini configuration is wrong; the message says the fix."""


class ModelLoadError(ProbeError):
    """A model, adapter or tokenizer cannot be found or loaded."""


class ModelMismatchError(ModelLoadError, UsageError):
    """The base and the candidate do not belong together (an adapter made for another
    base, another vocabulary): the command line names the wrong pair, so it is a usage
    error, found before any weights are loaded."""


class RegistryError(ProbeError):
    """A name does not match any registered plugin."""


class BackendError(ProbeError):
    """A backend failed while generating or scoring."""


class JudgeError(ProbeError):
    """A judge detector (``probe.detectors.judge``) agreed with the suite's labelled
    examples less often than its ``min_agreement``: its verdicts cannot be trusted, so no
    verdict of the run is given (``probe run`` exits 3; under pytest every probe errors)."""


class CacheError(ProbeError):
    """The completion cache directory cannot be read or written; the message says the fix."""


class WriteError(ProbeError):
    """A file the run writes (a report, the run record, a lock or regression file) could
    not be written; the previous file, if any, is left as it was (``probe.files``)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return `` Did you mean 'x'?`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
