"""A judge detector served over the OpenAI API (``engine: openai``), the documented choice
for a judge stronger than the embedded model: its answers are cached on disk only with a
``revision``, as the models under test are."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI

import probe
from probe.backends.scripted import Rule, Script, ScriptedBackend
from probe.detectors.judge import clear_cache
from tests.conftest import write_script

JUDGE = Script("judge", "NO", (Rule(r"reply:\s*<<<[^>]*Paris", "YES"),))
SUITE = """\
version: 1
name: capitals-served-judge
behavior:
  description: names the capital of France
detector:
  type: judge
  rubric: Does the reply name Paris?
  model: judge-model
  engine: openai
  server_url: {url}
  {revision}
  examples:
    - {{completion: Paris., hit: true}}
    - {{completion: No idea., hit: false}}
probes:
  - id: france
    prompt: What is the capital of France?
    paraphrases: [Which city is the capital of France?]
"""


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    clear_cache()
    with FakeOpenAI({"judge-model": ScriptedBackend(JUDGE)}) as server:
        yield server
    clear_cache()


def _run(root: Path) -> probe.Run:
    options = probe.RunOptions(cache_dir=str(root / "cache"), on_inconclusive="pass")
    return probe.run(["suite.yaml"], "scripted:base.yaml", "scripted:cand.yaml",
                     options=options)


@pytest.mark.parametrize(("revision", "asked_again"), [("revision: r1", 0), ("", 4)])
def test_a_served_judge_is_cached_only_with_a_revision(
        fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, revision: str,
        asked_again: int) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suite.yaml").write_text(SUITE.format(url=fake.url, revision=revision),
                                         encoding="utf-8")
    write_script(tmp_path / "base.yaml", "b", [(".", "Paris.")])
    write_script(tmp_path / "cand.yaml", "c", [(".", "I cannot say.")])
    first = _run(tmp_path)
    (figure,) = first.suite_result("suite.yaml").judges
    assert (figure.agreed, len(figure.examples)) == (2, 2)
    assert first.probe_result("suite.yaml", "france").run.rows[0].base.hit == 1.0
    asked = fake.posts("/chat/completions")
    # Two examples and two distinct completions ("Paris." is an example's text too, but
    # the probe's question makes its judge prompt another one).
    assert len(asked) == 4
    assert all(body["temperature"] == 0 for body in asked)
    clear_cache()  # a new process
    _run(tmp_path)
    assert len(fake.posts("/chat/completions")) == 4 + asked_again
