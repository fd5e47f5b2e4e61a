"""Expand a probe into its variants: the canonical prompt, then each operator chain's output.

An operator entry in a suite is a chain of one or more operators: ``cloze`` alone,
or ``{name: cloze, then: [typos]}`` (each fill-in-the-blank gets typos). The first
operator makes ``count`` variants; each later operator rewrites every one of them
once. Every variant records its chain as ``Step``s (operator, seed, what it was
asked for and which output it took, its parameters), enough to make it again
(``replay_chain``).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from probe.backends.base import Prompt
from probe.operators import OPERATORS, make_operator
from probe.operators.base import Operator, ProbeText
from probe.operators.spans import keeps_spans
from probe.seeds import derive_seed
from probe.spec.model import OperatorSpec, Probe, Suite

CANONICAL = "canonical"
MODEL_FAMILY = "model"  # operators whose output a model writes (``model_paraphrase``)


@dataclass(frozen=True)
class Step:
    """One operator of a chain, as applied: ``variants(input, Random(seed), count)[index]``."""

    operator: str
    seed: int
    count: int = 1
    index: int = 0
    params: str = "{}"  # the operator's parameters as canonical JSON


@dataclass(frozen=True)
class Variant:
    """One rephrasing of a probe, with everything needed to reproduce it.

    ``operator`` and ``family`` label the chain in reports (``cloze+typos``,
    ``format+noise``); ``steps`` is the chain itself. ``core`` is the text the
    meaning check compares with the canonical prompt: the output of the last step
    that rewrote the words (a step whose output contains its input verbatim, such
    as a frame or few-shot context, only adds context around it; an encoding's output
    counts as the text it decodes to, ``step_core``). ``similarity``
    is that check's cosine similarity, ``None`` when the suite has no meaning check;
    ``missing`` the canonical prompt's names and numbers the core lost (which
    rejects the variant; ``probe.engine.key_terms``).
    ``origin`` says where the variant came from: ``suite`` (generated now),
    ``lock`` (replayed from a lock file) or ``regression`` (a variant a search found).
    """

    probe_id: str
    index: int  # 0 is the canonical prompt
    operator: str
    family: str
    seed: int | None
    prompt: Prompt
    steps: tuple[Step, ...] = ()
    core: str = ""
    similarity: float | None = None
    origin: str = "suite"
    missing: tuple[str, ...] = ()

    @property
    def chain(self) -> tuple[str, ...]:
        """The operators applied, in order (empty for the canonical prompt)."""
        return tuple(s.operator for s in self.steps)


def of_operators(variant: Variant, operators: Sequence[str]) -> bool:
    """Whether ``variant`` is one of ``operators``' variants: a chain counts as its first
    operator, the canonical prompt is always one, and every variant is when ``operators``
    is empty (``variants:`` of a perturbation or of ``latent``)."""
    return (not operators or variant.index == 0
            or variant.operator.split("+", 1)[0] in operators)


def params_json(params: Any) -> str:
    """An operator's parameters as canonical JSON (what a ``Step`` records)."""
    data = (dataclasses.asdict(params)
            if dataclasses.is_dataclass(params) and not isinstance(params, type) else {})
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def probe_text(suite: Suite, probe: Probe) -> ProbeText:
    """What operators may read of ``probe``, answers included (for the few-shot filter)."""
    answers: list[str] = list(probe.suppressed)
    patterns: list[str] = []
    spec = suite.detector_for(probe)
    if spec is not None and spec.type == "pattern" and not spec.invert:
        params = spec.params
        if params.regex:
            patterns += [*params.any, *params.all]
        else:
            answers += [*params.any, *params.all]
    return ProbeText(probe.prompt, probe.paraphrases, tuple(answers), tuple(patterns),
                     suite.system_for(probe), conversation_turns(probe))


def conversation_turns(probe: Probe) -> tuple[tuple[str, str], ...]:
    """The probe's earlier turns as ``Prompt.messages`` holds them."""
    return tuple((m.role, m.content) for m in probe.messages)


def start_prompt(probe: ProbeText) -> Prompt:
    """The canonical prompt: the probe's question as the last turn of its conversation."""
    return Prompt(probe.prompt, system=probe.system, messages=probe.messages)


