"""The pieces of the fast scoring path: lanes, their attention mask, the sliced output
head, and grouped-query attention on CPU without copies."""

from __future__ import annotations

from typing import Any

import pytest

from probe.backends.hf import scoring
from probe.backends.hf.attention import NAME, use_cpu_gqa
from probe.backends.hf.scoring import lane_mask, pack_lanes

PAD = 0


def test_a_prompt_and_its_completions_share_one_lane() -> None:
    # Two prompts after a shared prefix of 2 tokens; the first has two completions.
    rows = [((1, 2, 3, 4), (10, 11, 12)), ((1, 2, 5), (20, 21)), ((1, 2, 3, 4), (30, 31))]
    lanes = pack_lanes(rows, prefix_len=2, pad_token_id=PAD)
    # Lane 0: the prompt's own 3 4, then 10 11 (completion 1 without its last token),
    # then 30 (completion 2 without its last token). Lane 1: 5, 20, padding.
    assert lanes.ids == [[3, 4, 10, 11, 30], [5, 20, PAD, PAD, PAD]]
    assert lanes.segments == [[0, 0, 1, 1, 2], [0, 1, -1, -1, -1]]
    # Each completion continues at the position after its prompt.
    assert lanes.positions == [[2, 3, 4, 5, 4], [2, 3, 0, 0, 0]]
    # The prompt's last token predicts each completion's first token.
    assert lanes.picks == [(0, 1), (0, 2), (0, 3), (0, 1), (0, 4), (1, 0), (1, 1)]
    assert lanes.targets == [10, 11, 12, 30, 31, 20, 21]
    assert lanes.row_of == [0, 0, 0, 2, 2, 1, 1]


def test_a_completion_sees_the_prefix_its_prompt_and_itself_only() -> None:
    import torch

    segments = torch.tensor([[0, 0, 1, 1, 2, -1]])
    mask = lane_mask(segments, prefix_len=2, dtype=torch.float32)
    assert mask.shape == (1, 1, 6, 8)
    allowed = (mask[0, 0] == 0).int().tolist()
    assert allowed == [
        # prefix  p  p  c1 c1 c2 pad
        [1, 1, 1, 0, 0, 0, 0, 0],  # prompt token 1
        [1, 1, 1, 1, 0, 0, 0, 0],  # prompt token 2
        [1, 1, 1, 1, 1, 0, 0, 0],  # completion 1, first token
        [1, 1, 1, 1, 1, 1, 0, 0],  # completion 1, second token
        [1, 1, 1, 1, 0, 0, 1, 0],  # completion 2: never completion 1
        [1, 1, 0, 0, 0, 0, 0, 1],  # padding: the prefix and itself
    ]
    assert float(mask.min()) == torch.finfo(torch.float32).min


@pytest.mark.parametrize("bias", [True, False])
def test_the_sliced_head_equals_a_full_log_softmax(bias: bool,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    generator = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(16, 30, bias=bias)
    with torch.no_grad():
        head.weight.copy_(torch.randn(30, 16, generator=generator) * 3)
    states = torch.randn(9, 16, generator=generator)
    target = torch.tensor([0, 6, 7, 13, 14, 20, 21, 28, 29])  # every slice, both edges
    monkeypatch.setattr(scoring, "_VOCAB_SLICE", 7)  # 30 = 4 slices of 7 and one of 2
    with torch.no_grad():
        sliced = scoring.target_log_probs(head, states, target)
        full = torch.log_softmax(head(states), dim=-1).gather(1, target[:, None]).squeeze(1)
        # A head that is not a plain Linear runs whole: same numbers.
        wrapped = scoring.target_log_probs(torch.nn.Sequential(head), states, target)
    assert torch.allclose(sliced, full, atol=1e-5)
    assert torch.allclose(wrapped, full, atol=1e-6)


def _gqa_llama(attn: str) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64)
    config._attn_implementation = attn
    return LlamaForCausalLM(config).eval()


def test_cpu_grouped_query_attention_matches_sdpa_without_copies(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from transformers.integrations import sdpa_attention

    model = _gqa_llama("sdpa")
    ids = torch.tensor([[5, 6, 7, 8, 9], [11, 12, 13, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits
    use_cpu_gqa(model)
    assert model.config._attn_implementation == NAME

    def no_copies(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("repeat_kv copied the keys and values")

    monkeypatch.setattr(sdpa_attention, "repeat_kv", no_copies)
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    assert torch.allclose(got[real], expected[real], atol=1e-5)


def test_only_cpu_sdpa_models_switch() -> None:
    eager = _gqa_llama("eager")
    use_cpu_gqa(eager)
    assert eager.config._attn_implementation == "eager"
