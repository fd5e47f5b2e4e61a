"""Engines are found by name: the built-ins, and a third party's through the entry point
group ``probe.backends``; one option (``--probe-engine``, ini ``probe_engine``,
``probe run --engine``, ``RunOptions(engine=...)``) chooses, with did-you-mean errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import probe
from probe.backends import ENGINES, LoadOptions, check_models, engine_for
from probe.errors import UsageError
from tests.plugin.conftest import lay_out

REPO = Path(__file__).resolve().parents[2]

# A third party's engine, installed as a distribution with an entry point: it answers
# like the scripted double, from the files named MODEL.yaml.
_ENGINE_MODULE = '''
from probe.backends.engines import Engine
from probe.backends.scripted import load_script
from probe.backends.base import ModelPair


class EchoEngine(Engine):
    name = "echo"

    def load_pair(self, base, candidate, options):
        return ModelPair(self.load_backend(base, options), self.load_backend(candidate, options))

    def load_backend(self, ref, options):
        return load_script(ref + ".yaml")


ENGINE = EchoEngine()
'''


def _install_echo_engine(site: Path) -> None:
    site.mkdir()
    (site / "echo_engine.py").write_text(_ENGINE_MODULE, encoding="utf-8")
    info = site / "echo_engine-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-engine\nVersion: 0.1\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text("[probe.backends]\necho = echo_engine:ENGINE\n",
                                           encoding="utf-8")


def _probe(args: list[str], cwd: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "probe.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_built_in_engines_are_registered_without_importing_them() -> None:
    code = ("import sys; from probe.backends import ENGINES; print(ENGINES.names()); "
            "print(sorted(m for m in ('torch', 'vllm', 'probe.backends.vllm', "
            "'probe.backends.openai', 'probe.backends.hf.backend') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out[0] == "['hf', 'openai', 'scripted', 'vllm']"
    assert out[1] == "[]"


def test_a_third_party_engine_is_found_through_its_entry_point(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    lay_out(tmp_path / "project")
    _install_echo_engine(tmp_path / "site")
    leaky = _probe(["run", "suites/", "--engine", "echo", "--base", "base",
                    "--candidate", "leaky", "--no-cache"], tmp_path / "project", tmp_path / "site")
    assert leaky.returncode == 1, leaky.stderr
    assert "FAIL: probe 'france'" in leaky.stdout
    robust = _probe(["run", "suites/", "--engine", "echo", "--base", "base",
                     "--candidate", "robust", "--no-cache", "--on-inconclusive", "pass"],
                    tmp_path / "project",
                    tmp_path / "site")
    assert robust.returncode == 0, robust.stdout + robust.stderr
    typo = _probe(["run", "suites/", "--engine", "ecko", "--base", "base",
                   "--candidate", "robust"], tmp_path / "project", tmp_path / "site")
    assert typo.returncode == 4
    assert ("error: --engine: unknown engine 'ecko'; choose auto or one of echo, hf, openai, "
            "scripted, vllm. Did you mean 'echo'?") in typo.stderr
    assert "Traceback" not in typo.stderr


def test_auto_picks_scripted_for_scripted_files_and_hf_otherwise() -> None:
    assert engine_for(LoadOptions(), "scripted:a.yaml", "scripted:b.yaml").name == "scripted"
    assert engine_for(LoadOptions(), "smollm2-135m", "models/demo-adapter").name == "hf"
    assert ENGINES.get("hf") is engine_for(LoadOptions(engine="hf"), "x", "y")


@pytest.mark.parametrize(("engine", "refs", "message"), [
    ("auto", ("scripted:base.yaml", "smollm2-135m"),
     "base and candidate must both be scripted: models or both real models"),
    ("vllm", ("scripted:base.yaml", "scripted:leaky.yaml"),
     "engine vllm runs real models, not 'scripted:base.yaml'"),
    ("scripted", ("smollm2-135m", "models/demo-adapter"),
     "engine scripted needs scripted:FILE.yaml for every model"),
    ("hf", ("./no/such/dir", "smollm2-135m"), "base: model path './no/such/dir' does not exist"),
    ("hf", ("models/demo-adapter", "smollm2-135m"), "is a peft adapter; give the model it was"),
])
def test_references_that_do_not_suit_the_engine_are_usage_errors(
        engine: str, refs: tuple[str, str], message: str, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    lay_out(tmp_path)
    monkeypatch.chdir(tmp_path)  # the scripted files; the real references are made absolute
    base, candidate = (r if r.startswith(("scripted:", "./")) or r == "smollm2-135m"
                       else str(REPO / r) for r in refs)
    with pytest.raises(UsageError) as caught:
        check_models(base, candidate, LoadOptions(engine=engine))
    assert message in str(caught.value)


def test_the_option_is_spelt_as_each_front_end_takes_it(pytester: pytest.Pytester) -> None:
    lay_out(pytester.path)
    result = pytester.runpytest("suites/", "--probe-base", "scripted:base.yaml",
                                "--probe-candidate", "scripted:robust.yaml",
                                "--probe-engine", "vlm", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--probe-engine: unknown engine 'vlm'*Did you mean 'vllm'?"])
    pytester.makeini("[pytest]\nprobe_engine = scripted\n")
    result = pytester.runpytest("suites/", "--probe-base", "scripted:base.yaml",
                                "--probe-candidate", "scripted:leaky.yaml", "-p",
                                "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    with pytest.raises(UsageError, match=r"^engine: unknown engine 'HF'"):
        probe.RunOptions(engine="HF")