def one_line(text: str, prefill: str = "", system: str = "", turns: int = 0) -> str:
    """How reports show a prompt on one line: the user text, then what else was sent
    (the earlier turns' count, the system prompt's last paragraph, the prefill), so two
    variants that differ only there (``system_permission``, ``many_shot``) read apart."""
    out = f"[after {turns} turns] {text}" if turns else text
    if system:
        last = system.strip().split("\n\n")[-1]
        out += f" [system: {last[:60]}{'...' if len(last) > 60 else ''}]"
    return out + (f" [prefill: {prefill}]" if prefill else "")


def prompt_line(prompt: Prompt) -> str:
    """``one_line`` of ``prompt``."""
    return one_line(prompt.text, prompt.prefill, prompt.system, len(prompt.messages))


def conversation_json(prompt: Prompt) -> dict[str, Any]:
    """A prompt's system prompt and earlier turns as files store them (``{}``: none)."""
    if not prompt.is_conversation:
        return {}
    return {"system": prompt.system,
            "messages": [{"role": role, "content": content} for role, content in prompt.messages]}


def conversation_from_json(data: dict[str, Any]) -> dict[str, Any]:
    """``Prompt`` keyword arguments from ``conversation_json``'s fields in ``data``."""
    return {"system": str(data.get("system", "")),
            "messages": tuple((str(m["role"]), str(m["content"]))
                              for m in data.get("messages", ()))}



def chain_label(names: Sequence[str]) -> str:
    """How a chain is named in reports: its operators joined by ``+``."""
    return "+".join(names)


def family_label(names: Sequence[str]) -> str:
    """The families of a chain's operators, in order, each once, joined by ``+``."""
    return "+".join(dict.fromkeys(OPERATORS.get(n).family for n in names))


def _compose(before: Prompt, after: Prompt) -> Prompt:
    """``after`` (a rewrite of ``before``'s text) keeping what it did not set itself: the
    prefill, the system prompt and the earlier turns (an operator that sets one of them
    gives it whole, having read ``before``'s through ``ProbeText``)."""
    return Prompt(after.text, after.prefill or before.prefill, before.chat and after.chat,
                  after.system or before.system, after.messages or before.messages)


def _seen_by_next(probe: ProbeText, prompt: Prompt) -> ProbeText:
    """What a later step of a chain reads: the previous step's prompt and conversation."""
    return dataclasses.replace(probe, prompt=prompt.text, system=prompt.system,
                               messages=prompt.messages)


def variant_core(previous_text: str, previous_core: str, new_text: str) -> str:
    """A step's core: the previous core when the step only wrapped its input (the output
    contains it verbatim), else the new text (``Variant.core``)."""
    return previous_core if previous_text.strip() in new_text else new_text


def step_core(op: Operator, previous_text: str, previous_core: str, new_text: str) -> str:
    """The core after ``op`` rewrote ``previous_text`` into ``new_text``: an encoding's
    output is read as the plain text it decodes to (``Operator.decoded``), then as for any
    step (``variant_core``): ``base64`` of a framed question keeps the question inside."""
    plain = op.decoded(new_text, previous_text)
    return variant_core(previous_text, previous_core, new_text if plain is None else plain)


