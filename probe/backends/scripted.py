"""A scripted backend: canned replies chosen by regex, for fast tests without weights.

Shipped in the library (like httpx's ``MockTransport``) so users can test their
suites and CI wiring in milliseconds. A script is a YAML file, read safely::

    name: fake-base
    default: "I don't know."
    rules:
      - match: "capital of France"    # regex, searched in the prompt text
        reply: "The capital of France is Paris."

The first matching rule wins. ``match`` is searched in the user text followed by
the prefill, so a prefill can steer a rule too; in a conversation, the system prompt
and the earlier turns come first, a line each, so a rule can match them as well.
``replies`` maps exact prompt texts to replies and is checked before the rules (large
generated scripts stay fast).

Every regex runs through ``probe.safe_regex``: one that backtracks catastrophically
stops after ``SEARCH_SECONDS`` with an error naming the file, line and rule.

Sampling picks among a rule's ``samples`` (weighted by ``weights``) with an RNG
seeded by the variant's seed. Log-likelihood scoring uses ``logprobs``: the first
entry whose ``match`` is found in the prompt and whose ``completion`` is found in
the completion gives the mean per-token log-probability; otherwise
``default_logprob``.

Per-layer scores (``score_layers``, a suite's ``latent:``) come from
``layer_logprobs``, matched the same way: each entry lists the figures of the layers
*below* the output, first to last; the output layer is always what ``score`` gives,
so the last layer agrees with ``score`` as the backend contract asks. A request no
entry matches reads ``score``'s figure at every layer. Every entry lists the same
number of layers (the model has ``len(logprobs) + 1`` layers; 2 without entries).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from probe.backends.base import (
    Backend,
    Completion,
    GenerationSettings,
    LoadOptions,
    ModelInfo,
    ModelPair,
    Prompt,
    SamplingSettings,
    ScoreRequest,
)
from probe.backends.engines import Engine, scripted_path
from probe.errors import ModelLoadError, SpecError, UsageError
from probe.safe_regex import SafePattern
from probe.spec.build import build
from probe.spec.model import Perturbation
from probe.spec.yaml_source import Path as KeyPath
from probe.spec.yaml_source import SourceMap, format_path, load_yaml

if TYPE_CHECKING:
    from probe.backends.perturbed import PerturbedPair, PerturbRequest


@dataclass(frozen=True)
class Rule:
    """Reply ``reply`` when ``match`` (a regex, case-insensitive) is found.

    When sampling, a rule with ``samples`` draws one of them (``weights`` default
    to equal) instead of ``reply``.
    """

    match: str
    reply: str
    samples: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()


@dataclass(frozen=True)
class LogprobRule:
    """Mean per-token log-probability of completions matching ``completion`` after
    prompts matching ``match`` (both regexes, case-insensitive)."""

    match: str
    completion: str
    logprob: float


@dataclass(frozen=True)
class LayerLogprobRule:
    """Per-layer mean log-probabilities (the layers below the output, first to last) of
    completions matching ``completion`` after prompts matching ``match``."""

    match: str
    completion: str
    logprobs: tuple[float, ...] = field(metadata={"nonempty_items": True})


@dataclass(frozen=True)
class Script:
    """A whole scripted model."""

    name: str = "scripted"
    default: str = ""
    rules: tuple[Rule, ...] = field(default=())
    replies: Mapping[str, str] = field(default_factory=dict)
    logprobs: tuple[LogprobRule, ...] = ()
    default_logprob: float = -5.0
    # Per-layer scores below the output layer (``score_layers``); see the module doc.
    layer_logprobs: tuple[LayerLogprobRule, ...] = ()
    # Instrumentation for fault tests; neither changes a reply, so neither is part of
    # the fingerprint. ``delay``: seconds spent per prompt (a slow model); ``trace``: a
    # file that gets one JSON line per prompt actually computed (not served by a cache).
    delay: float = field(default=0.0, metadata={"min": 0.0, "max": 10.0})
    trace: str = ""
    # Tokens (words) the model attends to, for tests of the length limits; None: no limit.
    context_length: int | None = field(default=None, metadata={"min": 1})
    # The model under a suite's perturbations: a perturbation's label (``int4``,
    # ``adapter_scale 0.5``) -> another script file, relative to this one. A perturbation
    # not listed leaves the model as it is.
    perturbed: Mapping[str, str] = field(default_factory=dict)


class ScriptedBackend(Backend):
    """Replies from a ``Script``; counts calls so tests can check batching and caching.

    ``source``, the script file's source map, lets errors about its regexes name
    their file and line.
    """

    def __init__(self, script: Script, source: SourceMap | None = None) -> None:
        self.script = script
        self._source = source
        self.calls = 0
        self.prompts_seen = 0

        def pattern(text: str, *path: str | int) -> SafePattern:
            where = _where(source, path)
            try:
                return SafePattern(text, ignore_case=True, path=path, where=where)
            except ValueError as err:
                raise ModelLoadError(f"scripted model {script.name!r}: bad regex: {where}: "
                                     f"{err}") from None

        self._rules = [(pattern(r.match, "rules", i, "match"), r)
                       for i, r in enumerate(script.rules)]
        self._logprobs = [(pattern(r.match, "logprobs", i, "match"),
                           pattern(r.completion, "logprobs", i, "completion"), r.logprob)
                          for i, r in enumerate(script.logprobs)]
        for rule in script.rules:
            if rule.weights and len(rule.weights) != len(rule.samples):
                raise ModelLoadError(f"scripted model {script.name!r}: rule {rule.match!r} has "
                                     f"{len(rule.weights)} weights for {len(rule.samples)} samples")
        # ``asdict`` deep-copies every field, and a loaded script's ``replies`` is a
        # read-only mappingproxy, which cannot be copied: hand it a plain dict.
        replies = asdict(replace(script, replies=dict(script.replies),
                                 perturbed=dict(script.perturbed)))
        for instrument in ("delay", "trace"):
            replies.pop(instrument)
        if script.context_length is None:
            replies.pop("context_length")  # fingerprints of scripts without it stay as they were
        if not script.perturbed:
            replies.pop("perturbed")
        if not script.layer_logprobs:
            replies.pop("layer_logprobs")  # fingerprints of scripts without it stay as they were
        self._layer_rules = [(pattern(r.match, "layer_logprobs", i, "match"),
                              pattern(r.completion, "layer_logprobs", i, "completion"),
                              r.logprobs) for i, r in enumerate(script.layer_logprobs)]
        depths = {len(r.logprobs) for r in script.layer_logprobs}
        if len(depths) > 1:
            raise ModelLoadError(f"scripted model {script.name!r}: every layer_logprobs entry "
                                 f"must list the same number of layers, got {sorted(depths)}")
        self.layers = (depths.pop() if depths else 1) + 1
        payload = json.dumps(replies, sort_keys=True, default=list)
        self._info = ModelInfo(script.name, hashlib.sha256(payload.encode()).hexdigest())

    @property
    def info(self) -> ModelInfo:
        return self._info

    def _rule(self, prompt: Prompt) -> Rule | None:
        haystack = _haystack(prompt)
        for pattern, rule in self._rules:
            if pattern.search(haystack):
                return rule
        return None

    def _computing(self, kind: str, prompts: Sequence[Prompt]) -> None:
        """Count, slow down and trace a call that computes ``prompts``."""
        self.calls += 1
        self.prompts_seen += len(prompts)
        if self.script.delay:
            time.sleep(self.script.delay * len(prompts))
        if self.script.trace:
            rows = [json.dumps({"model": self.script.name, "kind": kind, "text": p.text,
                                "prefill": p.prefill, "chat": p.chat,
                                **({"system": p.system, "messages": p.messages}
                                   if p.is_conversation else {})}) + "\n" for p in prompts]
            with Path(self.script.trace).open("a", encoding="utf-8") as f:
                f.write("".join(rows))

    def context_length(self) -> int | None:
        return self.script.context_length

    def perturbed(self, perturbation: Perturbation) -> ScriptedBackend:
        """This model under ``perturbation``: the script ``perturbed`` names for its label,
        else this model unchanged."""
        name = self.script.perturbed.get(perturbation.label)
        if name is None:
            return self
        here = Path(self._source.file).parent if self._source is not None else Path()
        return load_script(here / name)

    def perturb_pair(self, pair: ModelPair, request: PerturbRequest) -> PerturbedPair:
        """``pair`` (this backend its candidate) under ``request.perturbation``: each
        side's ``perturbed`` script (``probe.backends.perturbed.PerturbingBackend``)."""
        from probe.backends.perturbed import PerturbedPair

        base = pair.base
        if not isinstance(base, ScriptedBackend):
            raise UsageError("perturb: a scripted candidate needs a scripted base")
        return PerturbedPair(ModelPair(base.perturbed(request.perturbation),
                                       self.perturbed(request.perturbation)))

    def reply(self, prompt: Prompt) -> str:
        """The scripted (greedy) reply for one prompt."""
        if prompt.text in self.script.replies:
            return self.script.replies[prompt.text]
        rule = self._rule(prompt)
        return self.script.default if rule is None else rule.reply

    def sample(self, prompts: Sequence[Prompt], settings: SamplingSettings,
               seeds: Sequence[int]) -> list[list[Completion]]:
        self._computing("sample", prompts)
        out: list[list[Completion]] = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            rule = self._rule(prompt)
            if prompt.text in self.script.replies or rule is None or not rule.samples:
                out.append([_first_words(self.reply(prompt), settings.max_new_tokens)]
                           * settings.samples)
                continue
            rng = random.Random(seed)
            weights = list(rule.weights) or None
            drawn = rng.choices(list(rule.samples), weights=weights, k=settings.samples)
            out.append([_first_words(d, settings.max_new_tokens) for d in drawn])
        return out

    def _logprob(self, request: ScoreRequest) -> float:
        text = _haystack(request.prompt)
        for prompt_pattern, completion_pattern, logprob in self._logprobs:
            if prompt_pattern.search(text) and completion_pattern.search(request.completion):
                return logprob
        return self.script.default_logprob

    def score(self, requests: Sequence[ScoreRequest]) -> list[float]:
        self._computing("score", [r.prompt for r in requests])
        return [self._logprob(r) for r in requests]

    def score_layers(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        self._computing("layers", [r.prompt for r in requests])
        out = []
        for request in requests:
            final = self._logprob(request)
            text = _haystack(request.prompt)
            below = next((list(values) for prompt_pattern, completion_pattern, values
                          in self._layer_rules if prompt_pattern.search(text)
                          and completion_pattern.search(request.completion)),
                         [final] * (self.layers - 1))
            out.append([*below, final])
        return out

    def generate(self, prompts: Sequence[Prompt],
                 settings: GenerationSettings) -> list[Completion]:
        self._computing("generate", prompts)
        return [_first_words(self.reply(p), settings.max_new_tokens) for p in prompts]


def _haystack(prompt: Prompt) -> str:
    """What a rule's ``match`` is searched in: the conversation's system prompt and earlier
    turns (a line each), the user text, then the prefill."""
    lines = [prompt.system] if prompt.system else []
    lines += [content for _, content in prompt.messages]
    lines.append(prompt.text)
    if prompt.prefill:
        lines.append(prompt.prefill)
    return "\n".join(lines)


def _first_words(text: str, count: int) -> Completion:
    """Like a model stopping after ``max_new_tokens``: at most ``count`` words (tokens),
    cut when the reply had more."""
    words = text.split()
    if len(words) <= count:
        return Completion(text, cut=False)
    return Completion(" ".join(words[:count]), cut=True)


def _where(source: SourceMap | None, path: KeyPath) -> str:
    """``file:line: rules[0].match`` (just the key path without a source map)."""
    if source is None:
        return format_path(path)
    line = source.line_of(path)
    return f"{source.file}:{line}: {format_path(path)}" if line else \
        f"{source.file}: {format_path(path)}"


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
    return ScriptedBackend(script, smap)


class ScriptedEngine(Engine):
    """The scripted test double: ``scripted:FILE.yaml`` references (``load_script``)."""

    name = "scripted"

    def check_ref(self, ref: str, option: str, options: LoadOptions) -> None:
        path = Path(scripted_path(ref))
        if not path.is_file():
            raise UsageError(f"{option}: scripted model file {str(path)!r} does not exist")

    def load_pair(self, base: str, candidate: str, options: LoadOptions) -> ModelPair:
        return ModelPair(self.load_backend(base, options), self.load_backend(candidate, options))

    def load_backend(self, ref: str, options: LoadOptions) -> Backend:
        return load_script(scripted_path(ref))


ENGINE = ScriptedEngine()
