"""Classifier detector: a local Hugging Face sequence-classification model decides.

For behaviors a phrase list or exemplars cannot pin down (toxicity, unsafe advice),
a trained classifier is the usual judge (HarmBench and others ship one). The model
directory must hold safetensors weights; it is read offline, a directory with
its own code (``auto_map``) is refused, and ``trust_remote_code=False`` is passed
on every load, so a model directory cannot run code and nothing is asked on
standard input (``probe.local_models``).

Constructing the detector is cheap (suites are validated during pytest collection):
the model is loaded by the first ``score`` call and shared with every other
classifier detector that names the same directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from probe.detectors.base import Detector
from probe.errors import ModelLoadError, did_you_mean
from probe.local_models import NO_CODE, load_error, refuse_own_code
from probe.model_cache import ModelCache

BATCH_SIZE = 32


@dataclass(frozen=True)
class ClassifierParams:
    """``path``: local model directory. ``label``: the name in the model's
    ``config.id2label`` that means the completion shows the behavior. ``mode``: ``hit``
    gives 1.0 when that label's probability reaches ``threshold``, else 0.0;
    ``probability`` gives the probability itself. ``max_length``: tokens read (the
    rest of a longer completion is cut off)."""

    path: str = field(metadata={"nonempty": True})
    label: str = field(metadata={"nonempty": True})
    threshold: float = field(default=0.5, metadata={"min": 0, "max": 1})
    mode: Literal["hit", "probability"] = "hit"
    max_length: int = field(default=512, metadata={"min": 1})


class LoadedClassifier:
    """A tokenizer and classification model on one device, shared between detectors."""

    def __init__(self, directory: Path, tokenizer: Any, model: Any, device: str) -> None:
        self.directory = directory
        self.tokenizer = tokenizer
        self.model = model
        self.device = device
        id2label = model.config.id2label or {}
        self.labels: dict[str, int] = {str(name): int(i) for i, name in id2label.items()}
        problem = getattr(model.config, "problem_type", None)
        if problem == "regression":
            raise ModelLoadError(f"{directory}: a regression model gives no probabilities; "
                                 f"the classifier detector needs a classification model")
        # Independent labels use a sigmoid per label; mutually exclusive ones a softmax.
        # A single logit is read as a binary score, since a softmax over it is always 1.
        self.sigmoid = problem == "multi_label_classification" or len(self.labels) == 1

    def label_index(self, label: str) -> int:
        """Column of ``label`` in the logits; ``ModelLoadError`` naming the choices."""
        if label not in self.labels:
            known = ", ".join(repr(name) for name in self.labels)
            raise ModelLoadError(f"classifier {self.directory}: unknown label {label!r}."
                                 f"{did_you_mean(label, self.labels)} "
                                 f"The model's labels (config.id2label): {known}")
        return self.labels[label]

    def probabilities(self, texts: Sequence[str], max_length: int) -> list[list[float]]:
        """Per-text probability of every label, in label-index order."""
        import torch

        # A tokenizer without a padding token (GPT-style classifiers) cannot batch.
        batch_size = BATCH_SIZE if self.tokenizer.pad_token is not None else 1
        limit = self.tokenizer.model_max_length
        # model_max_length is a huge sentinel when the tokenizer does not know it; when
        # it does, reading past it would index beyond the position embeddings.
        if isinstance(limit, int) and limit < 1_000_000:
            max_length = min(max_length, limit)
        rows: list[list[float]] = []
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start:start + batch_size])
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=max_length,
                                 return_tensors="pt")
            enc = {k: v.to(self.device) for k, v in enc.items()}
            with torch.inference_mode():
                logits = self.model(**enc).logits.float()
            probs = torch.sigmoid(logits) if self.sigmoid else torch.softmax(logits, dim=-1)
            rows.extend(probs.cpu().tolist())
        return rows


_CLASSIFIERS: ModelCache[LoadedClassifier] = ModelCache(
    lambda d, device: _load(Path(d), device))


def get_classifier(path: str, device: str = "cpu") -> LoadedClassifier:
    """The classifier in ``path`` on ``device``, loaded on first request and then shared."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise ModelLoadError(f"classifier model directory {path!r} does not exist (the "
                             f"classifier detector reads a local directory with config.json, "
                             f"a tokenizer and model.safetensors)")
    key = (str(directory.resolve()), device)
    return _CLASSIFIERS.get(*key)


def loaded_classifiers() -> list[tuple[str, str]]:
    """The (model directory, device) pairs loaded so far in this process."""
    return _CLASSIFIERS.keys()


def clear_cache() -> None:
    """Forget every loaded classifier (tests; freeing memory in a notebook)."""
    _CLASSIFIERS.clear()


def _load(directory: Path, device: str) -> LoadedClassifier:
    refuse_own_code(directory, "classifier detector")
    from probe.extras import require

    require("hf", "the classifier detector")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, **NO_CODE)
        model = AutoModelForSequenceClassification.from_pretrained(
            directory, use_safetensors=True, **NO_CODE)
    except Exception as err:  # an untrusted directory can fail in any way
        raise load_error("classifier", directory, err) from None
    model.to(device)
    model.eval()
    return LoadedClassifier(directory, tokenizer, model, device)


class ClassifierDetector(Detector):
    """Scores a completion by the probability the classifier gives ``label``."""

    name = "classifier"
    Params = ClassifierParams

    def __init__(self, params: ClassifierParams) -> None:
        super().__init__(params)
        # Nothing is checked on disk here: a suite may name a model that only the GPU
        # runner has, and collection must stay cheap.
        self._loaded: LoadedClassifier | None = None
        self._index = -1

    def _classifier(self) -> LoadedClassifier:
        if self._loaded is None:
            loaded = get_classifier(self.params.path)
            self._index = loaded.label_index(self.params.label)
            self._loaded = loaded
        return self._loaded

    def probabilities(self, completions: Sequence[str]) -> list[float]:
        """Probability of ``label`` for each completion."""
        if not completions:
            return []  # nothing to classify: do not load the model for it
        loaded = self._classifier()
        rows = loaded.probabilities(completions, self.params.max_length)
        return [row[self._index] for row in rows]

    def score_many(self, completions: Sequence[str]) -> list[float]:
        probs = self.probabilities(completions)
        if self.params.mode == "probability":
            return probs
        return [1.0 if p >= self.params.threshold else 0.0 for p in probs]

    def score(self, completion: str) -> float:
        return self.score_many([completion])[0]
