"""``PromptCodec``: prompts to token ids and token ids to completions, with a HF tokenizer.

Every engine that tokenizes with a Hugging Face tokenizer (``HFBackend``, the vLLM
backend) goes through one codec, so both send the model the same token ids for the
same ``Prompt``: the chat template (time- and size-bounded, ``template``), the
prefill, raw prompts (``chat=False``), the prompt/completion split of a scored row,
and the decoding of new tokens into a ``Completion``. Torch-free: it only calls the
tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from probe.backends.base import Completion, Prompt, ScoreRequest
from probe.backends.hf.template import render_bounded
from probe.errors import BackendError

# The token ids of a rendered prompt and of the completion that follows it.
Row = tuple[tuple[int, ...], tuple[int, ...]]


class PromptCodec:
    """Renders, encodes and decodes for one model (``name`` is the name in messages).

    ``eos_ids`` are the tokens that end a completion; without any, the tokenizer's
    own eos token.
    """

    def __init__(self, tokenizer: Any, name: str, eos_ids: Iterable[int] = ()) -> None:
        self.tokenizer = tokenizer
        self.name = name
        eos = set(eos_ids)
        if not eos and tokenizer.eos_token_id is not None:
            eos.add(tokenizer.eos_token_id)
        self.eos_ids = frozenset(eos)
        self._system_role: bool | None = None

    def render(self, prompt: Prompt) -> tuple[str, bool]:
        """The exact text sent to the model, and whether the tokenizer adds special tokens.

        The chat template already contains BOS and the like, so it is tokenized
        without adding them a second time.
        """
        if not (prompt.chat and getattr(self.tokenizer, "chat_template", None)):
            return prompt.plain_text(), True
        messages = prompt.conversation()
        if prompt.system and not self.has_system_role():
            messages = merge_system(messages)
        return self._template(messages) + prompt.prefill, False

    def _template(self, messages: list[dict[str, str]]) -> str:
        # The template comes from the model directory: untrusted, so time- and size-bounded.
        return render_bounded(lambda: self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True), self.name)

    def has_system_role(self) -> bool:
        """Whether the chat template renders a system message: it neither refuses one
        (Gemma's raises) nor drops it (some leave it out). Asked once per codec.

        Without one, a conversation's system prompt goes at the start of the first user
        turn, a blank line before it (``merge_system``: the documented fallback, the
        same one such models' own cards recommend)."""
        if self._system_role is None:
            marker = "probe-system-role-check"
            try:
                rendered = self._template([{"role": "system", "content": marker},
                                           {"role": "user", "content": "hi"}])
            except BackendError:
                self._system_role = False
            else:
                self._system_role = marker in rendered
        return self._system_role

    def encode(self, prompt: Prompt, rendered: tuple[str, bool] | None = None) -> list[int]:
        """The token ids of ``prompt`` as rendered (``rendered``: ``render``'s result)."""
        text, add_special = self.render(prompt) if rendered is None else rendered
        ids = list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])
        if not ids:
            raise BackendError(f"{self.name}: prompt {prompt.text!r} tokenizes to nothing")
        return ids

    def score_row(self, request: ScoreRequest) -> Row:
        """Token ids of the rendered prompt and of the completion that follows it."""
        if not request.completion:
            raise BackendError(
                f"{self.name}: cannot score an empty completion (prompt "
                f"{request.prompt.text!r}): a mean log-probability over no tokens is "
                "undefined; give every scored completion some text")
        text, add_special = rendered = self.render(request.prompt)
        prompt_ids = self.encode(request.prompt, rendered)
        # Tokenized as one string, the completion gets the tokens a model reading the
        # whole text would see (BPE merges depend on the neighbouring characters).
        full = list(self.tokenizer(text + request.completion,
                                   add_special_tokens=add_special)["input_ids"])
        cut = len(prompt_ids)
        if len(full) > cut and full[:cut] == prompt_ids:
            return tuple(prompt_ids), tuple(full[cut:])
        # A token straddles the boundary (prefill "Here" + completion "after" may become
        # "Hereafter"). The prompt must stay the exact tokens generate() conditions on,
        # so the completion is tokenized on its own and appended to them.
        completion_ids = list(self.tokenizer(request.completion,
                                             add_special_tokens=False)["input_ids"])
        if not completion_ids:
            raise BackendError(f"{self.name}: completion {request.completion!r} "
                               "tokenizes to nothing, so it cannot be scored")
        return tuple(prompt_ids), tuple(completion_ids)

    def until_eos(self, ids: Sequence[int]) -> list[int]:
        """``ids`` up to (not including) the first eos token: nothing after it counts."""
        end = next((i for i, token in enumerate(ids) if token in self.eos_ids), len(ids))
        return list(ids[:end])

    def completion(self, ids: Sequence[int], cut: bool) -> Completion:
        """The decoded new tokens (``ids`` stops before any eos); ``cut``: whether decoding
        ran out of tokens rather than reaching an eos."""
        text = str(self.tokenizer.decode(list(ids), skip_special_tokens=True)).rstrip()
        return Completion(text, cut=cut)

    # --- token accounting for the length limits ----------------------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` on its own."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_tokens(self, prompt: Prompt) -> int:
        """Tokens of ``prompt`` as the model receives it."""
        return len(self.encode(prompt))

    def keep_last_tokens(self, text: str, count: int) -> str:
        """``text`` without its beginning: only its last ``count`` tokens."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return str(self.tokenizer.decode(ids[-count:])) if count > 0 else ""


def merge_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """``messages`` without a system message: its content starts the first user turn,
    a blank line before that turn's own text (for a template with no system role)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if system:
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
    return rest
