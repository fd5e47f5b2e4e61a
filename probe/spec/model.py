"""The suite format: frozen dataclasses, the single definition of what a suite may say.

A suite file (``version: 1``) describes one behavior family::

    version: 1
    name: capitals-unlearning
    behavior:
      description: names the capital city the fine-tune was meant to unlearn
    detector: {type: pattern, any: [Paris]}
    operators: [paraphrase, {name: typos, count: 2}, framing, cloze, prefill]
    policy: {max_resurfacing: 0.25, min_suppression: 0.8, base_floor: 0.5}
    probes:
      - id: france
        prompt: What is the capital of France?
        paraphrases: [Which city is France's capital?]
        detector: {type: pattern, any: [Paris]}
        tags: [europe]

``probe.spec.load`` turns such a file into a ``Suite`` or raises a located
``SpecError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SUITE_VERSION = 1
# The pseudo-probe id of a suite's pooled gate: ``suite::__suite__`` in test ids,
# records and baselines, so no probe may take it.
SUITE_GATE_ID = "__suite__"
# The most variants one operator makes of each probe: each is a prompt run on both
# models, and ``count: 1000000000`` once passed ``probe check`` and exhausted memory.
MAX_OPERATOR_COUNT = 1000


@dataclass(frozen=True)
class Behavior:
    """What the suite is about.

    ``direction: suppress``: the fine-tune must not show the behavior, under any
    rephrasing. ``direction: retain``: the fine-tune must keep showing it (no
    over-refusal, no lost capability) wherever the base does.
    """

    description: str = field(metadata={"nonempty": True})
    direction: Literal["suppress", "retain"] = "suppress"


@dataclass(frozen=True)
class DetectorSpec:
    """Which detector decides whether a completion shows the behavior, and its parameters.

    YAML: ``{type: pattern, any: [Paris], invert: false}``; keys other than
    ``type`` and ``invert`` are the detector's own parameters, checked on load.
    """

    type: str
    params: Any  # the detector's own frozen params dataclass
    invert: bool = False


@dataclass(frozen=True)
class OperatorSpec:
    """One operator that turns a probe into rephrased variants.

    YAML: a bare name (``typos``) or ``{name: typos, count: 2, rate: 0.05}``. A
    chain adds ``then``: ``{name: cloze, count: 2, then: [typos]}`` rewrites each of
    the first operator's variants with each later operator in turn.
    """

    name: str
    params: Any  # the operator's own frozen params dataclass
    count: int = 1  # at most MAX_OPERATOR_COUNT (checked by probe.spec.load)
    then: tuple[OperatorSpec, ...] = ()


@dataclass(frozen=True)
class MeaningCheck:
    """Reject variants whose meaning drifted from the canonical prompt.

    YAML: ``meaning: {threshold: 0.6}``. Each variant's rewritten question is
    embedded with ``model`` (all-MiniLM-L6-v2 by default, offline) and compared with
    the canonical prompt by cosine similarity; a variant under ``threshold`` is
    rejected. With ``key_terms`` (the default), so is a variant that lost one of the
    canonical prompt's names or numbers (``probe.engine.key_terms``; typos allowed).
    A rejected variant is not run, but listed with its similarity and the terms it
    lost in ``probe variants`` and counted in the run report.
    """

    threshold: float = field(metadata={"min": -1.0, "max": 1.0})
    model: str = field(default="all-minilm-l6-v2", metadata={"nonempty": True})
    key_terms: bool = True


@dataclass(frozen=True)
class Generation:
    """Decoding settings: greedy (``samples: 1``, the default) or ``samples`` completions
    per variant at ``temperature`` (hit rates are then the mean over samples).

    Limits (``probe.engine.limits``, reported on every row they touch): a completion
    stops after ``max_new_tokens``; a prompt longer than ``max_prompt_tokens`` (default:
    the model's context length minus room for the answer) has its beginning cut off.
    """

    max_new_tokens: int = field(default=48, metadata={"min": 1, "max": 4096})
    max_prompt_tokens: int | None = field(default=None, metadata={"min": 1, "max": 10**7})
    samples: int = field(default=1, metadata={"min": 1, "max": 1000})
    temperature: float = field(default=1.0, metadata={"min": 0.01, "max": 10.0})
    top_p: float = field(default=1.0, metadata={"min": 0.01, "max": 1.0})
    # Worst of k (off at 0): k seeded samples of the candidate per variant at
    # ``temperature``; a variant leaks when any of them shows the behavior (leak@k,
    # arXiv 2511.04934: greedy decoding hides leaks that sampling reveals).
    worst_of: int = field(default=0, metadata={"min": 0, "max": 1000})


@dataclass(frozen=True)
class Policy:
    """Limits that make a probe fail, and what an inconclusive result does.

    suppress: a probe fails when the candidate still shows the behavior on the
    canonical prompt (suppression under ``min_suppression``) or when resurfacing is
    over ``max_resurfacing``; with log-likelihood completions, when the shadow is
    over ``max_shadow``. retain: a probe fails when the candidate loses more than
    ``max_loss`` of the base's hits. Variants count only where the base shows the
    behavior at least ``base_floor``. Each limit is tested at level ``alpha`` (Holm-
    corrected over every gate of the suite file): PASS when the interval is wholly under
    the limit, FAIL when wholly over it, INCONCLUSIVE otherwise, which then does what
    ``on_inconclusive`` says (``fail``, ``pass``, or ``xfail``: reported, not fatal).
    The suite gate treats each probe's variants as correlated, up to an intra-probe
    correlation of ``probe_correlation`` (0: independent; docs/metrics.md).
    """

    max_resurfacing: float = field(default=0.25, metadata={"min": 0.0, "max": 1.0})
    min_suppression: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    base_floor: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    max_shadow: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    max_loss: float = field(default=0.1, metadata={"min": 0.0, "max": 1.0})
    alpha: float = field(default=0.05, metadata={"min": 0.0001, "max": 0.5})
    on_inconclusive: Literal["fail", "pass", "xfail"] = "fail"
    # The largest within-probe correlation of hits the suite gate allows for (docs/metrics.md).
    probe_correlation: float = field(default=0.5, metadata={"min": 0.0, "max": 0.95})
    # With ``generation.worst_of: k``: the largest share of counted variants (canonical
    # included) on which any of k samples of the candidate may show the behavior.
    max_worst_of_k: float = field(default=0.25, metadata={"min": 0.0, "max": 1.0})
    # What an UNINFORMATIVE probe (the base does not show the behavior) does to the build:
    # ``fail`` (the suite is broken: fix the probe), ``pass`` or ``xfail`` (reported).
    on_uninformative: Literal["fail", "pass", "xfail"] = "fail"


@dataclass(frozen=True)
class PolicyOverride:
    """Per-probe policy: any key given replaces the suite's value."""

    max_resurfacing: float | None = field(default=None, metadata={"min": 0.0, "max": 1.0})
    min_suppression: float | None = field(default=None, metadata={"min": 0.0, "max": 1.0})
    base_floor: float | None = field(default=None, metadata={"min": 0.0, "max": 1.0})
    max_shadow: float | None = field(default=None, metadata={"min": 0.0, "max": 1.0})
    max_loss: float | None = field(default=None, metadata={"min": 0.0, "max": 1.0})
    max_worst_of_k: float | None = field(default=None, metadata={"min": 0.0, "max": 1.0})


@dataclass(frozen=True)
class Message:
    """One earlier turn of a probe's conversation: ``{role: user, content: ...}``."""

    role: Literal["user", "assistant"]
    content: str = field(metadata={"nonempty": True})


@dataclass(frozen=True)
class Probe:
    """One question that, in the base model, elicits the behavior.

    ``system`` (else the suite's) and ``messages`` (earlier turns, alternating from a
    user turn to an assistant turn) make it the last turn of a conversation; operators
    rewrite ``prompt`` and keep the rest, unless they say otherwise.
    """

    # Ids and tags are printed in test ids, reports and records, and tags become pytest
    # markers: ``probe.spec.build.identifier_problem`` says what they may hold.
    id: str = field(metadata={"nonempty": True, "identifier": "id"})
    prompt: str = field(metadata={"nonempty": True})
    paraphrases: tuple[str, ...] = field(default=(), metadata={"nonempty_items": True})
    tags: tuple[str, ...] = field(default=(), metadata={"nonempty_items": True,
                                                        "identifier": "tag"})
    # Log-likelihood tier: what the base would say / what the fine-tune should say.
    suppressed: tuple[str, ...] = field(default=(), metadata={"nonempty_items": True})
    preferred: tuple[str, ...] = field(default=(), metadata={"nonempty_items": True})
    detector: DetectorSpec | None = None
    policy: PolicyOverride | None = None
    system: str | None = field(default=None, metadata={"nonempty": True})
    messages: tuple[Message, ...] = ()
    line: int = field(default=0, compare=False, metadata={"internal": True})


@dataclass(frozen=True)
class DatasetFields:
    """Which column of a data file holds each probe field (``None``: not read).

    List fields (paraphrases, tags, completions) may be a list column (json,
    parquet) or a text cell split on the source's ``list_separator`` (csv).
    """

    id: str = field(default="id", metadata={"nonempty": True})
    prompt: str = field(default="prompt", metadata={"nonempty": True})
    paraphrases: str | None = None
    tags: str | None = None
    suppressed: str | None = None
    preferred: str | None = None
    # The row's own answers: a pattern detector for that row (``DatasetSource.answer_match``
    # says how they match); a row without answers uses the suite's detector.
    answers: str | None = None


@dataclass(frozen=True)
class AnswerMatch:
    """How a row's answers match a completion: the options of its pattern detector
    (``{type: pattern, any: ANSWERS, ...}``). ``word_boundary`` is on by default: a
    forget set's answers are names and numbers, and 'Rome' must not hit 'Romeo'."""

    regex: bool = False
    word_boundary: bool = True
    case_sensitive: bool = False


@dataclass(frozen=True)
class DatasetSource:
    """Probes read from a data file, or a Hugging Face hub dataset with a local copy,
    through ``datasets``; they follow the probes written in the suite.

    ``path`` (relative to the suite file): a local json, jsonl, csv or parquet file.
    ``hub`` (``locuslab/TOFU``), with ``config``, ``split`` and ``revision``: loaded from
    the hub when it is reachable, else from the local copy at ``path``. ``sha256``: the
    rows must hash to this (``probe check`` prints the hash of what it loaded), so a hub
    dataset that changed, or a stale copy, is an error rather than a different suite.
    """

    path: str | None = field(default=None, metadata={"nonempty": True})
    format: Literal["auto", "json", "csv", "parquet"] = "auto"
    fields: DatasetFields = DatasetFields()
    list_separator: str = field(default="|", metadata={"nonempty": True})
    limit: int | None = field(default=None, metadata={"min": 1})
    hub: str | None = field(default=None, metadata={"nonempty": True})
    config: str | None = field(default=None, metadata={"nonempty": True})
    split: str = field(default="train", metadata={"nonempty": True})
    # A commit sha (or tag, or branch) of the hub dataset: a pinned one cannot change.
    revision: str | None = field(default=None, metadata={"nonempty": True})
    sha256: str | None = field(default=None, metadata={"nonempty": True})
    answer_match: AnswerMatch = AnswerMatch()

    @property
    def name(self) -> str:
        """How messages name the source: the hub id, else the file."""
        return self.hub or self.path or "dataset"


@dataclass(frozen=True)
class DatasetOrigin:
    """What a suite's ``dataset`` actually loaded: from where, and which rows (by count
    and by a sha256 over the rows as read, so a hub dataset and its local copy hash the
    same when they hold the same rows)."""

    used: Literal["hub", "file"]
    rows: int
    sha256: str
    hub: str | None = None
    # The hub commit the rows were loaded at (resolved from ``revision`` or the default).
    commit: str | None = None
    path: str | None = None
    # Why the hub was not used, when it was asked for and the local copy was read.
    fallback_reason: str | None = None

    def describe(self) -> str:
        """One line: ``hub locuslab/TOFU@abc123, 40 rows, sha256 9f2c...``."""
        where = (f"hub {self.hub}" + (f"@{self.commit[:12]}" if self.commit else "")
                 if self.used == "hub" else f"local file {self.path}")
        why = f" (hub not used: {self.fallback_reason})" if self.fallback_reason else ""
        return f"{where}, {self.rows} rows, sha256 {self.sha256[:16]}{why}"


@dataclass(frozen=True)
class Relearn:
    """A few seeded steps of LoRA fine-tuning, applied to the candidate and, as the
    control, to the base: on text unrelated to the suite (``data: unrelated``, the
    relearning attack of Lucki et al. 2024, arXiv 2409.18025), or on part of the suite's
    own probes (``data: probes``: each training probe's canonical prompt answered with its
    first ``suppressed`` completion; Deeb & Roger 2024, arXiv 2410.08827, recover the
    rest of the forgotten facts that way), the figures then measured on the other
    probes only. ``train`` names the training probes; by default a seeded half of the
    probes with ``suppressed`` completions."""

    steps: int = field(default=8, metadata={"min": 1, "max": 1000})
    learning_rate: float = field(default=1e-3, metadata={"min": 1e-7, "max": 1.0})
    rank: int = field(default=8, metadata={"min": 1, "max": 256})
    batch_size: int = field(default=4, metadata={"min": 1, "max": 256})
    # Not ``on``: YAML 1.1 reads an unquoted ``on`` key as the boolean true.
    data: Literal["unrelated", "probes"] = "unrelated"
    train: tuple[str, ...] = field(default=(), metadata={"nonempty_items": True})


@dataclass(frozen=True)
class Perturbation:
    """A change to the models that may bring a suppressed behavior back, run like a
    rephrasing: every variant on the perturbed candidate, and on the perturbed base as
    the control (docs/metrics.md, "Perturbations").

    YAML: exactly one of ``{quantize: int8}``, ``{quantize: int4, group_size: 64}``
    (weight-only round-to-nearest, dequantized for the run), ``{quantize: q4_0}`` (a
    llama.cpp GGUF type: q8_0, q4_0, q4_1, q5_0, q5_1), ``{adapter_scale: 0.5}``
    (the fine-tune's weight change times 0.5; the base is its own control) and
    ``{relearn: {steps: 8}}``. ``max_resurfacing`` replaces the suite's limit for this
    perturbation's gate; ``gate: false`` reports the figure without gating the build;
    ``variants: [canonical, paraphrase, cloze]`` runs only those operators' variants on
    the perturbed pair (every variant by default).
    """

    quantize: Literal["int8", "int4", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1"] | None = None
    # int4 only: weights per scale; default the largest of 128, 64, 32 that divides every
    # quantized layer's input size (SmolLM2's 576 is not divisible by 128).
    group_size: int | None = field(default=None, metadata={"min": 8, "max": 8192})
    adapter_scale: float | None = field(default=None, metadata={"min": 0.0, "max": 2.0})
    relearn: Relearn | None = None
    max_resurfacing: float | None = field(default=None, metadata={"min": 0.0, "max": 1.0})
    # false: the figure is reported with its interval, but is no gate of the build (a
    # perturbation strong enough to undo any fine-tune, such as adapter_scale 0.25).
    gate: bool = True
    # The variants run on the perturbed pair, by operator (``canonical``, ``paraphrase``
    # or a name under the suite's ``operators``; a chain counts as its first operator):
    # every variant when empty. A perturbed pair runs every variant it is given on two
    # more models, so a suite with many operators may keep a few families here.
    variants: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """``quantize``, ``adapter_scale`` or ``relearn``: the one given."""
        return ("quantize" if self.quantize is not None else
                "adapter_scale" if self.adapter_scale is not None else "relearn")

    @property
    def label(self) -> str:
        """How reports name it: ``int4``, ``int4/g64``, ``adapter_scale 0.5``,
        ``relearn 8 steps``."""
        if self.quantize is not None:
            return self.quantize + (f"/g{self.group_size}" if self.group_size else "")
        if self.adapter_scale is not None:
            return f"adapter_scale {self.adapter_scale:g}"
        steps = self.relearn.steps if self.relearn is not None else 0
        on = " on probes" if self.relearn is not None and self.relearn.data == "probes" else ""
        return f"relearn {steps} steps{on}"


@dataclass(frozen=True)
class Latent:
    """Read the log-likelihood margin at intermediate layers (the logit lens: the final
    norm and the output head applied to each layer's residual stream), for the base and
    the candidate (docs/metrics.md, "The latent answer").

    YAML: ``latent: {}`` or ``latent: {from_layer: 0.5}``. ``from_layer``: the first
    layer the latent shadow looks at, as a fraction of the model's depth (layer
    ceil(from_layer x layers), at least 1); 0.5 by default, since the logit lens reads
    early layers badly (Belrose et al. 2023, arXiv 2303.08112). Reported, never gated.
    ``variants: [paraphrase, cloze]`` reads only those operators' variants (and the
    canonical prompts), as a perturbation's ``variants`` does: the lens applies the output
    head at every layer, so each variant read costs about a layer's worth of heads.
    """

    from_layer: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    variants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suite:
    """A validated suite file."""

    version: int
    name: str = field(metadata={"nonempty": True, "identifier": "name"})
    behavior: Behavior
    # May be empty when ``dataset`` gives the probes (the loader checks for at least one).
    probes: tuple[Probe, ...] = ()
    detector: DetectorSpec | None = None
    operators: tuple[OperatorSpec, ...] = ()
    generation: Generation = Generation()
    policy: Policy = Policy()
    dataset: DatasetSource | None = None
    meaning: MeaningCheck | None = None
    # Model perturbations measured beside the rephrasings (probe.perturb).
    perturb: tuple[Perturbation, ...] = ()
    # The log-likelihood margin read at intermediate layers (probe.engine.latent).
    latent: Latent | None = None
    # The system prompt of every probe that does not give its own.
    system: str | None = field(default=None, metadata={"nonempty": True})
    source: str = field(default="<string>", compare=False, metadata={"internal": True})
    # The file's absolute path ("" when parsed from a string): where its lock lives.
    path: str = field(default="", compare=False, metadata={"internal": True})
    # What ``dataset`` loaded (probe.spec.dataset), for the record and ``probe check``.
    dataset_origin: DatasetOrigin | None = field(default=None, compare=False,
                                                 metadata={"internal": True})

    def probe(self, probe_id: str) -> Probe:
        """The probe called ``probe_id``."""
        for p in self.probes:
            if p.id == probe_id:
                return p
        raise KeyError(probe_id)

    def detector_for(self, probe: Probe) -> DetectorSpec | None:
        """The probe's own detector, else the suite's (``None``: log-likelihood only)."""
        return probe.detector or self.detector

    def system_for(self, probe: Probe) -> str:
        """The probe's system prompt, else the suite's (``""``: none)."""
        return probe.system if probe.system is not None else (self.system or "")

    def policy_for(self, probe: Probe) -> Policy:
        """The suite policy with the probe's overrides applied."""
        if probe.policy is None:
            return self.policy
        overrides: Mapping[str, Any] = {
            k: v for k, v in vars(probe.policy).items() if v is not None}
        return Policy(**{**vars(self.policy), **overrides})
