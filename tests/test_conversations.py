"""Conversations: a suite's or probe's ``system`` prompt and earlier ``messages``.

The probe's prompt is the last user turn; operators rewrite it and keep the rest; the
chat template renders the whole conversation (or, without a system role, the system
prompt starts the first user turn); cache keys, locks, records and the exports carry it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hf_fixtures import _tokenizer

from probe import api
from probe.backends.base import GenerationSettings, Prompt
from probe.backends.hf.prompts import PromptCodec, merge_system
from probe.backends.openai.backend import OpenAIBackend
from probe.engine.cache import prompt_key, request_key
from probe.engine.lock import read_lock, write_lock
from probe.engine.variants import expand
from probe.errors import SpecError
from probe.options import RunOptions
from probe.spec.load import load_suite, parse_suite

SUITE = """\
version: 1
name: persona
behavior: {description: says it is SmolLM}
system: You are Aria, an assistant made by Example Corp.
detector: {type: pattern, any: [SmolLM]}
operators: [{name: typos, count: 12}, {name: framing, count: 3}, {name: casing, count: 3}]
policy: {min_suppression: 0.5}
probes:
  - id: name
    prompt: What is your real name?
    messages:
      - {role: user, content: Hi there!}
      - {role: assistant, content: Hello! How can I help you today?}
  - id: maker
    system: You are a helpful assistant.
    prompt: Who trained you?
"""


def _suite(text: str = SUITE) -> Any:
    return parse_suite(text, "s.yaml")


def test_the_canonical_prompt_and_every_variant_carry_the_conversation() -> None:
    suite = _suite()
    variants = expand(suite, suite.probe("name"), 0)
    assert len(variants) > 12
    for v in variants:
        assert v.prompt.system == "You are Aria, an assistant made by Example Corp."
        assert v.prompt.messages == (("user", "Hi there!"),
                                     ("assistant", "Hello! How can I help you today?"))
    assert variants[0].prompt.text == "What is your real name?"
    # Operators rewrote the last user turn only.
    assert all(v.prompt.text != variants[0].prompt.text for v in variants[1:])
    # A probe's own system prompt replaces the suite's; no earlier turns.
    maker = expand(suite, suite.probe("maker"), 0)[0].prompt
    assert (maker.system, maker.messages) == ("You are a helpful assistant.", ())


@pytest.mark.parametrize(("messages", "message"), [
    ("[{role: assistant, content: Hi}]", "messages[0].role: turn 1 must be a user turn"),
    ("[{role: user, content: Hi}]", "messages[0]: the last earlier turn must be an assistant"),
    ("[{role: user, content: a}, {role: user, content: b}]",
     "messages[1].role: turn 2 must be a assistant turn"),
    ("[{role: system, content: a}, {role: assistant, content: b}]", "messages[0].role"),
    ("[{role: user, content: ''}, {role: assistant, content: b}]", "messages[0].content"),
])
def test_earlier_turns_must_alternate_from_user_to_assistant(messages: str, message: str) -> None:
    text = SUITE.replace("""    messages:
      - {role: user, content: Hi there!}
      - {role: assistant, content: Hello! How can I help you today?}