def apply_chain(links: Sequence[tuple[str, Any]], probe: ProbeText, seeds: Sequence[int],
                count: int) -> list[tuple[Prompt, tuple[Step, ...], str]]:
    """Run a chain of ``(operator name, params)``: ``(prompt, steps, core)`` per variant.

    ``seeds[k]`` seeds operator ``k``; a later operator's RNG for the i-th variant is
    derived from its seed and ``i``, so variants never share draws. A variant that a
    later operator cannot rewrite (it returns nothing) drops out of the chain.
    """
    operators: list[tuple[str, Operator, str]] = []
    for name, params in links:
        op = make_operator(name, params)
        operators.append((name, op, params_json(op.params)))
    (name0, op0, p0), rest = operators[0], operators[1:]
    start = start_prompt(probe)
    out: list[tuple[Prompt, tuple[Step, ...], str]] = [
        (_compose(start, prompt), (Step(name0, seeds[0], count, i, p0),),
         step_core(op0, probe.prompt, probe.prompt, prompt.text))
        for i, prompt in enumerate(op0.variants(probe, random.Random(seeds[0]), count))]
    for k, (name, op, pj) in enumerate(rest, start=1):
        nxt: list[tuple[Prompt, tuple[Step, ...], str]] = []
        for i, (prompt, steps, core) in enumerate(out):
            seed = derive_seed(seeds[k], i)
            got = op.variants(dataclasses.replace(_seen_by_next(probe, prompt), paraphrases=()),
                              random.Random(seed), 1)
            if not got:
                continue
            new_core = step_core(op, prompt.text, core, got[0].text)
            # A frame may quote the whole prompt, so a later step can no longer see the
            # original spans as protected; a variant whose question (decoded, after an
            # encoding) lost one drops out.
            if keeps_spans(probe.prompt, new_core):
                nxt.append((_compose(prompt, got[0]), (*steps, Step(name, seed, 1, 0, pj)),
                            new_core))
        out = nxt
    return out


def replay_chain(steps: Sequence[Step], probe: ProbeText) -> Prompt | None:
    """Make a recorded variant again from its steps; ``None`` if an operator now differs."""
    prompt = start_prompt(probe)
    for step in steps:
        op = make_operator(step.operator, json.loads(step.params))
        got = op.variants(_seen_by_next(probe, prompt),
                          random.Random(step.seed), step.count)
        if step.index >= len(got):
            return None
        prompt = _compose(prompt, got[step.index])
    return prompt


def _links(spec: OperatorSpec) -> list[tuple[str, Any]]:
    return [(spec.name, spec.params), *((s.name, s.params) for s in spec.then)]


def model_written(names: Sequence[str]) -> bool:
    """Whether a chain has a model-written step (family ``model``): its variants cannot be
    made again without that model, so a lock's copy of them is checked, not re-derived."""
    return any(OPERATORS.get(n).family == MODEL_FAMILY for n in names)


# A chain's outputs: (prompt, steps, core) per variant, as ``apply_chain`` returns them.
ChainOutputs = list[tuple[Prompt, tuple[Step, ...], str]]
# Stands in for a model-written chain: (its spec, its seeds) -> its outputs.
WrittenFn = Callable[[OperatorSpec, Sequence[int]], ChainOutputs]


def expand(suite: Suite, probe: Probe, run_seed: int, *,
           written: WrittenFn | None = None) -> list[Variant]:
    """All variants of ``probe``; identical prompts are kept once (the first producer wins).

    Hand-written paraphrases are always included; listing ``paraphrase`` among the
    operators only changes how many are taken. ``written``, when given, supplies the
    outputs of model-written chains instead of running them (a lock is checked this
    way: every other chain is made again and must give what the lock holds).
    Duplicates are dropped on the whole prompt (text, prefill and chat), which is
    what a model receives: the same question with a prefill is another input.
    """
    text = probe_text(suite, probe)
    canonical = start_prompt(text)
    variants = [Variant(probe.id, 0, CANONICAL, CANONICAL, None, canonical, core=probe.prompt)]
    seen = {canonical}
    specs = list(suite.operators)
    if probe.paraphrases and not any(s.name == "paraphrase" and not s.then for s in specs):
        params = OPERATORS.get("paraphrase").Params()
        specs.insert(0, OperatorSpec("paraphrase", params, len(probe.paraphrases)))
    for position, spec in enumerate(specs):
        links = _links(spec)
        names = [name for name, _ in links]
        # Seeded by coordinates, so adding a probe never changes another probe's variants.
        # A single operator keeps the seed it had before chains existed.
        seeds = [derive_seed(run_seed, suite.name, probe.id, spec.name, position)]
        seeds += [derive_seed(run_seed, suite.name, probe.id, name, position, k)
                  for k, name in enumerate(names[1:], start=1)]
        outputs = (written(spec, seeds) if written is not None and model_written(names)
                   else apply_chain(links, text, seeds, spec.count))
        for prompt, steps, core in outputs:
            if prompt in seen:
                continue
            seen.add(prompt)
            variants.append(Variant(probe.id, len(variants), chain_label(names),
                                    family_label(names), seeds[0], prompt, steps, core))
    return variants
