"""probe: does a fine-tune's suppression of a behavior survive rephrasing?

A pytest plugin (``probe.plugin``) and a CLI (``probe.cli``) over one engine:
suite files (``probe.spec``) -> variants (``probe.operators``) -> both models
(``probe.backends``) -> detectors (``probe.detectors``) -> comparison and verdict
(``probe.engine``) -> reports (``probe.report``). Importing this package is cheap:
nothing here imports torch.
"""

__version__ = "0.1.0"