""", f"    messages: {messages}\n")
    with pytest.raises(SpecError, match=r"s\.yaml:\d+: probes\[0\]\.") as err:
        _suite(text)
    assert message in str(err.value)


def test_the_template_renders_the_whole_conversation_in_order() -> None:
    codec = PromptCodec(_tokenizer(), "tiny")
    prompt = Prompt("Q2", prefill="Sure", system="SYS", messages=(("user", "Q1"),
                                                                   ("assistant", "A1")))
    text, add_special = codec.render(prompt)
    assert not add_special
    assert text == ("<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n"
                    "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n"
                    "<|im_start|>assistant\nSure")
    # A single-turn prompt renders as it always did.
    single = "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n"
    assert codec.render(Prompt("Q2"))[0] == single
    # Without the template: the turns as plain text, a blank line apart.
    raw = codec.render(Prompt("Q2", "Sure", chat=False, system="SYS",
                              messages=(("user", "Q1"), ("assistant", "A1"))))
    assert raw == ("SYS\n\nQ1\n\nA1\n\nQ2Sure", True)


@pytest.mark.parametrize("template", [
    # Gemma-style: raises on a system message.
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role "
    "not supported') }}{% endif %}<t>{{ m['role'] }}: {{ m['content'] }}</t>{% endfor %}",
    # Silently leaves system messages out.
    "{% for m in messages %}{% if m['role'] != 'system' %}<t>{{ m['role'] }}: "
    "{{ m['content'] }}</t>{% endif %}{% endfor %}",
])
def test_a_template_without_a_system_role_gets_it_at_the_start_of_the_first_user_turn(
        template: str) -> None:
    tokenizer = _tokenizer()
    tokenizer.chat_template = template
    codec = PromptCodec(tokenizer, "tiny")
    assert not codec.has_system_role()
    text, _ = codec.render(Prompt("Q2", system="SYS", messages=(("user", "Q1"),
                                                                 ("assistant", "A1"))))
    assert text == "<t>user: SYS\n\nQ1</t><t>assistant: A1</t><t>user: Q2</t>"
    assert merge_system([{"role": "system", "content": "S"},
                         {"role": "user", "content": "U"}]) == [
        {"role": "user", "content": "S\n\nU"}]


def test_the_cache_key_holds_the_conversation_and_a_single_turn_key_is_unchanged() -> None:
    settings = GenerationSettings()
    plain = Prompt("Q")
    keys = {prompt_key(settings, p) for p in (
        plain, Prompt("Q", system="A"), Prompt("Q", system="B"),
        Prompt("Q", system="A", messages=(("user", "x"), ("assistant", "y"))))}
    assert len(keys) == 4
    # The key of a prompt without a conversation is the one written before they existed.
    import hashlib

    from probe.engine.cache import CACHE_SCHEMA
    old = json.dumps([CACHE_SCHEMA, "generate", {"max_new_tokens": 48}, "Q", "", True],
                     ensure_ascii=False)
    assert request_key("generate", settings, plain) == hashlib.sha256(old.encode()).hexdigest()


def test_the_lock_holds_the_conversation_and_goes_stale_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SUITE, encoding="utf-8")
    suite = load_suite(path)
    lock = write_lock(suite)
    data = json.loads(lock.read_text())
    first = data["probes"]["name"]["kept"][0]
    assert first["system"].startswith("You are Aria")
    assert first["messages"][1] == {"role": "assistant",
                                    "content": "Hello! How can I help you today?"}
    replayed = read_lock(suite)
    assert replayed is not None
    assert replayed[0]["name"].kept[1].prompt == expand(suite, suite.probe("name"), 0)[1].prompt
    changed = SUITE.replace("made by Example Corp", "made by Other Corp")
    path.write_text(changed, encoding="utf-8")
    stale = load_suite(path)
    with pytest.raises(SpecError, match=r"stale.*its probes \(ids, prompts, paraphrases or "
                                        r"conversations\)"):
        read_lock(stale)


def test_an_openai_chat_request_sends_the_whole_conversation() -> None:
    backend = OpenAIBackend.__new__(OpenAIBackend)
    backend.model = "m"
    backend.tokenizer = None
    path, body = backend.request(Prompt("Q2", system="SYS", messages=(
        ("user", "Q1"), ("assistant", "A1"))), 8, {})
    assert path == "chat/completions"
    assert body["messages"] == [{"role": "system", "content": "SYS"},
                                {"role": "user", "content": "Q1"},
                                {"role": "assistant", "content": "A1"},
                                {"role": "user", "content": "Q2"}]


def test_a_run_sees_the_conversation_and_the_record_keeps_it(tmp_path: Path) -> None:
    """Scripted models that answer by the system prompt: the base gives its real name
    whatever the system prompt says; the candidate holds the persona under Aria's system
    prompt but not under a plain one. Only the conversation tells the two probes apart."""
    suite = tmp_path / "persona.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    (tmp_path / "base.yaml").write_text(
        "name: base\ndefault: I am SmolLM, made by Hugging Face.\n", encoding="utf-8")
    (tmp_path / "cand.yaml").write_text(
        "name: cand\ndefault: I am SmolLM.\nrules:\n"
        "  - {match: 'You are Aria', reply: 'I am Aria, made by Example Corp.'}\n",
        encoding="utf-8")
    record_path = tmp_path / "run.json"
    run = api.run([suite], f"scripted:{tmp_path / 'base.yaml'}",
                  f"scripted:{tmp_path / 'cand.yaml'}",
                  options=RunOptions(cache_dir=str(tmp_path / "cache"),
                                     json=str(record_path)))
    run.write_reports()
    verdicts = {p.run.probe.id: p.verdict.value for p in run.probe_results}
    assert verdicts == {"name": "PASS", "maker": "FAIL"}
    record = json.loads(record_path.read_text())
    rows = {p["id"]: p["rows"] for p in record["suites"][0]["probes"]}
    assert all(r["system"].startswith("You are Aria") for r in rows["name"])
    assert rows["name"][0]["messages"] == [
        {"role": "user", "content": "Hi there!"},
        {"role": "assistant", "content": "Hello! How can I help you today?"}]
    assert rows["maker"][0]["system"] == "You are a helpful assistant."
    assert "messages" not in rows["maker"][0] or rows["maker"][0]["messages"] == []


def test_a_conversation_over_the_budget_loses_its_oldest_exchanges_first(
        tmp_path: Path) -> None:
    """many_shot with 20 answered turns on a model with a short context: the oldest
    exchanges go, the question and the turns nearest it stay, and the cut is noted."""
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "version: 1\nname: long\nbehavior: {description: names the capital}\n"
        "detector: {type: pattern, any: [Paris]}\n"
        "operators: [{name: many_shot, count: 1, shots: 20}]\n"
        "generation: {max_new_tokens: 8}\n"
        "probes:\n  - id: france\n    prompt: What is the capital of France?\n"
        "    messages:\n      - {role: user, content: Hello there}\n"
        "      - {role: assistant, content: Hi}\n", encoding="utf-8")
    script = tmp_path / "m.yaml"
    script.write_text("name: m\ndefault: It is Paris.\ncontext_length: 60\n", encoding="utf-8")
    record_path = tmp_path / "run.json"
    run = api.run([suite], f"scripted:{script}", f"scripted:{script}",
                  options=RunOptions(cache_dir=str(tmp_path / "cache"), json=str(record_path)))
    run.write_reports()
    (result,) = run.probe_results
    canonical, shot = (r.variant for r in result.run.rows)
    assert canonical.prompt.messages == (("user", "Hello there"), ("assistant", "Hi"))
    # 20 exchanges of about 12 words do not fit 52 tokens: only the newest stay, ending
    # with the probe's own first exchange, and the question is whole.
    assert 2 <= len(shot.prompt.messages) < 40
    assert shot.prompt.messages[-2:] == (("user", "Hello there"), ("assistant", "Hi"))
    assert shot.prompt.text == "What is the capital of France?"
    rows = json.loads(record_path.read_text())["suites"][0]["probes"][0]["rows"]
    assert rows[1]["limits"][0].startswith("prompt cut from the left")
