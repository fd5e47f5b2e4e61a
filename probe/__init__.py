"""probe: does a fine-tune's suppression of a behavior survive rephrasing?

One entry point, ``probe.run`` (``probe.api``), with a pytest plugin (``probe.plugin``)
and a CLI (``probe.cli``) as thin callers of it, over one engine:
suite files (``probe.spec``) -> variants (``probe.operators``) -> both models
(``probe.backends``) -> detectors (``probe.detectors``) -> comparison and verdict
(``probe.engine``) -> reports (``probe.report``). Importing this package is cheap:
the API's names load on first use, and nothing here imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from probe.api import Run, load_suites, run
    from probe.engine.outcome import ItemOutcome
    from probe.options import RunOptions

# name -> the module that defines it; imported on first access (PEP 562), so that
# `import probe.registry` or the plugin's collection does not load the whole engine.
_EXPORTS = {"run": "probe.api", "Run": "probe.api", "load_suites": "probe.api",
            "RunOptions": "probe.options", "ItemOutcome": "probe.engine.outcome"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'probe' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["ItemOutcome", "Run", "RunOptions", "__version__", "load_suites", "run"]
