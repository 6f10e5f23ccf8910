"""Weight-first linear layers (fp32 CPU decoding): same numbers as nn.Linear, same generations."""

from __future__ import annotations

import pytest
import torch
from test_engine import tiny_model
from torch import nn

from longdoc.engine.cpu_linear import WeightFirstLinear, use_weight_first_linears
from longdoc.engine.generation import generate_tokens
from longdoc.model.protocol import GenerationOptions
from longdoc.engine.reader import SegmentReader
from longdoc.engine.cache_config import SegmentCacheConfig


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 1, 48), (8, 1, 48), (3, 5, 48), (600, 48)])  # 1, 8, 15 and 600 rows
def test_weight_first_product_equals_linear(shape: tuple[int, ...], bias: bool) -> None:
    torch.manual_seed(0)
    plain = nn.Linear(48, 96, bias=bias)
    x = torch.randn(*shape)
    expected = plain(x)
    use_weight_first_linears(plain)
    assert isinstance(plain, WeightFirstLinear)
    got = plain(x)
    assert got.shape == expected.shape and got.is_contiguous()
    assert torch.allclose(got, expected, atol=1e-5)


def test_switched_model_generates_the_same_batched_tokens() -> None:
    model = tiny_model("qwen2")
    prompts = [[5, 9, 13, 2], [7, 7, 3], [11, 4, 8, 6, 1], [2, 3]]
    options = GenerationOptions(max_new_tokens=6, batch_size=4)

    def generate() -> list[list[int]]:
        reader = SegmentReader(model, SegmentCacheConfig(sinks=2, window=32, segment=8))
        return generate_tokens(reader, prompts, options, eos_ids=set(), pad_id=0)

    before = generate()
    switched = use_weight_first_linears(model)
    assert switched >= 7 * model.config.num_hidden_layers  # q, k, v, o, gate, up, down per layer (+ head)
    assert generate() == before
