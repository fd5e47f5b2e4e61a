"""The served model's tokenizer, held here (the ``tokenizer`` option): prompts rendered
and tokenized exactly as the HF backend does, so a server scores the same token ids
and continues a prefill from the same text.

An OpenAI-compatible API renders the chat template on the server and has no way to
continue an assistant turn that was already begun (a prefill), nor to say where a
prompt ends inside an echoed text; token ids made here answer both. The rules are
``HFBackend``'s (``probe.backends.hf.backend``: ``render``, ``_encode``,
``_score_row``), kept in step with it by tests/engines/test_openai_engine.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probe.backends.base import LoadOptions, Prompt, ScoreRequest
from probe.errors import BackendError, ModelLoadError
from probe.options import opt


class LocalTokenizer:
    """A transformers tokenizer used to render, tokenize and count (no model)."""

    def __init__(self, tokenizer: Any, name: str, digest: str) -> None:
        self.tokenizer = tokenizer
        self.name = name
        # What the fingerprint mixes in: the tokenizer files' content hashes.
        self.digest = digest

    def render(self, prompt: Prompt, model: str) -> tuple[str, bool]:
        """The exact text a model receives, and whether special tokens are added to it
        (the chat template already holds them)."""
        from probe.backends.hf.template import render_bounded

        if not (prompt.chat and getattr(self.tokenizer, "chat_template", None)):
            return prompt.text + prompt.prefill, True
        messages = [{"role": "user", "content": prompt.text}]
        # The template comes from a model directory: untrusted, so time- and size-bounded.
        text = render_bounded(lambda: self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True), model)
        return text + prompt.prefill, False

    def encode(self, prompt: Prompt, model: str) -> list[int]:
        """Token ids of ``prompt`` as rendered."""
        text, add_special = self.render(prompt, model)
        ids = self._ids(text, add_special)
        if not ids:
            raise BackendError(f"{model}: prompt {prompt.text!r} tokenizes to nothing")
        return ids

    def score_row(self, request: ScoreRequest, model: str) -> tuple[list[int], list[int]]:
        """Token ids of the rendered prompt and of the completion after it."""
        if not request.completion:
            raise BackendError(
                f"{model}: cannot score an empty completion (prompt "
                f"{request.prompt.text!r}): a mean log-probability over no tokens is "
                "undefined; give every scored completion some text")
        text, add_special = self.render(request.prompt, model)
        prompt_ids = self._ids(text, add_special)
        if not prompt_ids:
            raise BackendError(f"{model}: prompt {request.prompt.text!r} tokenizes to nothing")
        # Tokenized as one string, the completion gets the tokens a model reading the
        # whole text would see (BPE merges depend on the neighbouring characters).
        full = self._ids(text + request.completion, add_special)
        cut = len(prompt_ids)
        if len(full) > cut and full[:cut] == prompt_ids:
            return prompt_ids, full[cut:]
        # A token straddles the boundary: the prompt stays the tokens generation
        # conditions on, and the completion is tokenized on its own.
        completion_ids = self._ids(request.completion, False)
        if not completion_ids:
            raise BackendError(f"{model}: completion {request.completion!r} tokenizes to "
                               "nothing, so it cannot be scored")
        return prompt_ids, completion_ids

    def count(self, text: str) -> int:
        """Tokens in ``text`` on its own."""
        return len(self._ids(text, False))

    def keep_last(self, text: str, count: int) -> str:
        """``text``'s last ``count`` tokens."""
        ids = self._ids(text, False)
        return str(self.tokenizer.decode(ids[-count:])) if count > 0 else ""

    def _ids(self, text: str, add_special: bool) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])


def load_tokenizer(ref: str, options: LoadOptions) -> LocalTokenizer:
    """The tokenizer ``ref`` names (``smollm2-135m``, a local directory, a cached hub id);
    ``ModelLoadError`` naming the ``tokenizer`` option when it cannot be loaded."""
    from probe.extras import require

    require("hf", f"{opt('tokenizer')} (a local tokenizer for the openai engine)")
    from transformers import AutoTokenizer

    from probe.backends.hf.files import TOKENIZER_FILES, hash_files
    from probe.backends.hf.refs import resolve_model_ref

    path = Path(ref).expanduser()
    if path.is_dir():  # a tokenizer directory need not hold a model (no config.json)
        location, local = str(path.resolve()), True
    else:
        try:
            resolved = resolve_model_ref(ref)  # smollm2-135m, or a hub id
        except ModelLoadError as err:
            raise ModelLoadError(f"{opt('tokenizer')}: {err}") from None
        if resolved.kind == "gguf":
            raise ModelLoadError(
                f"{opt('tokenizer')}: {ref!r} is a GGUF file; give the directory of the "
                "served model's tokenizer (tokenizer.json and its config)")
        location, local = resolved.location, resolved.local
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            location, local_files_only=local, trust_remote_code=options.trust_remote_code)
    except Exception as err:  # tokenizers' parse errors are plain Exceptions
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ModelLoadError(f"{opt('tokenizer')}: cannot load a tokenizer from {ref!r}: "
                             f"{first}") from None
    directory = Path(location)
    files = hash_files(directory, TOKENIZER_FILES) if directory.is_dir() else {}
    digest = ",".join(f"{k}={v}" for k, v in sorted(files.items())) or f"hub:{ref}"
    return LocalTokenizer(tokenizer, ref, digest)
