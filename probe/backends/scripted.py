"""A scripted backend: canned replies chosen by regex, for fast tests without weights.

Shipped in the library (like httpx's ``MockTransport``) so users can test their
suites and CI wiring in milliseconds. A script is a YAML file, read safely::

    name: fake-base
    default: "I don't know."
    rules:
      - match: "capital of France"    # regex, searched in the prompt text
        reply: "The capital of France is Paris."

The first matching rule wins. ``match`` is searched in the user text followed by
the prefill, so a prefill can steer a rule too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from probe.backends.base import Backend, GenerationSettings, ModelInfo
from probe.errors import ModelLoadError, SpecError
from probe.operators.base import Prompt
from probe.spec.build import build
from probe.spec.yaml_source import load_yaml


@dataclass(frozen=True)
class Rule:
    """Reply ``reply`` when ``match`` (a regex, case-insensitive) is found."""

    match: str
    reply: str


@dataclass(frozen=True)
class Script:
    """A whole scripted model."""

    name: str = "scripted"
    default: str = ""
    rules: tuple[Rule, ...] = field(default=())


class ScriptedBackend(Backend):
    """Replies from a ``Script``; counts calls so tests can check batching and caching."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls = 0
        self.prompts_seen = 0
        try:
            self._rules = [(re.compile(r.match, re.IGNORECASE), r.reply) for r in script.rules]
        except re.error as err:
            raise ModelLoadError(f"scripted model {script.name!r}: bad regex: {err}") from None
        payload = json.dumps([script.name, script.default,
                              [[r.match, r.reply] for r in script.rules]])
        self._info = ModelInfo(script.name, hashlib.sha256(payload.encode()).hexdigest())

    @property
    def info(self) -> ModelInfo:
        return self._info

    def reply(self, prompt: Prompt) -> str:
        """The scripted reply for one prompt."""
        haystack = prompt.text + ("\n" + prompt.prefill if prompt.prefill else "")
        for pattern, reply in self._rules:
            if pattern.search(haystack):
                return reply
        return self.script.default

    def generate(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[str]:
        self.calls += 1
        self.prompts_seen += len(prompts)
        return [self.reply(p) for p in prompts]


def load_script(path: str | Path) -> ScriptedBackend:
    """A ``ScriptedBackend`` from a YAML script file."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"cannot read scripted model {file!r}: {err}") from None
    try:
        data, smap = load_yaml(text, file)
        script = build(Script, data, (), smap)
    except SpecError as err:
        raise ModelLoadError(f"scripted model: {err}") from None
    return ScriptedBackend(script)
