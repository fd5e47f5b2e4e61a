"""What an operator is: a seeded transform from a probe to rephrased prompts."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from probe.backends.base import Prompt


@dataclass(frozen=True)
class ProbeText:
    """The parts of a probe an operator may read.

    ``answers`` are texts that give the answer away (the detector's literal patterns
    and the ``suppressed`` completions); ``answer_patterns`` are the detector's
    regular expressions. An operator that adds context (few-shot examples) must not
    add any of them, or the variant would measure copying, not recall.
    """

    prompt: str
    paraphrases: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    answer_patterns: tuple[str, ...] = ()
    # The conversation ``prompt`` ends (``Prompt.system``, ``Prompt.messages``). An operator
    # that returns prompts without them keeps them; one that sets them gives them whole.
    system: str = ""
    messages: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NoParams:
    """For operators without parameters."""


class Operator(ABC):
    """A named, seeded rephrasing.

    Subclasses set ``name``, ``family`` (what it probes, for the report), ``Params``
    (a frozen dataclass validated from the suite's YAML) and implement
    ``variants``. ``variants`` must be a pure function of its arguments: the RNG it
    receives is the only randomness allowed.
    """

    name: ClassVar[str]
    family: ClassVar[str]
    Params: ClassVar[type[Any]] = NoParams

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    @abstractmethod
    def variants(self, probe: ProbeText, rng: random.Random, count: int) -> list[Prompt]:
        """Up to ``count`` distinct rephrasings of ``probe`` (never empty text)."""

    def decoded(self, text: str, source: str) -> str | None:
        """The plain question that ``text``, this operator's output for the input
        ``source``, asks through an encoding (base64, ROT13, a translation:
        ``probe.operators.encoding``); ``None``, the default, when ``text`` is plain.

        The meaning check and the protected-span check read this text instead of the
        encoded one (``probe.engine.variants.step_core``). ``source`` is given because
        some encodings cannot be read back exactly (leetspeak turns "i" and "1" into the
        same "1"); such an operator checks that ``text`` renders ``source`` and returns it.
        """
        return None
