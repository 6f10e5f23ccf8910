"""Block memory (stage 2): evicted tokens kept as blocks, top-k retrieved by query-key score."""

from __future__ import annotations

import pytest
import torch
from test_engine import KINDS, VOCAB, first_layer_keys, full_attention_logits, read, tiny_model

from longdoc.engine.block_memory import BlockMemory
from longdoc.engine.generation import generate_tokens
from longdoc.model.protocol import GenerationOptions
from longdoc.engine.reader import SegmentReader
from longdoc.engine.cache_config import SegmentCacheConfig

BLOCKS = SegmentCacheConfig(sinks=4, window=16, segment=7, blocks=2, block_size=8, representatives=2)


@pytest.mark.parametrize("kind", KINDS)
def test_block_memory_changes_nothing_while_input_fits(kind: str) -> None:
    model = tiny_model(kind)
    ids = torch.randint(1, VOCAB, (1, 45))
    config = SegmentCacheConfig(sinks=4, window=64, segment=7, blocks=2, block_size=8, representatives=2)
    logits, cache = read(model, ids, config)
    assert cache.blocks_stored == 0
    assert (logits - full_attention_logits(model, ids)).abs().max() < 1e-3


@pytest.mark.parametrize("kind", KINDS)
def test_long_input_keeps_blocks_off_the_window_and_attends_to_top_k(kind: str) -> None:
    model = tiny_model(kind)
    reader = SegmentReader(model, BLOCKS)
    cache = reader.new_cache()
    seen: list[int] = []
    for layer in cache.layers:
        if layer.memory is not None:
            update = layer.update
            layer.update = lambda k, v, *a, _update=update, **kw: _record(seen, _update(k, v, *a, **kw))
    ids = torch.randint(1, VOCAB, (1, 300))
    reader.read(cache, ids)
    evicted = 300 - BLOCKS.sinks - BLOCKS.window
    assert cache.blocks_stored == evicted // BLOCKS.block_size
    for layer, length in zip(cache.layers, cache.lengths()):
        assert length <= (11 if layer.is_sliding else BLOCKS.sinks + BLOCKS.window)
    assert max(seen) == BLOCKS.sinks + BLOCKS.retrieved + BLOCKS.window + BLOCKS.segment
    assert cache.max_position < BLOCKS.span


def _record(seen: list[int], result: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    seen.append(result[0].shape[2])
    return result


def test_blocks_hold_the_evicted_keys_unrotated() -> None:
    model = tiny_model("qwen2")
    ids = torch.randint(1, VOCAB, (1, 100))
    _, cache = read(model, ids, BLOCKS)
    memory = cache.layers[0].memory
    assert memory is not None and memory.keys is not None
    first_block = ids[0, BLOCKS.sinks : BLOCKS.sinks + BLOCKS.block_size]
    fresh = first_layer_keys(model, first_block, torch.zeros(BLOCKS.block_size, dtype=torch.long))
    assert (memory.keys[:, :, 0] - fresh).abs().max() < 1e-4


def test_retrieved_blocks_change_what_the_model_reads() -> None:
    model = tiny_model("llama")
    ids = torch.randint(1, VOCAB, (1, 120))
    with_blocks, _ = read(model, ids, BLOCKS)
    without, _ = read(model, ids, SegmentCacheConfig(sinks=4, window=16, segment=7))
    assert (with_blocks - without).abs().max() > 1e-3


def test_selection_picks_the_blocks_matching_the_query() -> None:
    dim, heads, size = 8, 2, 4
    memory = BlockMemory(torch.zeros(dim // 2), block_size=size, representatives=2, store_device="cpu")
    directions = torch.eye(dim)  # block j's keys all point along axis j
    keys = directions[:, None, :].expand(dim, size, dim).reshape(1, 1, dim * size, dim).expand(1, heads, -1, -1)
    memory.add(keys.clone(), keys.clone(), torch.zeros(1, dim * size, dtype=torch.long))
    assert memory.blocks == dim
    queries = (directions[5] + 0.5 * directions[2]).expand(1, heads * 2, 3, dim)  # (B, H_q, L, D)
    assert memory.select(queries, 2).tolist() == [[2, 5]]
    far_keys, far_values = memory.gather(torch.tensor([[2, 5]]), start=10, device=torch.device("cpu"))
    assert far_keys.shape == (1, heads, 2 * size, dim)
    assert torch.equal(far_values[0, 0, :size], directions[2].expand(size, dim))


def test_generation_with_block_memory_runs_past_the_window() -> None:
    model = tiny_model("qwen2")
    reader = SegmentReader(model, BLOCKS)
    prompt = torch.randint(1, VOCAB, (60,)).tolist()
    (out,) = generate_tokens(reader, [prompt], GenerationOptions(max_new_tokens=30), eos_ids=set(), pad_id=0)
    assert len(out) == 30


def test_blocks_hold_the_evicted_values_after_the_window_reuses_their_slots() -> None:
    # Regression: the window's storage is rewritten in place, so evicted values must be copied out.
    model = tiny_model("qwen2")
    ids = torch.randint(1, VOCAB, (1, 100))
    _, cache = read(model, ids, BLOCKS)
    memory = cache.layers[0].memory
    assert memory is not None and memory.blocks >= 2
    decoder = model.get_decoder()
    layer = decoder.layers[0]
    first_block = ids[:, BLOCKS.sinks : BLOCKS.sinks + BLOCKS.block_size]
    with torch.no_grad():  # layer 0's values depend on each token alone
        hidden = layer.input_layernorm(decoder.embed_tokens(first_block))  # (1, T, hidden)
        fresh = layer.self_attn.v_proj(hidden).view(1, BLOCKS.block_size, -1, layer.self_attn.head_dim)
    stored = memory.gather(torch.tensor([[0]]), start=0, device=torch.device("cpu"))[1]  # (1, H, T, D)
    assert (stored - fresh.transpose(1, 2)).abs().max() < 1e-4
