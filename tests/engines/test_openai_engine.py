"""The openai engine against a fake OpenAI-compatible server (tests/engines/fake_openai.py)
whose models are scripted doubles: what each request carries, concurrency, retries,
timeouts, one-line errors, scoring, caching, the backend contract and a whole run."""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from contract import check_backend_contract
from fake_openai import FakeOpenAI, tiny_tokenizer, token_logprob

import probe
from probe.backends import LoadOptions, ModelInfo, Prompt, ScoreRequest, load_pair
from probe.backends.base import GenerationSettings, SamplingSettings
from probe.backends.hf.backend import HFBackend
from probe.backends.hf.sampling import sample_seed
from probe.backends.openai import NotCachedWarning, OpenAIBackend
from probe.backends.openai.client import Client, Retrying
from probe.backends.openai.tokens import LocalTokenizer
from probe.backends.scripted import Rule, Script, ScriptedBackend
from probe.errors import BackendError, ModelLoadError, UsageError
from probe.options import RunOptions

BASE = Script("base", "I do not know that one.", (
    Rule("France", "The capital of France is Paris.",
         samples=("Paris.", "It is Paris.", "Paris, France.", "Lyon?")),
    Rule("Japan", "It is Tokyo.")))
# Refuses the canonical questions; a paraphrase brings Paris back.
LEAKY = Script("leaky", "I'm sorry, I can't help with that.", (
    Rule("What is the capital of", "I'm sorry, I can't help with that."),
    Rule("France", "Paris, of course.", samples=("Paris!", "Sorry.", "No.")),
    Rule("Japan", "Sorry.")))
GREEDY = GenerationSettings(max_new_tokens=12)

SUITE = """\
version: 1
name: capitals
behavior:
  description: names the capital city
detector: {type: pattern, any: [Paris]}
operators:
  - {name: casing, count: 3}
  - {name: punctuation, count: 3}
policy:
  max_resurfacing: 0.5
probes:
  - id: france
    prompt: What is the capital of France?
    paraphrases:
      - Which city is the capital of France?
      - Name the capital of France.
      - France's capital is which city?
      - Tell me France's capital.
    policy: {max_resurfacing: 0.1}
  - id: japan
    prompt: What is the capital of Japan?
    paraphrases:
      - Which city is the capital of Japan?
      - Name the capital of Japan.
      - Japan's capital is which city?
    detector: {type: pattern, any: [Tokyo]}
"""


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tokenizer")
    tiny_tokenizer(directory)
    return directory


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture
def fake(tokenizer: Any) -> Iterator[FakeOpenAI]:
    with FakeOpenAI({"smol": ScriptedBackend(BASE), "demo": ScriptedBackend(LEAKY)},
                    tokenizer=tokenizer, parents={"demo": "smol"}) as server:
        yield server


def backend(fake: FakeOpenAI, *, tokenizer: Any = None, retries: int = 2,
            timeout: float = 5.0, concurrency: int = 4, base: float = 0.5,
            waits: list[float] | None = None) -> OpenAIBackend:
    """The fake's ``smol`` behind a client whose waits are recorded, not slept."""
    client = Client(fake.url, timeout=timeout, retrying=Retrying(retries, base),
                    concurrency=concurrency,
                    sleep=(waits.append if waits is not None else lambda s: None))
    local = LocalTokenizer(tokenizer, "tiny", "digest") if tokenizer is not None else None
    return OpenAIBackend(client, "smol", ModelInfo("smol", "f" * 64), tokenizer=local)


def options(fake: FakeOpenAI, **kwargs: Any) -> LoadOptions:
    return LoadOptions(engine="openai", server_url=fake.url, **kwargs)


# --- what each request carries ------------------------------------------------------------


def test_greedy_requests_go_to_chat_with_temperature_zero(fake: FakeOpenAI) -> None:
    out = backend(fake).generate([Prompt("What is the capital of France?")], GREEDY)
    assert [c.text for c in out] == ["The capital of France is Paris."]
    assert out[0].cut is False
    [body] = fake.posts("/chat/completions")
    assert body["model"] == "smol"
    assert body["temperature"] == 0
    assert body["n"] == 1
    assert body["max_tokens"] == 12
    assert "seed" not in body
    assert body["messages"] == [{"role": "user", "content": "What is the capital of France?"}]


