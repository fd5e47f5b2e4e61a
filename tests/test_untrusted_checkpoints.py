"""Untrusted checkpoints: pickles are refused unless allowed, a model's own code runs only
on explicit request, and a suite cannot make anything run. Each test plants a payload
that would leave a marker file if it ever ran."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hf_fixtures import CPU, PROMPTS, SETTINGS

from probe.backends import LoadOptions
from probe.backends.hf import load_backend, load_pair
from probe.errors import ModelLoadError, SpecError
from probe.spec import parse_suite
from tests.conftest import VALID_SUITE, write_script

pytest_plugins = ["hf_fixtures"]
ROOT = Path(__file__).parent.parent


class _Payload:
    """Unpickling this runs code: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_the_planted_payloads_are_live(tmp_path: Path) -> None:
    """The payloads below really run when loaded unsafely, so their markers mean something."""
    import pickle

    import yaml

    marker = tmp_path / "live"
    pickle.loads(pickle.dumps(_Payload(marker)))  # unsafe on purpose: proves it is live
    assert marker.exists()
    marker.unlink()
    yaml.unsafe_load(f"name: {TOUCH_TAG.format(marker=marker)}")
    assert marker.exists()


def poisoned_checkpoint(tiny: dict[str, Path], out: Path, marker: Path) -> Path:
    """A model directory whose only weights are a pickle that runs code when opened."""
    import pickle

    shutil.copytree(tiny["pickled"], out)
    (out / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    return out


def test_a_pickle_that_runs_code_is_never_opened(tiny: dict[str, Path], tmp_path: Path) -> None:
    marker = tmp_path / "pickle-ran"
    model = poisoned_checkpoint(tiny, tmp_path / "poisoned", marker)
    for attempt in (lambda: load_backend(str(model), CPU),
                    lambda: load_pair(str(tiny["model"]), str(model), CPU),
                    lambda: load_pair(str(model), str(tiny["model"]), CPU)):
        with pytest.raises(ModelLoadError, match=r"only pickle-based weights "
                                                 r"\(pytorch_model.bin\).*allow_pickle=True"):
            attempt()
    assert not marker.exists()


def test_a_pickle_only_adapter_is_refused_unless_allowed(tiny: dict[str, Path],
                                                         tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    adapter = tmp_path / "pickled-adapter"
    shutil.copytree(tiny["adapter"], adapter)
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    (adapter / "adapter_model.safetensors").unlink()
    torch.save(weights, adapter / "adapter_model.bin")
    with pytest.raises(ModelLoadError, match=r"only pickle-based weights \(adapter_model.bin\)"):
        load_pair(str(tiny["model"]), str(adapter), CPU)
    allowed = load_pair(str(tiny["model"]), str(adapter), LoadOptions(device="cpu",
                                                                        allow_pickle=True))
    reference = load_pair(str(tiny["model"]), str(tiny["adapter"]), CPU)
    assert allowed.candidate.generate(PROMPTS, SETTINGS) == \
        reference.candidate.generate(PROMPTS, SETTINGS)


def test_safetensors_win_when_both_formats_are_there(tiny: dict[str, Path],
                                                     tmp_path: Path) -> None:
    marker = tmp_path / "pickle-ran"
    both = poisoned_checkpoint(tiny, tmp_path / "both", marker)
    shutil.copy(tiny["model"] / "model.safetensors", both)
    for options in (CPU, LoadOptions(device="cpu", allow_pickle=True)):
        backend = load_backend(str(both), options)
        assert backend.generate(PROMPTS[:2], SETTINGS)
    assert not marker.exists()


def test_allow_pickle_reaches_the_loader_from_the_pytest_option(
        pytester: pytest.Pytester, tiny: dict[str, Path]) -> None:
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites" / "s.yaml").write_text(VALID_SUITE, encoding="utf-8")
    models = ["--probe-base", str(tiny["model"]), "--probe-candidate", str(tiny["pickled"]),
              "-p", "no:cacheprovider", "--probe-no-cache"]
    refused = pytester.runpytest("suites", *models)
    assert refused.ret == 3  # one ModelLoadError line ends the session (issue 14)
    refused.stdout.fnmatch_lines(["*only pickle-based weights*pass --probe-allow-pickle*"])
    allowed = pytester.runpytest("suites", *models, "--probe-allow-pickle")
    assert allowed.parseoutcomes().get("errors", 0) == 0
    assert "only pickle-based weights" not in allowed.stdout.str()
    assert allowed.parseoutcomes().get("failed", 0) + allowed.parseoutcomes().get("passed", 0) == 3


REMOTE_CODE = """\
import pathlib
pathlib.Path({marker!r}).touch()
from transformers import PretrainedConfig


class EvilConfig(PretrainedConfig):
    model_type = "evil-probe-test"
"""

LOADER = """\
import sys
from probe.backends import LoadOptions
from probe.backends.hf import load_backend
from probe.errors import ModelLoadError
try:
    load_backend(sys.argv[1], LoadOptions(device="cpu", trust_remote_code=sys.argv[2] == "1"))
except ModelLoadError as err:
    print(err)
"""


def remote_code_model(root: Path, marker: Path) -> Path:
    model = root / "evil-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({
        "model_type": "evil-probe-test", "vocab_size": 10,
        "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilLM",
                     "AutoModelForSequenceClassification": "evil.EvilLM"}}))
    (model / "evil.py").write_text(REMOTE_CODE.format(marker=str(marker)))
    return model


