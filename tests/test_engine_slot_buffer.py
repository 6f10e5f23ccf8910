"""SlotBuffer: in-place key/value storage, and the cache's storage staying put over long reads."""

from __future__ import annotations

import pytest
import torch
from test_engine import KINDS, VOCAB, read, tiny_model

from longdoc.engine.reader import SegmentReader
from longdoc.engine.cache_config import SegmentCacheConfig
from longdoc.engine.slot_buffer import SlotBuffer


def test_appends_keep_earlier_slots_and_grow_past_the_first_capacity() -> None:
    buffer = SlotBuffer(capacity=4)
    first, second = torch.randn(2, 3, 3, 5), torch.randn(2, 3, 6, 5)
    buffer.append(first)
    view = buffer.append(second)
    assert buffer.capacity >= 9
    assert torch.equal(view, torch.cat((first, second), dim=2))


def test_replace_overwrites_in_place_without_reallocating() -> None:
    buffer = SlotBuffer(capacity=8)
    buffer.append(torch.randn(1, 2, 8, 4))
    storage = buffer.view().data_ptr()
    kept = torch.randn(1, 2, 5, 4)
    assert torch.equal(buffer.replace(kept), kept)
    assert buffer.view().data_ptr() == storage and buffer.length == 5


def test_select_rows_keeps_the_chosen_rows() -> None:
    buffer = SlotBuffer(capacity=4)
    items = torch.randn(3, 2, 4, 2)
    buffer.append(items)
    buffer.select_rows(torch.tensor([0, 2]))
    assert torch.equal(buffer.view(), items[[0, 2]])


@pytest.mark.parametrize("kind", KINDS)
def test_long_read_never_reallocates_the_cache(kind: str) -> None:
    # Regression: concatenating every segment onto the cache made peak memory creep up with input
    # length (+35% from 16K to 256K tokens) although the cache itself was bounded.
    config = SegmentCacheConfig(sinks=4, window=16, segment=7)
    model = tiny_model(kind)
    _, cache = read(model, torch.randint(1, VOCAB, (1, 40)), config)
    storage = [layer.keys.data_ptr() for layer in cache.layers]
    model_input = torch.randint(1, VOCAB, (1, 200))
    SegmentReader(model, config).read(cache, model_input)
    assert [layer.keys.data_ptr() for layer in cache.layers] == storage