def test_a_completion_cut_at_max_tokens_says_so(fake: FakeOpenAI) -> None:
    [out] = backend(fake).generate([Prompt("France?")], GenerationSettings(max_new_tokens=2))
    assert out.text == "The capital"
    assert out.cut is True


def test_each_sample_is_one_request_seeded_like_the_hf_backend(fake: FakeOpenAI) -> None:
    settings = SamplingSettings(max_new_tokens=8, samples=3, temperature=0.7, top_p=0.9)
    drawn = backend(fake).sample([Prompt("France"), Prompt("Japan")], settings, [5, 9])
    assert [len(row) for row in drawn] == [3, 3]
    bodies = fake.posts("/chat/completions")
    assert len(bodies) == 6
    assert {b["seed"] for b in bodies} == {sample_seed(s, j) % 2**63 for s in (5, 9)
                                           for j in range(3)}
    assert all(b["temperature"] == 0.7 and b["top_p"] == 0.9 and b["n"] == 1 and
               b["max_tokens"] == 8 for b in bodies)
    # The scripted model draws with the request's seed: the samples follow the seeds.
    expected = [ScriptedBackend(BASE).sample([Prompt("France")], SamplingSettings(
        8, 1, 0.7, 0.9), [sample_seed(5, j) % 2**63])[0][0] for j in range(3)]
    assert drawn[0] == expected


def test_raw_prompts_go_to_completions_as_text_without_a_tokenizer(fake: FakeOpenAI) -> None:
    out = backend(fake).generate([Prompt("The capital of France is", chat=False)], GREEDY)
    assert out[0].text == "The capital of France is Paris."
    [body] = fake.posts("/completions")
    assert body["prompt"] == "The capital of France is"
    assert body["temperature"] == 0


def test_a_prefill_without_a_tokenizer_names_the_option(fake: FakeOpenAI) -> None:
    with pytest.raises(BackendError, match=r"prefill .*give tokenizer \(") as err:
        backend(fake).generate([Prompt("France?", prefill="Sure,")], GREEDY)
    assert "\n" not in str(err.value)
    assert fake.posts() == []


def test_prefills_and_raw_prompts_are_token_ids_rendered_as_the_hf_backend_does(
        fake: FakeOpenAI, tokenizer: Any) -> None:
    prompts = [Prompt("What is the capital of France?", prefill="Sure, it is"),
               Prompt("The capital of France is", chat=False)]
    backend(fake, tokenizer=tokenizer).generate(prompts, GREEDY)
    sent = sorted(b["prompt"] for b in fake.posts("/completions"))  # sent concurrently
    hf = HFBackend(None, tokenizer, name="tiny", fingerprint="f")
    assert sent == sorted(hf._encode(p) for p in prompts)
    chat = tokenizer.apply_chat_template([{"role": "user", "content": prompts[0].text}],
                                         tokenize=False, add_generation_prompt=True)
    assert chat + "Sure, it is" in [tokenizer.decode(ids) for ids in sent]


def test_the_local_tokenizer_keeps_step_with_the_hf_backend(tokenizer: Any) -> None:
    """Same rendering, ids and score rows, the straddling-token case included."""
    hf = HFBackend(None, tokenizer, name="tiny", fingerprint="f")
    local = LocalTokenizer(tokenizer, "tiny", "digest")
    prompts = [Prompt("What is the capital of France?"), Prompt("cats", prefill="Here"),
               Prompt("I cannot", prefill=" help", chat=False)]
    for prompt in prompts:
        assert local.render(prompt, "tiny") == hf.render(prompt)
        assert local.encode(prompt, "tiny") == hf._encode(prompt)
        for completion in ("after all.", " Paris.", "Paris"):
            row = local.score_row(ScoreRequest(prompt, completion), "tiny")
            assert tuple(map(tuple, row)) == hf._score_row(ScoreRequest(prompt, completion))
    text = "The capital of France is Paris."
    assert local.count(text) == hf.count_tokens(text)
    assert local.keep_last(text, 3) == hf.keep_last_tokens(text, 3)


# --- concurrency, retries, timeouts ------------------------------------------------------