def test_a_models_own_code_runs_only_with_the_option(tmp_path: Path) -> None:
    marker = tmp_path / "remote-code-ran"
    model = remote_code_model(tmp_path, marker)
    # A separate process, so transformers copies the module into a throwaway cache.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_MODULES_CACHE": str(tmp_path / "mods")}

    def load(trust: str) -> str:
        done = subprocess.run([sys.executable, "-c", LOADER, str(model), trust], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout

    refused = load("0")
    assert "ships its own code: if you trust it, pass trust_remote_code=True" in refused
    assert not marker.exists()
    trusted = load("1")
    assert marker.exists()  # the option really reaches from_pretrained
    assert "its own code failed" in trusted  # and its failure is a clear error


def test_a_suite_cannot_make_a_classifier_run_its_own_code(tmp_path: Path) -> None:
    from probe.detectors import make_detector

    marker = tmp_path / "remote-code-ran"
    model = remote_code_model(tmp_path, marker)
    text = VALID_SUITE.replace("detector: {type: pattern, any: [Paris]}",
                               f"detector: {{type: classifier, path: '{model}', label: x}}")
    suite = parse_suite(text, "s.yaml")
    detector = make_detector(suite.detector_for(suite.probes[0]))  # type: ignore[arg-type]
    with pytest.raises(ModelLoadError):
        detector.score_many(["Paris."])
    assert not marker.exists()


TOUCH_TAG = "!!python/object/apply:os.system ['touch {marker}']"


def test_a_suite_tag_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "tag-ran"
    for tag in (TOUCH_TAG.format(marker=marker),
                f"!!python/object/new:pathlib.Path ['{marker}']",
                "!!python/name:os.system"):
        with pytest.raises(SpecError, match="is not allowed; suites carry data only"):
            parse_suite(VALID_SUITE.replace("name: capitals", f"name: {tag}"), "s.yaml")
    assert not marker.exists()


def test_a_scripted_model_file_is_read_as_data_only(tmp_path: Path) -> None:
    from probe.backends.scripted import load_script

    marker = tmp_path / "script-ran"
    script = write_script(tmp_path / "m.yaml", "m", [])
    script.write_text(script.read_text().replace(
        "name: m", "name: " + TOUCH_TAG.format(marker=marker)))
    with pytest.raises(ModelLoadError, match="is not allowed; suites carry data only"):
        load_script(script)
    assert not marker.exists()


@pytest.mark.parametrize("ref", ["pickled"])
def test_the_refusal_happens_before_weights_are_read(tiny: dict[str, Path], ref: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoModelForCausalLM

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("from_pretrained was called")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", refuse)
    with pytest.raises(ModelLoadError, match="pickle"):
        load_backend(str(tiny[ref]), CPU)




# --- detectors and the meaning check: local model directories never run code -----------

LOCAL_LOADERS = """\
import sys
from probe.errors import ModelLoadError


def classifier(model):
    from probe.detectors.classifier import ClassifierDetector, ClassifierParams
    ClassifierDetector(ClassifierParams(path=model, label="x")).score_many(["Paris."])


def embedding(model):
    from probe.detectors.embedding import EmbeddingDetector, EmbeddingParams
    EmbeddingDetector(EmbeddingParams(exemplars=("Paris.",), model=model)).score_many(["Paris."])


def meaning(model):
    from probe.engine.meaning import similarities
    similarities("What is the capital of France?", ["Which city is France's capital?"], model)


def live(model):
    # transformers itself, trust_remote_code unset: proof that the "y" on stdin would
    # have been read, and the code run, by any loader that left it unset.
    from transformers import AutoConfig
    try:
        AutoConfig.from_pretrained(model, local_files_only=True)
    except Exception:
        pass


for name, model in zip(sys.argv[1::2], sys.argv[2::2]):
    try:
        globals()[name](model)
        print(f"{name}: loaded")
    except ModelLoadError as err:
        print(f"{name}: {err}")
"""


def test_detectors_and_the_meaning_check_never_run_a_models_code_nor_read_stdin(
        tmp_path: Path) -> None:
    """Each loader gets a directory whose auto_map points at code that leaves a marker,
    with "y" waiting on standard input (transformers' question when trust_remote_code
    is unset): no marker appears, and each refusal is one line."""
    loaders = ("classifier", "embedding", "meaning")
    markers = {name: tmp_path / f"{name}-ran" for name in (*loaders, "live")}
    args = []
    for name, marker in markers.items():
        (tmp_path / name).mkdir()
        args += [name, str(remote_code_model(tmp_path / name, marker))]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_MODULES_CACHE": str(tmp_path / "mods")}
    done = subprocess.run([sys.executable, "-c", LOCAL_LOADERS, *args], env=env,
                          input="y\n" * 8, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert markers["live"].exists(), "the planted code is not live: the test proves nothing"
    lines = done.stdout.splitlines()
    for name in loaders:
        assert not markers[name].exists(), f"{name}: the model's own code ran"
        (line,) = [x for x in lines if x.startswith(f"{name}: ")]
        assert "the model ships its own code (auto_map in config.json)" in line, line
    # Only transformers' own call asked; the loaders never did.
    assert done.stdout.count("Do you wish to run the custom code") == 1, done.stdout
    assert len([x for x in lines if x.startswith(loaders)]) == 3, done.stdout


def test_every_load_passes_trust_remote_code_false(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Spelled out, not left to a default: a directory without auto_map still loads with
    ``trust_remote_code=False`` (and offline)."""
    import transformers

    from probe import embeddings
    from probe.detectors import classifier

    seen: list[tuple[str, dict[str, object]]] = []

    def recorder(owner: str) -> object:
        def from_pretrained(*args: object, **kwargs: object) -> None:
            seen.append((owner, kwargs))
            raise OSError("stop here")

        return from_pretrained

    for owner in ("AutoTokenizer", "AutoModel", "AutoModelForSequenceClassification"):
        monkeypatch.setattr(getattr(transformers, owner), "from_pretrained", recorder(owner))
    model = tmp_path / "plain"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "bert"}))
    classifier.clear_cache()
    embeddings.clear_cache()
    with pytest.raises(ModelLoadError, match=r"cannot load the classifier in .*: stop here"):
        classifier.get_classifier(str(model))
    with pytest.raises(ModelLoadError, match=r"cannot load the embedding model in .*: stop here"):
        embeddings.get_encoder(str(model))
    assert [owner for owner, _ in seen] == ["AutoTokenizer", "AutoTokenizer"]
    assert all(kw["trust_remote_code"] is False and kw["local_files_only"] is True
               for _, kw in seen)


@pytest.mark.parametrize(("config", "weights", "load", "message"), [
    ({"model_type": "no-such-architecture"}, None, "classifier",
     "cannot load the classifier in "),
    ({"model_type": "bert"}, b"\x80\x04not a pickle", "embedding",
     "cannot load the embedding model in "),
])
def test_a_model_directory_that_does_not_load_is_one_line(
        tmp_path: Path, config: dict[str, str], weights: bytes | None, load: str,
        message: str) -> None:
    from probe import embeddings
    from probe.detectors import classifier

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(config))
    if weights is not None:
        (model / "pytorch_model.bin").write_bytes(weights)
    get = classifier.get_classifier if load == "classifier" else embeddings.get_encoder
    with pytest.raises(ModelLoadError) as err:
        get(str(model))
    assert message in str(err.value), str(err.value)
    assert "\n" not in str(err.value), str(err.value)
