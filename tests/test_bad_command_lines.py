"""Every misuse of the command line is a usage error (exit 4) whose message says the fix,
found before any heavy work: the pytest options, the ``probe`` command, and model pairs
that do not belong together (checked on tiny random models)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hf_fixtures import CORPUS, CPU, _tokenizer

from probe.backends.hf import load_pair
from probe.cli import EXIT_USAGE, main
from probe.errors import ModelMismatchError, UsageError
from tests.conftest import VALID_SUITE, write_script

pytest_plugins = ["hf_fixtures"]

SCRIPTED = ["--probe-base", "scripted:m.yaml", "--probe-candidate", "scripted:m.yaml"]

# (extra pytest arguments, a fragment of the message that says the fix)
PYTEST_MISUSES = [
    (["--probe-base", "scripted:m.yaml"], "--probe-candidate is missing; for example: pytest"),
    ([], "--probe-base and --probe-candidate are missing; for example"),
    ([*SCRIPTED, "--probe-seed", "x"], "--probe-seed: must be an integer, not 'x'"),
    ([*SCRIPTED, "--probe-batch-size", "0"], "--probe-batch-size: must be a positive integer"),
    ([*SCRIPTED, "--probe-batch-size", "-3"], "--probe-batch-size: must be a positive integer"),
    ([*SCRIPTED, "--probe-batch-size", "lots"],
     "--probe-batch-size: must be a positive integer or auto, not 'lots'"),
    ([*SCRIPTED, "--probe-alpha", "0"], "--probe-alpha: must be between 0 and 1, for example"),
    ([*SCRIPTED, "--probe-alpha", "lots"],
     "--probe-alpha: must be a number between 0 and 1, not 'lots'"),
    ([*SCRIPTED, "--probe-on-inconclusive", "maybe"],
     "--probe-on-inconclusive: must be one of fail, pass, xfail, not 'maybe'"),
    ([*SCRIPTED, "--probe-device", "toaster"], "'toaster' is not a device; use auto, cpu, cuda"),
    ([*SCRIPTED, "--probe-dtype", "fp8"], "unknown dtype 'fp8'; choose one of auto, float32"),
    ([*SCRIPTED, "--probe-no-cache", "--probe-cache-dir", "x"], "contradict each other; give"),
    ([*SCRIPTED, "--probe-cache-dir", "m.yaml"], "m.yaml is a file, so the completion cache"),
    (["--probe-base", "./no/model", "--probe-candidate", "scripted:m.yaml"],
     "--probe-base: model path './no/model' does not exist. Give a local directory"),
    (["--probe-base", "scripted:m.yaml", "--probe-candidate", "smollm2-135m"],
     "must both be scripted: models or both real models"),
    (["--probe-base", "scripted:gone.yaml", "--probe-candidate", "scripted:m.yaml"],
     "scripted model file 'gone.yaml' does not exist"),
    (["--probe-base", "adapter", "--probe-candidate", "adapter"],
     "--probe-base 'adapter' is a peft adapter; give the model it was trained on"),
]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites" / "s.yaml").write_text(VALID_SUITE, encoding="utf-8")
    write_script(pytester.path / "m.yaml", "m", [])
    (pytester.path / "adapter").mkdir()
    (pytester.path / "adapter" / "adapter_config.json").write_text("{}")
    return pytester


@pytest.mark.parametrize(("args", "fix"), PYTEST_MISUSES)
def test_pytest_misuse_is_a_usage_error_that_says_the_fix(project: pytest.Pytester,
                                                          args: list[str], fix: str) -> None:
    result = project.runpytest("suites", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert fix in result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


CLI_MISUSES = [
    (["run", "suites", "--base", "scripted:m.yaml"], "--candidate is missing; for example: "
                                                     "probe run suites/"),
    (["run", "suites", "--bse", "scripted:m.yaml"], "unrecognized arguments: --bse "
                                                    "scripted:m.yaml. Did you mean '--base'?"),
    (["run", "suites", "--base", "scripted:m.yaml", "--candidate", "scripted:m.yaml",
      "--batch-size", "0"], "--batch-size: must be a positive"),
    (["run", "suites", "--base", "scripted:m.yaml", "--candidate", "scripted:m.yaml",
      "--batch-size", "lots"], "--batch-size: must be a positive integer or auto"),
    (["run", "suites", "--base", "scripted:m.yaml", "--candidate", "scripted:m.yaml",
      "--device", "toaster"], "--device: 'toaster' is not a device"),
    (["run", "suites", "--base", "scripted:m.yaml", "--candidate", "scripted:m.yaml",
      "--dtype", "fp8"], "--dtype: unknown dtype 'fp8'"),
    (["run", "suites", "--base", "scripted:m.yaml", "--candidate", "scripted:m.yaml",
      "--cache-dir", "m.yaml", ], "pass --no-cache"),
    (["run", "suites", "--base", "scripted:m.yaml", "--candidate", "./nope"],
     "--candidate: model path './nope' does not exist"),
    (["run", "suites", "--base", "scripted:m.yaml", "--candidate", "scripted:m.yaml",
      "--alpha", "2"], "--alpha: must be between 0 and 1"),
    (["run", "suites", "--base", "scripted:m.yaml", "--candidate", "scripted:m.yaml",
      "--seed", "x"], "--seed: must be an integer, not 'x'"),
    (["chek", "suites"], "invalid choice: 'chek' (choose from"),
    (["check", "nowhere"], "nowhere: no such file or directory"),
    (["check", "adapter"], "no suite files (*.yaml) found in adapter"),
    ([], "the following arguments are required: command"),
]


@pytest.mark.parametrize(("argv", "fix"), CLI_MISUSES)
def test_probe_misuse_is_a_usage_error_that_says_the_fix(
        project: pytest.Pytester, capsys: pytest.CaptureFixture[str], argv: list[str],
        fix: str) -> None:
    capsys.readouterr()
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert fix in err
    assert "--probe-" not in err  # the probe command's own option names
    assert "Traceback" not in err


# --- pairs that do not belong together: refused before any weights load -----------------

@pytest.fixture
def no_weight_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoModelForCausalLM

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("weights were loaded before the pair was checked")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", refuse)


def other_tokenizer_checkpoint(tiny: dict[str, Path], out: Path) -> Path:
    shutil.copytree(tiny["model"], out)
    _tokenizer([s.upper() for s in CORPUS]).save_pretrained(out)  # another vocabulary
    return out


@pytest.mark.usefixtures("no_weight_loading")
def test_adapter_for_another_base_is_refused_before_loading(tiny: dict[str, Path]) -> None:
    with pytest.raises(ModelMismatchError, match=r"maps 48 -> 48 features in the adapter but "
                                                 r"32 -> 32 in the base") as info:
        load_pair(str(tiny["model"]), str(tiny["other_adapter"]), CPU)
    assert isinstance(info.value, UsageError)


@pytest.mark.usefixtures("no_weight_loading")
def test_adapter_for_another_architecture_is_refused_before_loading(
        tiny: dict[str, Path], tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    adapter = tmp_path / "gpt2-adapter"
    shutil.copytree(tiny["adapter"], adapter)
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    save_file({k.replace("self_attn.q_proj", "attn.c_attn").replace("self_attn.v_proj",
                                                                     "attn.c_proj"): v
               for k, v in weights.items()}, str(adapter / "adapter_model.safetensors"))
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "gpt2"
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelMismatchError, match=r"none of its 4 modules .* exist in the base, "
                                                 r"so it was made for another architecture "
                                                 r"\(its adapter_config.json names 'gpt2'"):
        load_pair(str(tiny["model"]), str(adapter), CPU)


@pytest.mark.usefixtures("no_weight_loading")
def test_candidate_with_another_tokenizer_is_refused_before_loading(
        tiny: dict[str, Path], tmp_path: Path) -> None:
    candidate = other_tokenizer_checkpoint(tiny, tmp_path / "other-vocab")
    with pytest.raises(ModelMismatchError, match=r"the tokenizers of base .* and candidate .* "
                                                 r"differ; e.g. token .* the same prompt would "
                                                 r"be different input to each model"):
        load_pair(str(tiny["model"]), str(candidate), CPU)


@pytest.mark.usefixtures("no_weight_loading")
def test_bare_checkpoint_with_another_vocabulary_size_is_refused(tiny: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    config = json.loads((tiny["model"] / "config.json").read_text())
    config["vocab_size"] += 10
    (bare / "config.json").write_text(json.dumps(config))
    shutil.copy(tiny["model"] / "model.safetensors", bare)
    with pytest.raises(ModelMismatchError, match=r"has no tokenizer of its own and a vocabulary "
                                                 rf"of {config['vocab_size']} tokens"):
        load_pair(str(tiny["model"]), str(bare), CPU)


def test_a_wrong_pair_exits_4_from_pytest_and_from_probe_run(
        project: pytest.Pytester, tiny: dict[str, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    candidate = other_tokenizer_checkpoint(tiny, tmp_path / "other-vocab")
    for cand, fix in ((tiny["other_adapter"], "was trained on a different base model"),
                      (candidate, "Use checkpoints of the same base model")):
        result = project.runpytest("suites", "-p", "no:cacheprovider", "--probe-base",
                                   str(tiny["model"]), "--probe-candidate", str(cand))
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        output = result.stdout.str() + result.stderr.str()
        assert fix in output
        assert "Traceback" not in output
        capsys.readouterr()
        assert main(["run", "suites", "--base", str(tiny["model"]), "--candidate", str(cand),
                     "--no-cache"]) == EXIT_USAGE
        assert fix in capsys.readouterr().err


def test_a_device_this_machine_lacks_exits_4_once_models_are_looked_at(
        project: pytest.Pytester, tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on CI, everywhere
    models = ["--probe-base", str(tiny["model"]), "--probe-candidate", str(tiny["adapter"])]
    result = project.runpytest("suites", "-p", "no:cacheprovider", "--probe-device", "cuda",
                               "--probe-no-cache", *models)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "CUDA is not available on this machine; use --probe-device cpu" in (
        result.stdout.str() + result.stderr.str())
    capsys.readouterr()
    assert main(["run", "suites", "--base", str(tiny["model"]), "--candidate",
                 str(tiny["adapter"]), "--device", "cuda", "--no-cache"]) == EXIT_USAGE
    assert "CUDA is not available on this machine; use --device cpu" in capsys.readouterr().err