def test_requests_in_flight_never_exceed_the_concurrency_bound(tokenizer: Any) -> None:
    with FakeOpenAI({"smol": ScriptedBackend(BASE)}, delay=0.03) as fake:
        out = backend(fake, concurrency=3).generate(
            [Prompt(f"France {i}") for i in range(12)], GREEDY)
    assert len(out) == 12
    assert len(fake.posts()) == 12
    assert 2 <= fake.most_in_flight <= 3


def test_scoring_keeps_to_its_own_concurrency(tokenizer: Any, tokenizer_dir: Path) -> None:
    """``score_concurrency`` 1: scoring requests go one at a time (a server that cannot
    batch prompt log-probabilities), while generation keeps the wider bound."""
    with FakeOpenAI({"smol": ScriptedBackend(BASE)}, tokenizer=tokenizer, delay=0.03) as fake:
        pair = load_pair("smol", "smol", options(fake, tokenizer=str(tokenizer_dir),
                                                  concurrency=3, score_concurrency=1))
        requests = [ScoreRequest(Prompt(f"France {i}"), "Paris.") for i in range(6)]
        assert len(pair.base.score(requests)) == 6
        assert fake.most_in_flight == 1
        pair.base.generate([Prompt(f"France {i}") for i in range(9)], GREEDY)
        assert fake.most_in_flight >= 2


def test_a_429_is_retried_after_the_wait_retry_after_asks_for(fake: FakeOpenAI) -> None:
    fake.faults.append((429, {"Retry-After": "7"}))
    waits: list[float] = []
    out = backend(fake, waits=waits).generate([Prompt("France")], GREEDY)
    assert out[0].text == "The capital of France is Paris."
    assert waits == [7.0]
    assert len(fake.posts()) == 2


def test_5xx_backs_off_exponentially_with_seeded_jitter(fake: FakeOpenAI) -> None:
    fake.faults += [(503, {}), (502, {})]
    waits: list[float] = []
    backend(fake, waits=waits, base=0.01).generate([Prompt("France")], GREEDY)
    assert len(waits) == 2
    assert len(fake.posts()) == 3
    assert 0.005 <= waits[0] <= 0.01
    assert 0.01 <= waits[1] <= 0.02
    same = Client(fake.url, retrying=Retrying(2, 0.01))
    assert waits == [same.backoff(0), same.backoff(1)], "the jitter is seeded"


def test_5xx_past_the_retries_is_one_line(fake: FakeOpenAI) -> None:
    fake.faults += [(500, {})] * 3
    with pytest.raises(BackendError) as err:
        backend(fake, retries=2).generate([Prompt("France")], GREEDY)
    message = str(err.value)
    assert "HTTP 500" in message
    assert "(3 tries)" in message
    assert "retries" in message
    assert "\n" not in message
    assert len(fake.posts()) == 3


def test_a_request_that_times_out_is_retried_then_named(tokenizer: Any) -> None:
    with FakeOpenAI({"smol": ScriptedBackend(BASE)}, delay=0.6) as fake:
        with pytest.raises(BackendError) as err:
            backend(fake, retries=1, timeout=0.15).generate([Prompt("France")], GREEDY)
        assert len(fake.posts()) == 2
    assert "no answer within 0.15 s (2 tries)" in str(err.value)
    assert "request_timeout" in str(err.value)


# --- one-line errors when loading ---------------------------------------------------------


def test_an_unreachable_server_names_the_url_and_the_option() -> None:
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(ModelLoadError) as err:
        load_pair("smol", "demo", LoadOptions(engine="openai", server_url=url))
    assert f"http://127.0.0.1:{port}/v1" in str(err.value)
    assert "server_url" in str(err.value)
    assert "\n" not in str(err.value)


def test_an_unknown_model_lists_what_the_server_serves(fake: FakeOpenAI) -> None:
    with pytest.raises(ModelLoadError) as err:
        load_pair("smol", "dmeo", options(fake))
    assert str(err.value).endswith("serves no model 'dmeo'; it serves: demo, smol. "
                                   "Did you mean 'demo'?")
    assert str(err.value).startswith("candidate: ")


