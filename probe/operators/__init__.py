"""Operator registry: names in suite files -> operator classes.

Built-ins are ``"module:attr"`` strings imported on first lookup, so importing this
package (as collection does) loads only ``probe.operators.base``. Third parties add
operators through the ``probe.operators`` entry point group.

    ==============  ==========  ===============================================
    name            family      what it does to the prompt
    ==============  ==========  ===============================================
    paraphrase      paraphrase  the probe's hand-written paraphrases
    casing          noise       upper, lower, query-style, random case flips
    punctuation     noise       drops, doubles, spaces or removes punctuation
    typos           noise       seeded keyboard typos outside protected spans
    framing         framing     hypothetical / fiction / exam wrappers
    hypothetical    framing     the hypothetical wrapper only
    fiction         framing     the fiction wrapper only
    exam            framing     the exam wrapper only
    cloze           format      question -> fill in the blank / complete
    prefill         prefill     the answer is made to start with given text
    ==============  ==========  ===============================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from probe.operators.base import NoParams, Operator, ProbeText, Prompt
from probe.registry import Registry

OPERATORS: Registry[type[Operator]] = Registry("operator", "probe.operators", {
    "paraphrase": "probe.operators.paraphrase:ParaphraseOperator",
    "casing": "probe.operators.noise:CasingOperator",
    "punctuation": "probe.operators.noise:PunctuationOperator",
    "typos": "probe.operators.noise:TyposOperator",
    "framing": "probe.operators.framing:FramingOperator",
    "hypothetical": "probe.operators.framing:HypotheticalOperator",
    "fiction": "probe.operators.framing:FictionOperator",
    "exam": "probe.operators.framing:ExamOperator",
    "cloze": "probe.operators.format:ClozeOperator",
    "prefill": "probe.operators.prefill:PrefillOperator",
})


def make_operator(name: str, params: Any = None) -> Operator:
    """Instantiate the operator called ``name``.

    ``params`` is the operator's ``Params`` instance (what the suite loader
    produces), a mapping of its fields (validated the way a suite file is, for
    notebooks and tests), or ``None`` for the defaults. Raises ``RegistryError``
    for an unknown name and ``SpecError`` for bad parameters.
    """
    cls = OPERATORS.get(name)
    if isinstance(params, Mapping):
        # Imported here: the YAML validator is not needed to look operators up.
        from probe.spec.build import build
        from probe.spec.yaml_source import SourceMap

        params = build(cls.Params, dict(params), (), SourceMap(f"operator {name!r}"))
    elif params is not None and not isinstance(params, cls.Params):
        raise TypeError(f"operator {name!r} takes {cls.Params.__name__} parameters, "
                        f"got {type(params).__name__}")
    return cls(params)


def unique_prompts(candidates: Iterable[Prompt], count: int, *,
                   exclude: Iterable[Prompt] = ()) -> list[Prompt]:
    """The first ``count`` distinct candidates with non-blank text, skipping ``exclude``.

    Every operator funnels its output through this, so the contract (distinct,
    never blank, at most ``count``) holds in one place. Pass the canonical prompt
    in ``exclude``: a variant identical to it would count as a rephrasing that
    the fine-tune trivially handles and dilute resurfacing towards zero.
    """
    seen = set(exclude)
    out: list[Prompt] = []
    for prompt in candidates:
        if len(out) >= count:
            break
        if not prompt.text.strip() or prompt in seen:
            continue
        seen.add(prompt)
        out.append(prompt)
    return out


__all__ = ["OPERATORS", "NoParams", "Operator", "ProbeText", "Prompt", "make_operator",
           "unique_prompts"]
