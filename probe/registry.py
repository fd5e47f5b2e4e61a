"""Name -> plugin registries (operators, detectors, backends).

Built-ins are listed as ``"module:attr"`` strings and imported on first use, so
looking a name up never drags in torch. Third parties add theirs through an
entry point group (``probe.operators``, ``probe.detectors``, ``probe.backends``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from probe.errors import RegistryError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """A lazily imported mapping from plugin name to plugin object."""

    def __init__(self, kind: str, group: str, builtins: dict[str, str]) -> None:
        self.kind = kind
        self.group = group
        self._targets: dict[str, str] = dict(builtins)
        self._loaded: dict[str, T] = {}
        self._scanned = False

    def register(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name`` (for tests and notebooks)."""
        self._loaded[name] = obj

    def _scan_entry_points(self) -> None:
        if self._scanned:
            return
        self._scanned = True
        for ep in entry_points(group=self.group):
            self._targets.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._scan_entry_points()
        return sorted(set(self._targets) | set(self._loaded))

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """The plugin called ``name``; ``RegistryError`` with a did-you-mean otherwise."""
        if name in self._loaded:
            return self._loaded[name]
        self._scan_entry_points()
        target = self._targets.get(name)
        if target is None:
            known = ", ".join(self.names())
            raise RegistryError(f"unknown {self.kind} {name!r}.{did_you_mean(name, self.names())}"
                                f" Known {self.kind}s: {known}")
        module_name, _, attr = target.partition(":")
        obj: T = getattr(importlib.import_module(module_name), attr)
        self._loaded[name] = obj
        return obj