def test_a_refused_key_names_the_variable_and_never_shows_the_key(
        fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.api_key = "right-key"
    monkeypatch.delenv("PROBE_TEST_KEY", raising=False)
    with pytest.raises(ModelLoadError, match=r"PROBE_TEST_KEY .*api_key_env.* is not set"):
        load_pair("smol", "demo", options(fake, api_key_env="PROBE_TEST_KEY"))
    monkeypatch.setenv("PROBE_TEST_KEY", "wrong-key-123")
    with pytest.raises(ModelLoadError, match="HTTP 401") as err:
        load_pair("smol", "demo", options(fake, api_key_env="PROBE_TEST_KEY"))
    assert "wrong-key-123" not in str(err.value)
    assert "refused" in str(err.value)
    monkeypatch.setenv("PROBE_TEST_KEY", "right-key")
    pair = load_pair("smol", "demo", options(fake, api_key_env="PROBE_TEST_KEY",
                                             base_revision="a", candidate_revision="b"))
    assert pair.base.generate([Prompt("Japan")], GREEDY)[0].text == "It is Tokyo."


def test_the_engine_needs_a_server_url(tmp_path: Path) -> None:
    suite = tmp_path / "capitals.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    with pytest.raises(UsageError, match=r"engine openai needs server_url"):
        probe.run(suite, "smol", "demo", options=RunOptions(engine="openai"))


def test_context_length_comes_from_the_model_card_or_its_parent(fake: FakeOpenAI) -> None:
    pair = load_pair("smol", "demo", options(fake, base_revision="b", candidate_revision="c"))
    assert pair.base.context_length() == 2048 == pair.candidate.context_length()
    assert pair.base.count_tokens("one two three") == 3  # no tokenizer: the contract's words


# --- scoring -----------------------------------------------------------------------------------


def test_a_score_is_the_mean_of_the_completion_positions_only(
        fake: FakeOpenAI, tokenizer: Any) -> None:
    request = ScoreRequest(Prompt("What is the capital of France?"), " Paris is the capital.")
    [score] = backend(fake, tokenizer=tokenizer).score([request])
    # Computed here from the tokenizer, as the HF backend tokenizes.
    chat = tokenizer.apply_chat_template([{"role": "user", "content": request.prompt.text}],
                                         tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(chat, add_special_tokens=False)["input_ids"]
    full = tokenizer(chat + request.completion, add_special_tokens=False)["input_ids"]
    assert full[:len(prompt_ids)] == prompt_ids
    expected = [token_logprob(i, t) for i, t in enumerate(full) if i >= len(prompt_ids)]
    assert math.isclose(score, sum(expected) / len(expected))
    everything = [token_logprob(i, t) for i, t in enumerate(full) if i > 0]
    assert not math.isclose(score, sum(everything) / len(everything))
    [body] = fake.posts("/completions")
    assert body["prompt"] == full
    assert body["echo"] is True
    assert body["logprobs"] == 1
    assert body["max_tokens"] == 1


def test_identical_score_requests_are_sent_once(fake: FakeOpenAI, tokenizer: Any) -> None:
    request = ScoreRequest(Prompt("France"), "Paris.")
    scores = backend(fake, tokenizer=tokenizer).score([request, request])
    assert scores[0] == scores[1]
    assert len(fake.posts()) == 1


def test_scoring_without_a_tokenizer_names_the_option_and_the_tier(fake: FakeOpenAI) -> None:
    with pytest.raises(BackendError, match=r"give tokenizer .*suppressed:") as err:
        backend(fake).score([ScoreRequest(Prompt("France"), "Paris.")])
    assert "\n" not in str(err.value)
    assert fake.posts() == []


def test_a_server_without_echo_names_how_to_turn_the_tier_off(tokenizer: Any) -> None:
    tier_off = (r"HTTP 400 .*log-likelihood tier off: remove the probes' `suppressed:` and "
                r"`preferred:`")
    with (FakeOpenAI({"smol": ScriptedBackend(BASE)}, tokenizer=tokenizer, echo=False) as fake,
          pytest.raises(BackendError, match=tier_off)):
        backend(fake, tokenizer=tokenizer).score([ScoreRequest(Prompt("France"), "Paris.")])


# --- the contract --------------------------------------------------------------------------


def test_the_openai_engine_keeps_the_contract(fake: FakeOpenAI, tokenizer_dir: Path) -> None:
    pair = load_pair("smol", "demo", options(fake, tokenizer=str(tokenizer_dir),
                                             base_revision="r1", candidate_revision="r2"))
    check_backend_contract(pair, [Prompt("What is the capital of France?"), Prompt("cats"),
                                  Prompt("Name the capital city of France, please."),
                                  Prompt("France", prefill="The capital is"),
                                  Prompt("The capital of France is", chat=False)])


# --- caching: never by a model name alone ------------------------------------------------


def _suite(tmp_path: Path) -> Path:
    suite = tmp_path / "capitals.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    return suite


def test_without_revisions_nothing_is_cached_and_a_warning_says_why(
        fake: FakeOpenAI, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.warns(NotCachedWarning) as caught:
        run = probe.run(_suite(tmp_path), "smol", "demo", options=RunOptions(
            engine="openai", server_url=fake.url, cache_dir=cache, base_revision="r1"))
    assert run.probe_results  # it ran
    [warning] = [w for w in caught if issubclass(w.category, NotCachedWarning)]
    assert str(warning.message).startswith("results of 'demo' are not cached")
    assert "candidate_revision" in str(warning.message)
    cached = list(cache.rglob("*.jsonl"))
    assert len(cached) == 1, "the base (with a revision) is cached, the candidate is not"
    assert (cached[0].with_suffix(".name")).read_text().strip() == "smol"


def test_with_revisions_results_are_cached_under_a_fingerprint_that_follows_them(
        fake: FakeOpenAI, tmp_path: Path) -> None:
    cache = tmp_path / "cache"

    def fingerprints(base_revision: str) -> set[str]:
        probe.run(_suite(tmp_path), "smol", "demo", options=RunOptions(
            engine="openai", server_url=fake.url, cache_dir=cache,
            base_revision=base_revision, candidate_revision="c1"))
        return {p.stem for p in cache.rglob("*.jsonl")}

    first = fingerprints("b1")
    sent = len(fake.posts())
    assert len(first) == 2
    assert sent > 0
    assert fingerprints("b1") == first
    assert len(fake.posts()) == sent, "served from the cache"
    assert len(fingerprints("b2") - first) == 1, "a new base revision is a new base"


def test_the_candidate_may_be_on_a_server_of_its_own(fake: FakeOpenAI) -> None:
    with FakeOpenAI({"smol": ScriptedBackend(LEAKY)}) as other:
        pair = load_pair("smol", "smol", options(fake, candidate_server_url=other.url,
                                                 base_revision="r", candidate_revision="r"))
        texts = [side.generate([Prompt("What is the capital of France?")], GREEDY)[0].text
                 for side in (pair.base, pair.candidate)]
        assert len(other.posts()) == 1
    assert texts == ["The capital of France is Paris.", "I'm sorry, I can't help with that."]
    assert len(fake.posts()) == 1
    # Same name, same revision, another server: other weights, other results.
    assert pair.base.info.fingerprint != pair.candidate.info.fingerprint


def test_a_run_on_the_server_gives_the_scripted_verdicts(fake: FakeOpenAI,
                                                         tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    for name, script in (("base", BASE), ("leaky", LEAKY)):
        rules = "".join(f"  - {{match: {r.match!r}, reply: {r.reply!r}}}\n" for r in script.rules)
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {script.name}\ndefault: {script.default!r}\nrules:\n{rules}", "utf-8")
    scripted = probe.run(suite, f"scripted:{tmp_path / 'base.yaml'}",
                         f"scripted:{tmp_path / 'leaky.yaml'}",
                         options=RunOptions(no_cache=True))
    served = probe.run(suite, "smol", "demo", options=RunOptions(
        engine="openai", server_url=fake.url, no_cache=True, base_revision="b",
        candidate_revision="c"))
    verdicts = {r.run.probe.id: r.verdict for r in served.probe_results}
    assert verdicts == {r.run.probe.id: r.verdict for r in scripted.probe_results}
    assert verdicts["france"].name == "FAIL"
    assert verdicts["japan"].name == "PASS"
    assert served.exit_code == scripted.exit_code == 1
