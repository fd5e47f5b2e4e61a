"""Engines: what turns model references into backends, found by name.

An engine is registered under a name (``hf``, ``vllm``, ``openai``, ``scripted``; a
third party adds one through the entry point group ``probe.backends``, whose value
is an ``Engine`` instance) and chosen by the ``engine`` option. ``auto`` picks
``scripted`` for ``scripted:FILE.yaml`` references and ``hf`` for anything else, so a
reference keeps its meaning whatever the engine: ``smollm2-135m``, a directory, a hub
id and a peft adapter load with hf and vllm alike; with openai they are model names
on the server.

The registry imports no engine's code until one is used, so the pytest plugin can
check the option during collection without importing torch or vLLM.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from probe.backends.base import Backend, LoadOptions, ModelPair
from probe.errors import UsageError
from probe.options import opt
from probe.registry import Registry

# The one place the scripted test double's reference prefix is parsed.
SCRIPTED_PREFIX = "scripted:"


class Engine(ABC):
    """One way of running models: loads a base and candidate pair, or one model."""

    # The engine's name in the registry and in messages.
    name: str = ""

    def check_ref(self, ref: str, option: str, options: LoadOptions) -> None:
        """Cheap checks of one reference before any heavy work (a local path must exist);
        ``UsageError`` naming ``option`` otherwise. The default accepts anything."""
        return None

    def check_pair(self, base: str, candidate: str, options: LoadOptions) -> None:
        """Cheap checks of both references (each one, then how they fit together)."""
        self.check_ref(base, opt("base"), options)
        self.check_ref(candidate, opt("candidate"), options)

    @abstractmethod
    def load_pair(self, base: str, candidate: str, options: LoadOptions) -> ModelPair:
        """The base and the candidate, loaded."""

    @abstractmethod
    def load_backend(self, ref: str, options: LoadOptions) -> Backend:
        """One model on its own (a model that writes variants, a judge)."""


ENGINES: Registry[Engine] = Registry("engine", "probe.backends", {
    "hf": "probe.backends.hf.engine:ENGINE",
    "openai": "probe.backends.openai:ENGINE",
    "scripted": "probe.backends.scripted:ENGINE",
    "vllm": "probe.backends.vllm:ENGINE",
})


def is_scripted(ref: str) -> bool:
    """Whether ``ref`` names a scripted test-double file."""
    return ref.startswith(SCRIPTED_PREFIX)


def scripted_path(ref: str) -> str:
    """The file a ``scripted:FILE`` reference names (``ref`` itself otherwise)."""
    return ref.removeprefix(SCRIPTED_PREFIX)


def engine_name(options: LoadOptions, *refs: str) -> str:
    """The engine ``options.engine`` names, ``auto`` resolved by ``refs``; ``UsageError``
    when the references and the engine do not go together."""
    scripted = [r for r in refs if is_scripted(r)]
    if options.engine == "auto":
        if scripted and len(scripted) != len(refs):
            raise UsageError(f"{opt('base')} and {opt('candidate')} must both be scripted: "
                             "models or both real models")
        return "scripted" if scripted else "hf"
    if options.engine == "scripted" and len(scripted) != len(refs):
        raise UsageError(f"{opt('engine')} scripted needs scripted:FILE.yaml for every model")
    if options.engine != "scripted" and scripted:
        raise UsageError(f"{opt('engine')} {options.engine} runs real models, not "
                         f"{scripted[0]!r}")
    return options.engine


def engine_for(options: LoadOptions, *refs: str) -> Engine:
    """The engine that loads ``refs`` under ``options``."""
    return ENGINES.get(engine_name(options, *refs))


__all__ = ["ENGINES", "SCRIPTED_PREFIX", "Engine", "engine_for", "engine_name", "is_scripted",
           "scripted_path"]
