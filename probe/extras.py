"""Optional extras: what a feature needs beyond the core install, checked before use.

The core install (suite files, ``probe check``, ``probe schema``, ``probe variants`` for
suites that need no model, the pytest plugin's collection) imports none of these. A
feature that needs an extra calls ``require`` before its first heavy import, so a missing
package is one line naming the extra to install (a ``UsageError``: exit 4 under both
front ends), never a traceback from deep inside an import.

``EXTRAS`` is the runtime half of ``[project.optional-dependencies]`` in pyproject.toml;
tests/test_packaging.py checks that each module here comes from a distribution that extra
declares.
"""

from __future__ import annotations

import importlib.util
import sys

from probe.errors import UsageError

DISTRIBUTION = "probe-resurface"

# extra -> the top-level modules it brings that probe (or transformers, for GGUF files)
# imports (accelerate: placing a model too large for one GPU, probe/backends/hf/options.py).
EXTRAS: dict[str, tuple[str, ...]] = {
    "hf": ("torch", "transformers", "peft", "safetensors", "gguf", "accelerate"),
    "report": ("matplotlib",),
}


class MissingExtraError(UsageError):
    """A feature needs an optional extra that is not installed; the message says which
    extra and the pip command that installs it."""


def _installed(module: str) -> bool:
    if module in sys.modules:
        return True
    try:
        # Locates the package without running it, so the check costs no import time.
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # an import hook that refuses it; a broken entry
        return False


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (``[]``: installed)."""
    return [module for module in EXTRAS[extra] if not _installed(module)]


def install_hint(extra: str) -> str:
    """The command that installs ``extra``, quoted for a POSIX shell."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def require(extra: str, feature: str) -> None:
    """Raise ``MissingExtraError`` unless every module of ``extra`` is installed.

    ``feature`` names what needs it, as the start of the sentence: ``require("hf", "the
    Hugging Face backend")`` -> ``the Hugging Face backend needs the hf extra (torch is
    not installed): pip install 'probe-resurface[hf]'``.
    """
    absent = missing_modules(extra)
    if absent:
        verb = "is" if len(absent) == 1 else "are"
        raise MissingExtraError(f"{feature} needs the {extra} extra ({', '.join(absent)} "
                                f"{verb} not installed): {install_hint(extra)}")
