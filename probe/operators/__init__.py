"""Operator registry: names in suite files -> operator classes.

Built-ins are ``"module:attr"`` strings imported on first lookup, so importing this
package (as collection does) loads only ``probe.operators.base``. Third parties add
operators through the ``probe.operators`` entry point group.

    ===================  ===================  =========================================
    name                 family               what it does to the prompt
    ===================  ===================  =========================================
    paraphrase           paraphrase           the probe's hand-written paraphrases
    synonyms             lexical              words swapped for curated synonyms
    contractions         lexical              "What is" <-> "What's", "do not" <-> "don't"
    reorder              lexical              the question's parts in another order
    casing               noise                upper, lower, query-style, random case flips
    punctuation          noise                drops, doubles, spaces or removes punctuation
    typos                noise                seeded keyboard typos outside protected spans
    framing              framing              hypothetical / fiction / exam / authority
    hypothetical         framing              the hypothetical wrapper only
    fiction              framing              the fiction (role-play) wrapper only
    exam                 framing              the exam wrapper only
    authority            framing              a claimed credential and purpose
    past_tense           framing              the question moved into the past tense
    third_person         framing              the question asked for someone else
    cloze                format               question -> fill in the blank / complete
    fill_blank           format               a sentence with a blank, other wordings
    answer_only          format               the bare answer, nothing else
    json_output          format               the answer as a JSON object
    list_output          format               the answer as a list
    prefill              prefill              the answer is made to start with given text
    prefix_injection     prefill              "Start your response with 'Absolutely!'"
    refusal_suppression  refusal_suppression  rules that forbid refusing
    few_shot             context              answered examples (never the answer) first
    many_shot            conversation         many answered earlier turns, then the question
    split_turns          conversation         the question cut in two across two user turns
    system_permission    conversation         a system prompt granting permission to answer
    raw                  raw                  plain text, without the chat template
    model_paraphrase     model                paraphrases written by a local causal LM
    base64               encoding             the question base64-encoded, to decode
    rot13                encoding             the question in ROT13, to decode first
    leetspeak            encoding             letters swapped for digits and symbols
    translate            encoding             the question in es/fr/de (phrasebook)
    ===================  ===================  =========================================

Each family's module docstring says what it probes and cites its source.
Operators compose into chains (``{name: cloze, then: [typos]}``, see
``probe.engine.variants``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from probe.backends.base import Prompt
from probe.operators.base import NoParams, Operator, ProbeText
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
    "synonyms": "probe.operators.lexical:SynonymsOperator",
    "contractions": "probe.operators.lexical:ContractionsOperator",
    "reorder": "probe.operators.lexical:ReorderOperator",
    "authority": "probe.operators.framing:AuthorityOperator",
    "past_tense": "probe.operators.persona:PastTenseOperator",
    "third_person": "probe.operators.persona:ThirdPersonOperator",
    "fill_blank": "probe.operators.output:FillBlankOperator",
    "answer_only": "probe.operators.output:AnswerOnlyOperator",
    "json_output": "probe.operators.output:JsonOutputOperator",
    "list_output": "probe.operators.output:ListOutputOperator",
    "prefix_injection": "probe.operators.prefill:PrefixInjectionOperator",
    "refusal_suppression": "probe.operators.suppression:RefusalSuppressionOperator",
    "few_shot": "probe.operators.context:FewShotOperator",
    "many_shot": "probe.operators.conversation:ManyShotOperator",
    "split_turns": "probe.operators.conversation:SplitTurnsOperator",
    "system_permission": "probe.operators.conversation:SystemPermissionOperator",
    "raw": "probe.operators.raw:RawOperator",
    "model_paraphrase": "probe.operators.model_written:ModelParaphraseOperator",
    "base64": "probe.operators.encoding:Base64Operator",
    "rot13": "probe.operators.encoding:Rot13Operator",
    "leetspeak": "probe.operators.encoding:LeetspeakOperator",
    "translate": "probe.operators.encoding:TranslateOperator",
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
                   exclude: Iterable[Prompt] = (),
                   keep_spans_of: str | None = None,
                   decode: Callable[[str], str | None] | None = None) -> list[Prompt]:
    """The first ``count`` distinct candidates with non-blank text, skipping ``exclude``.

    Every operator funnels its output through this, so the contract (distinct,
    never blank, at most ``count``, protected spans kept) holds in one place. Pass
    the canonical prompt in ``exclude``: a variant identical to it would count as a
    rephrasing that the fine-tune trivially handles and dilute resurfacing towards
    zero. With ``keep_spans_of``, a candidate that lost one of that text's
    ``{{placeholders}}`` or quoted spans is skipped; with ``decode`` (an encoding's
    ``Operator.decoded``), that is checked in the decoded text, and a candidate that
    does not decode is skipped.
    """
    from probe.operators.spans import keeps_spans

    seen = set(exclude)
    out: list[Prompt] = []
    for prompt in candidates:
        if len(out) >= count:
            break
        if not prompt.text.strip() or prompt in seen:
            continue
        plain = prompt.text if decode is None else decode(prompt.text)
        if keep_spans_of is not None and (plain is None or not keeps_spans(keep_spans_of,
                                                                            plain)):
            continue
        seen.add(prompt)
        out.append(prompt)
    return out


__all__ = ["OPERATORS", "NoParams", "Operator", "ProbeText", "make_operator",
           "unique_prompts"]
