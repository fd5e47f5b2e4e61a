"""The served model's tokenizer, held here (the ``tokenizer`` option): prompts rendered
and tokenized exactly as the HF and vLLM engines do, so a server scores the same token
ids and continues a prefill from the same text.

An OpenAI-compatible API renders the chat template on the server and has no way to
continue an assistant turn that was already begun (a prefill), nor to say where a
prompt ends inside an echoed text; token ids made here answer both. The rules are
``PromptCodec``'s (``probe.backends.hf.prompts``), the one codec every engine uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probe.backends.base import LoadOptions, Prompt, ScoreRequest
from probe.backends.hf.prompts import PromptCodec, Row
from probe.errors import ModelLoadError
from probe.options import opt


class LocalTokenizer:
    """A transformers tokenizer used to render, tokenize and count (no model), through
    one ``PromptCodec`` per served model name (the name its errors carry)."""

    def __init__(self, tokenizer: Any, name: str, digest: str) -> None:
        self.tokenizer = tokenizer
        self.name = name
        # What the fingerprint mixes in: the tokenizer files' content hashes.
        self.digest = digest
        self._codecs: dict[str, PromptCodec] = {}

    def codec(self, model: str) -> PromptCodec:
        """The codec whose messages name ``model``."""
        if model not in self._codecs:
            self._codecs[model] = PromptCodec(self.tokenizer, model)
        return self._codecs[model]

    def render(self, prompt: Prompt, model: str) -> tuple[str, bool]:
        """The exact text a model receives, and whether special tokens are added to it."""
        return self.codec(model).render(prompt)

    def encode(self, prompt: Prompt, model: str) -> list[int]:
        """Token ids of ``prompt`` as rendered."""
        return self.codec(model).encode(prompt)

    def score_row(self, request: ScoreRequest, model: str) -> Row:
        """Token ids of the rendered prompt and of the completion after it."""
        return self.codec(model).score_row(request)

    def count(self, text: str) -> int:
        """Tokens in ``text`` on its own."""
        return self.codec(self.name).count_tokens(text)

    def keep_last(self, text: str, count: int) -> str:
        """``text``'s last ``count`` tokens."""
        return self.codec(self.name).keep_last_tokens(text, count)


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
