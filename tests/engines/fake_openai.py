"""A fake OpenAI-compatible server (stdlib ``http.server``) whose models are scripted
test doubles, for the openai engine's tests (tests/engines/test_openai_engine.py).

Each served model name answers like a ``ScriptedBackend``: ``/chat/completions`` replies
to the last user message, ``/completions`` to the prompt text (token-id prompts are
decoded with ``tokenizer``), sampled when the request carries a ``seed`` and a
temperature above 0. ``echo`` with ``logprobs`` gives every token a log-probability from
``token_logprob`` (its position and id: deterministic, so a score never depends on the
batch). The server records every request, counts the requests in flight at once, and
answers from ``faults`` first (status codes with headers) so retries can be tested.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from probe.backends.base import GenerationSettings, Prompt, SamplingSettings
from probe.backends.scripted import ScriptedBackend


def token_logprob(position: int, token: int) -> float:
    """The fake's log-probability of ``token`` at ``position``: negative, distinct enough
    that a wrong position or an extra token changes a mean."""
    return -(((token * 31 + position * 7) % 17) + 1) / 10


class FakeOpenAI:
    """The server on a free loopback port, started by ``with``.

    ``models``: served name -> scripted model; ``parents``: a LoRA name -> its base name
    (listed like vLLM lists LoRAs: with a parent and no ``max_model_len``);
    ``api_key``: the key every request must bear; ``delay``: seconds each POST takes;
    ``echo``: whether echo with logprobs is supported (else 400).
    """

    def __init__(self, models: dict[str, ScriptedBackend], *, tokenizer: Any = None,
                 parents: dict[str, str] | None = None, max_model_len: int | None = 2048,
                 api_key: str | None = None, delay: float = 0.0, echo: bool = True,
                 logprob: Callable[[int, int], float] = token_logprob) -> None:
        self.models = models
        self.tokenizer = tokenizer
        self.parents = parents or {}
        self.max_model_len = max_model_len
        self.api_key = api_key
        self.delay = delay
        self.echo = echo
        self.logprob = logprob
        self.faults: list[tuple[int, dict[str, str]]] = []
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The API root, as a user gives it (``http://127.0.0.1:PORT/v1``)."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def posts(self, path: str = "") -> list[dict[str, Any]]:
        """Bodies of the POST requests received (to ``path``, when given)."""
        return [body for method, p, body in self.requests
                if method == "POST" and (not path or p.endswith(path))]

    def __enter__(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                fake.handle(self, "GET")

            def do_POST(self) -> None:
                fake.handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # --- answering ---------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length)) if length else {}
        with self._lock:
            self.requests.append((method, request.path, body))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            fault = self.faults.pop(0) if self.faults and method == "POST" else None
        try:
            if self.delay and method == "POST":
                time.sleep(self.delay)
            status, headers, answer = self.answer(request, method, body, fault)
        finally:
            with self._lock:
                self.in_flight -= 1
        data = json.dumps(answer).encode()
        request.send_response(status)
        for key, value in headers.items():
            request.send_header(key, value)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def answer(self, request: BaseHTTPRequestHandler, method: str, body: dict[str, Any],
               fault: tuple[int, dict[str, str]] | None,
               ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {}, _error("Incorrect API key provided.")
        if fault is not None:
            return fault[0], fault[1], _error(f"fault {fault[0]}")
        path = request.path.removeprefix("/v1")
        if method == "GET" and path == "/models":
            return 200, {}, {"object": "list", "data": [self._card(n) for n in self.models]}
        if method != "POST" or path not in ("/chat/completions", "/completions"):
            return 404, {}, _error(f"no route {method} {request.path}")
        model = self.models.get(body.get("model", ""))
        if model is None:
            return 404, {}, _error(f"The model `{body.get('model')}` does not exist.")
        if path == "/chat/completions":
            prompt = Prompt(body["messages"][-1]["content"])
            text, finish = self._reply(model, prompt, body)
            return 200, {}, {"object": "chat.completion", "choices": [{
                "index": 0, "message": {"role": "assistant", "content": text},
                "finish_reason": finish}]}
        return self._completion(model, body)

    def _card(self, name: str) -> dict[str, Any]:
        if name in self.parents:
            return {"id": name, "object": "model", "root": f"/adapters/{name}",
                    "parent": self.parents[name]}
        return {"id": name, "object": "model", "root": f"/models/{name}",
                "max_model_len": self.max_model_len}

    def _reply(self, model: ScriptedBackend, prompt: Prompt,
               body: dict[str, Any]) -> tuple[str, str]:
        max_tokens = int(body.get("max_tokens") or 16)
        temperature = float(body.get("temperature", 1.0))
        if body.get("seed") is not None and temperature > 0:
            settings = SamplingSettings(max_tokens, 1, temperature, float(body.get("top_p", 1)))
            completion = model.sample([prompt], settings, [int(body["seed"])])[0][0]
        else:
            completion = model.generate([prompt], GenerationSettings(max_tokens))[0]
        return completion.text, "length" if completion.cut else "stop"

    def _completion(self, model: ScriptedBackend,
                    body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        prompt = body["prompt"]
        ids = prompt if isinstance(prompt, list) else None
        text = str(self.tokenizer.decode(ids)) if ids is not None else str(prompt)
        if body.get("echo"):
            if not self.echo:
                return 400, {}, _error("echo is not supported")
            assert ids is not None, "the fake scores token ids only"
            logprobs = [None] + [self.logprob(i, t) for i, t in enumerate(ids) if i > 0]
            logprobs.append(self.logprob(len(ids), 0))  # the one generated token
            return 200, {}, {"choices": [{"index": 0, "text": text + "x",
                                          "finish_reason": "length",
                                          "logprobs": {"token_logprobs": logprobs}}]}
        reply, finish = self._reply(model, Prompt(text, chat=False), body)
        return 200, {}, {"choices": [{"index": 0, "text": reply, "finish_reason": finish}]}


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error"}}


def tiny_tokenizer(directory: Any) -> Any:
    """A small byte-level BPE tokenizer with a ChatML template, saved to ``directory``
    (what the ``tokenizer`` option loads); trained on a few sentences in milliseconds."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = ["What is the capital of France?", "The capital of France is Paris.",
              "I cannot help with that request.", "Tell me a joke about cats."]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(corpus, trainer)
    tokenizer: Any = PreTrainedTokenizerFast(
        tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    tokenizer.save_pretrained(directory)
    return tokenizer
