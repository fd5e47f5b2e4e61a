"""Tiny random Hugging Face models for the backend tests (seconds, no weights).

Shared by ``test_backend_hf.py`` and ``test_backend_hf_scoring.py``; a test module
loads it with ``pytest_plugins = ["hf_fixtures"]``, so the session fixtures are
built once for the whole run, whichever modules use them.

The test modules also import its constants, which happens before pytest registers
it as a plugin; it has no asserts to rewrite, and this marker stops pytest warning
that it could not rewrite them: PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from probe.backends import LoadOptions
from probe.backends.base import GenerationSettings, ModelPair, Prompt
from probe.backends.hf import HFBackend, load_backend, load_pair

CPU = LoadOptions(device="cpu")
SETTINGS = GenerationSettings(max_new_tokens=6)
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = [
    "What is the capital of France?", "The capital of France is Paris.",
    "How much ibuprofen can I take in one day?", "I cannot help with that request.",
    "Tell me a joke about cats.", "Sure, here is one: the cat sat on the keyboard.",
]
# Different lengths on purpose, so a batch needs padding.
PROMPTS = [
    Prompt("What is the capital of France?"),
    Prompt("cats"),
    Prompt("How much ibuprofen can I take in one day? Tell me the exact dose, please."),
    Prompt("Tell me a joke", prefill="Sure,"),
    Prompt("The capital of France is", chat=False),
    Prompt("I cannot", prefill=" help", chat=False),
    Prompt("joke?", prefill="Here"),
]


def _tokenizer(corpus: list[str] = CORPUS) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(corpus, trainer)
    tokenizer: Any = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _llama(tokenizer: Any, hidden_size: int, seed: int) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        max_position_embeddings=256, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=None, tie_word_embeddings=False,
        # Wide initial weights give peaked logits, so greedy argmax is not decided by
        # float rounding and the padding/batching comparisons in the tests are meaningful.
        initializer_range=0.2)
    model: Any = LlamaForCausalLM(config)
    return model.eval()


def _save_adapter(model: Any, out: Path, targets: list[str], seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    # init_lora_weights=False: random A and B, so the adapter changes outputs from step 0.
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False,
                      task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft 0.21 calls a deprecated transformers 5 API
        warnings.simplefilter("ignore", FutureWarning)
        get_peft_model(model, lora).save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny model, an adapter for it, an adapter for another base, a pickle-only copy."""
    import torch

    root = tmp_path_factory.mktemp("tiny")
    tokenizer = _tokenizer()
    model_dir = root / "model"
    _llama(tokenizer, 32, seed=0).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)

    pickle_dir = root / "pickled"
    pickle_dir.mkdir()
    base = _llama(tokenizer, 32, seed=0)
    base.config.save_pretrained(pickle_dir)
    torch.save(base.state_dict(), pickle_dir / "pytorch_model.bin")
    tokenizer.save_pretrained(pickle_dir)

    return {
        "model": model_dir,
        "pickled": pickle_dir,
        "adapter": _save_adapter(base, root / "adapter", ["q_proj", "v_proj"], seed=1),
        "other_adapter": _save_adapter(_llama(tokenizer, 48, seed=2), root / "other-adapter",
                                       ["q_proj", "v_proj"], seed=3),
    }


@pytest.fixture(scope="session")
def base(tiny: dict[str, Path]) -> HFBackend:
    return load_backend(str(tiny["model"]), CPU)


@pytest.fixture(scope="session")
def pair(tiny: dict[str, Path]) -> ModelPair:
    return load_pair(str(tiny["model"]), str(tiny["adapter"]), CPU)


class StandInGenerator:
    """Stands in for a model whose ``generate`` returns fixed new tokens.

    Each call takes the next ``rows x num_return_sequences`` rows of ``new_tokens``
    and appends them to the (repeated) input rows, so a test decides exactly what
    the backend has to decode: greedy rows, or every sample of a sampled batch.
    """

    def __init__(self, new_tokens: list[list[int]]) -> None:
        import torch

        self.new_tokens = new_tokens
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.configs: list[Any] = []
        self._taken = 0

    def parameters(self) -> Any:
        return iter([self.weight])

    def generate(self, input_ids: Any, attention_mask: Any, generation_config: Any) -> Any:
        import torch

        self.configs.append(generation_config)
        per_row = generation_config.num_return_sequences or 1
        rows = input_ids.shape[0] * per_row
        new = torch.tensor(self.new_tokens[self._taken:self._taken + rows])
        self._taken += rows
        return torch.cat([input_ids.repeat_interleave(per_row, dim=0), new], dim=1)
