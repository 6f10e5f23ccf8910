"""Segment engine on tiny random-weight Qwen2, Llama and Gemma 3 models built from configs."""

from __future__ import annotations

import importlib
import warnings

import pytest
import torch
from tokenizers import Tokenizer, decoders, models
from transformers import (
    AutoModelForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    MistralConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen3Config,
)

from longdoc.engine.generation import choose_tokens, generate_tokens, left_pad, plan_batches, read_groups
from longdoc.engine.local import LocalModel
from longdoc.model.protocol import GenerationOptions, Model, NextTokenScorer
from longdoc.engine.reader import SegmentReader
from longdoc.engine.rotary import shift_keys
from longdoc.engine.cache_config import SegmentCacheConfig
from longdoc.engine.segment_cache import SegmentCache
from longdoc.errors import ModelError

VOCAB = 97
NATIVE_WINDOW = 12  # Gemma 3 sliding layers of the tiny model see 12 tokens
KINDS = ["qwen2", "llama", "gemma3"]


def tiny_model(kind: str, seed: int = 0) -> PreTrainedModel:
    """A 2-layer fp32 model with weights large enough that attention patterns matter."""
    torch.manual_seed(seed)
    common = {
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "initializer_range": 0.2,
        "eos_token_id": 0,
        "pad_token_id": 0,
    }
    if kind == "qwen2":
        config = Qwen2Config(**common)
    elif kind == "llama":
        config = LlamaConfig(**common)
    elif kind == "qwen3":
        config = Qwen3Config(**common, head_dim=16)
    elif kind == "mistral":  # v0.1 style: one sliding window for every layer
        config = MistralConfig(**common, sliding_window=NATIVE_WINDOW)
    else:
        kinds = ["sliding_attention", "full_attention"]
        config = Gemma3TextConfig(
            **common,
            head_dim=16,
            sliding_window=NATIVE_WINDOW,
            layer_types=kinds[::-1] if kind == "gemma3-full-first" else kinds,
        )
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa").eval()


def full_attention_logits(model: PreTrainedModel, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits[:, -1].float()  # (B, V)


def read(model: PreTrainedModel, ids: torch.Tensor, config: SegmentCacheConfig) -> tuple[torch.Tensor, SegmentCache]:
    reader = SegmentReader(model, config)
    cache = reader.new_cache()
    return reader.read(cache, ids), cache


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("segment", [1, 3, 7, 16, 45])
def test_input_within_window_equals_full_attention(kind: str, segment: int) -> None:
    model = tiny_model(kind)
    ids = torch.randint(1, VOCAB, (1, 45))
    logits, _ = read(model, ids, SegmentCacheConfig(sinks=4, window=64, segment=segment))
    reference = full_attention_logits(model, ids)
    assert reference.abs().max() > 0.5, "logits too small for the comparison to mean anything"
    assert (logits - reference).abs().max() < 1e-3


@pytest.mark.parametrize("kind", KINDS)
def test_reading_hands_the_cache_over_without_a_deprecation_warning(kind: str) -> None:
    # transformers warns on every call that still names the cache `past_key_values` (a user saw it
    # twice per summary) and drops that name in 5.40.
    model = tiny_model(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        read(model, torch.randint(1, VOCAB, (1, 20)), SegmentCacheConfig(sinks=2, window=8, segment=5))


@pytest.mark.parametrize("kind", KINDS)
def test_input_beyond_window_differs_from_full_attention(kind: str) -> None:
    # The control for the equality test: once tokens leave the window, the logits must change.
    model = tiny_model(kind)
    ids = torch.randint(1, VOCAB, (1, 45))
    logits, _ = read(model, ids, SegmentCacheConfig(sinks=2, window=8, segment=5))
    assert (logits - full_attention_logits(model, ids)).abs().max() > 1e-2


@pytest.mark.parametrize("kind", KINDS)
def test_cache_stays_bounded_for_inputs_many_windows_long(kind: str) -> None:
    model = tiny_model(kind)
    config = SegmentCacheConfig(sinks=4, window=16, segment=7)
    reader = SegmentReader(model, config)
    cache = reader.new_cache()
    ids = torch.randint(1, VOCAB, (1, 400))  # 25 windows, and more than the 256 trained positions
    for start in range(0, 400, 50):
        reader.read(cache, ids[:, start : start + 50])
        for layer, length in zip(cache.layers, cache.lengths()):
            bound = NATIVE_WINDOW - 1 if layer.is_sliding else config.sinks + config.window
            assert length <= bound
        assert cache.max_position < config.span
    logits = reader.read(cache, ids[:, :1])
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("kind", [*KINDS, "gemma3-full-first"])
def test_rerotated_keys_match_keys_computed_at_their_new_positions(kind: str) -> None:
    model = tiny_model(kind)
    config = SegmentCacheConfig(sinks=3, window=14, segment=4)
    ids = torch.randint(1, VOCAB, (1, 61))
    _, cache = read(model, ids, config)
    # After sliding, the memory is sinks at 0..2 and the last 14 tokens at 3..16.
    kept = torch.cat((ids[0, : config.sinks], ids[0, -config.window :]))
    positions = torch.arange(config.sinks + config.window)
    assert cache.max_position == positions[-1]
    # Layer 0 keys depend on the token alone, so they can be recomputed at any position. A
    # natively sliding layer 0 holds only the last NATIVE_WINDOW - 1 of them.
    layer = cache.layers[0]
    count = NATIVE_WINDOW - 1 if layer.is_sliding else len(kept)
    layer_type = layer.layer_type if kind.startswith("gemma3") else None
    fresh = first_layer_keys(model, kept[-count:], positions[-count:], layer_type)
    assert layer.keys.shape == fresh.shape
    assert (layer.keys - fresh).abs().max() < 1e-4


def first_layer_keys(
    model: PreTrainedModel, tokens: torch.Tensor, positions: torch.Tensor, layer_type: str | None = None
) -> torch.Tensor:
    """Keys (1, H, T, D) of layer 0 for `tokens` placed at `positions`, computed from scratch."""
    decoder = model.get_decoder()
    layer = decoder.layers[0]
    attention = layer.self_attn
    with torch.no_grad():
        hidden = layer.input_layernorm(decoder.embed_tokens(tokens[None]))  # (1, T, hidden)
        keys = attention.k_proj(hidden).view(1, len(tokens), -1, attention.head_dim).transpose(1, 2)
        if hasattr(attention, "k_norm"):
            keys = attention.k_norm(keys)
        rotary_args = (hidden, positions[None]) + ((layer_type,) if layer_type else ())
        cos, sin = decoder.rotary_emb(*rotary_args)
        module = importlib.import_module(type(model).__module__)
        _, keys = module.apply_rotary_pos_emb(keys, keys, cos, sin)
    return keys


def test_shift_keys_composes_rotations() -> None:
    torch.manual_seed(0)
    model = tiny_model("qwen2")
    tokens = torch.randint(1, VOCAB, (6,))
    at_20 = first_layer_keys(model, tokens, torch.arange(20, 26))
    at_7 = first_layer_keys(model, tokens, torch.arange(7, 13))
    inv_freq = model.get_decoder().rotary_emb.inv_freq
    assert (shift_keys(at_20, -13, inv_freq) - at_7).abs().max() < 1e-5
    assert (shift_keys(at_7, 13, inv_freq) - at_20).abs().max() < 1e-5


@pytest.mark.parametrize("kind", KINDS)
def test_left_padded_batch_reads_like_single_rows(kind: str) -> None:
    model = tiny_model(kind)
    config = SegmentCacheConfig(sinks=4, window=64, segment=6)
    rows = [torch.randint(1, VOCAB, (n,)) for n in (9, 30, 17)]
    reader = SegmentReader(model, config)
    ids, valid = left_pad([r.tolist() for r in rows], pad_id=0)
    batched = reader.read(reader.new_cache(), ids, valid)
    for row, tokens in enumerate(rows):
        alone = reader.read(reader.new_cache(), tokens[None])
        assert (batched[row] - alone[0]).abs().max() < 1e-4


def test_padded_batch_refuses_to_slide() -> None:
    model = tiny_model("qwen2")
    reader = SegmentReader(model, SegmentCacheConfig(sinks=2, window=8, segment=4))
    ids = torch.randint(1, VOCAB, (2, 20))
    valid = torch.ones_like(ids, dtype=torch.bool)
    valid[1, :3] = False
    with pytest.raises(ValueError, match="one at a time"):
        reader.read(reader.new_cache(), ids, valid)


@pytest.mark.parametrize("kind", KINDS)
def test_batched_generation_equals_one_at_a_time(kind: str) -> None:
    model = tiny_model(kind)
    reader = SegmentReader(model, SegmentCacheConfig(sinks=4, window=48, segment=5))
    torch.manual_seed(1)
    prompts = [torch.randint(1, VOCAB, (n,)).tolist() for n in (3, 11, 7, 16, 25)]
    options = GenerationOptions(max_new_tokens=12, batch_size=4)
    batched = generate_tokens(reader, prompts, options, eos_ids={0}, pad_id=0)
    alone = [generate_tokens(reader, [p], options, eos_ids={0}, pad_id=0)[0] for p in prompts]
    assert batched == alone
    assert all(len(out) > 0 for out in batched)


@pytest.mark.parametrize("kind", KINDS)
def test_prompts_of_unlike_lengths_are_read_apart_then_decoded_together(kind: str) -> None:
    model = tiny_model(kind)
    reader = SegmentReader(model, SegmentCacheConfig(sinks=4, window=160, segment=16))
    torch.manual_seed(2)
    prompts = [torch.randint(1, VOCAB, (n,)).tolist() for n in (6, 90, 41, 88)]
    options = GenerationOptions(max_new_tokens=10, batch_size=4)
    read: list[int] = []
    batched = generate_tokens(reader, prompts, options, eos_ids={0}, pad_id=0, on_read=read.append)
    alone = [generate_tokens(reader, [p], options, eos_ids={0}, pad_id=0)[0] for p in prompts]
    assert batched == alone
    assert any(len(out) > 1 for out in batched)
    # 90 and 88 share a pass (2 tokens of padding); 41 and 6 are read alone: not 4 x 90 rows.
    assert sum(read) == 2 * 90 + 41 + 6
    assert read_groups([6, 90, 41, 88]) == [[1, 3], [2], [0]]


def test_a_prompt_given_twice_is_read_once() -> None:
    model = tiny_model("qwen2")
    reader = SegmentReader(model, SegmentCacheConfig(sinks=4, window=160, segment=16))
    torch.manual_seed(3)
    one, other = (torch.randint(1, VOCAB, (n,)).tolist() for n in (90, 30))
    greedy = GenerationOptions(max_new_tokens=8, batch_size=4)
    read: list[int] = []
    outputs = generate_tokens(reader, [one, other, one, one], greedy, eos_ids={0}, pad_id=0, on_read=read.append)
    alone = [generate_tokens(reader, [p], greedy, eos_ids={0}, pad_id=0)[0] for p in (one, other)]
    assert outputs == [alone[0], alone[1], alone[0], alone[0]]
    assert sum(read) == 90 + 30  # each read alone (60 tokens of padding), the copies not at all
    sampled = GenerationOptions(max_new_tokens=8, batch_size=4, temperature=1.5, seed=1)
    samples = generate_tokens(reader, [one] * 4, sampled, eos_ids={0}, pad_id=0)
    assert len({tuple(s) for s in samples}) > 1  # copies of one memory still sample apart


def test_read_groups_keep_padding_small() -> None:
    assert read_groups([100, 98, 97, 99]) == [[0, 3, 1, 2]]
    assert read_groups([516, 290, 214, 141]) == [[0], [1], [2], [3]]
    assert read_groups([10, 30, 20]) == [[1, 2, 0]]  # 30 tokens of padding: not worth another pass


def test_generation_beyond_window_slides_and_continues(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model("llama")
    config = SegmentCacheConfig(sinks=2, window=10, segment=4)
    reader = SegmentReader(model, config)
    shifts: list[int] = []
    slide = SegmentCache.slide
    monkeypatch.setattr(SegmentCache, "slide", lambda cache, *a, **kw: _append(shifts, slide(cache, *a, **kw)))
    prompt = torch.randint(1, VOCAB, (30,)).tolist()
    (out,) = generate_tokens(reader, [prompt], GenerationOptions(max_new_tokens=40), eos_ids=set(), pad_id=0)
    assert len(out) == 40
    # 69 tokens went in (the last one generated is never fed back); while generating, the window
    # may run up to a segment past W before it slides (re-rotating once per segment, not per token).
    fed = 30 + 39
    assert (
        fed - config.sinks - config.window - (config.segment - 1) <= sum(shifts) <= fed - config.sinks - config.window
    )
    assert len([shift for shift in shifts if shift]) < 39 // config.segment + 30 // config.segment + 2
    # Too long to share a batch: it goes alone, after the prompts that fit.
    assert plan_batches([30, 3], GenerationOptions(max_new_tokens=5), config) == [[1], [0]]


def _append(items: list[int], value: int) -> int:
    items.append(value)
    return value


def test_eager_attention_gets_additive_masks() -> None:
    model = tiny_model("qwen2")
    model.set_attn_implementation("eager")
    ids = torch.randint(1, VOCAB, (1, 30))
    logits, _ = read(model, ids, SegmentCacheConfig(sinks=4, window=64, segment=7))
    assert (logits - full_attention_logits(model, ids)).abs().max() < 1e-3


def test_greedy_is_argmax_and_sampling_repeats_with_seed() -> None:
    logits = torch.tensor([[0.1, 3.0, 0.2], [5.0, 0.0, 0.0]])
    greedy = choose_tokens(logits, GenerationOptions(), torch.Generator().manual_seed(0))
    assert greedy.tolist() == [1, 0]
    options = GenerationOptions(temperature=1.0, top_p=0.9)
    first = [choose_tokens(logits, options, torch.Generator().manual_seed(3)).tolist() for _ in range(3)]
    assert first[0] == first[1] == first[2]


def test_top_p_keeps_only_the_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.05, 0.05]]))
    options = GenerationOptions(temperature=1.0, top_p=0.8)
    generator = torch.Generator().manual_seed(0)
    seen = {int(choose_tokens(logits, options, generator)) for _ in range(200)}
    assert seen == {0, 1}


def char_tokenizer() -> PreTrainedTokenizerFast:
    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {"<eos>": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    assert len(vocab) == VOCAB
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None))
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<eos>")


def test_local_model_fits_protocol_and_cuts_at_stop_strings() -> None:
    config = SegmentCacheConfig(sinks=4, window=96, segment=16)
    model = LocalModel(tiny_model("qwen2"), char_tokenizer(), name="tiny", chat=False, cache=config)
    assert isinstance(model, Model)
    assert model.count_tokens("hello") == 5
    (free,) = model.generate(["The key"], GenerationOptions(max_new_tokens=30))
    assert len(free) > 3
    stop = free[2:4]
    (cut,) = model.generate(["The key"], GenerationOptions(max_new_tokens=30, stop=(stop,)))
    assert cut == free[: free.find(stop)]
    texts = model.generate(["a", "bb", "The key"], GenerationOptions(max_new_tokens=30))
    assert texts[2] == free


def test_next_token_scores_are_the_models_own_log_probabilities_after_the_prefix() -> None:
    config = SegmentCacheConfig(sinks=4, window=96, segment=16)
    model = LocalModel(tiny_model("qwen2"), char_tokenizer(), name="tiny", chat=False, cache=config)
    assert isinstance(model, NextTokenScorer)
    read: list[int] = []
    (scores,) = model.score_next(["Which one? (A) or (B)"], " It is (", ["A", "B", "C"], on_read=read.append)
    ids = torch.tensor([model.tokenizer.encode("Which one? (A) or (B) It is (")])
    expected = torch.log_softmax(full_attention_logits(model.model, ids)[0], dim=-1)
    letters = [model.tokenizer.encode(label)[0] for label in "ABC"]
    assert scores == pytest.approx([float(expected[t]) for t in letters], abs=1e-4)
    assert sum(read) == ids.shape[1]  # progress heard of every token read


def test_prompts_that_begin_alike_are_scored_as_if_each_were_read_alone_and_their_beginning_is_read_once() -> None:
    config = SegmentCacheConfig(sinks=4, window=96, segment=16)
    model = LocalModel(tiny_model("qwen2"), char_tokenizer(), name="tiny", chat=False, cache=config)
    story = "The keeper hung the brass key behind the chart cabinet. "
    prompts = [story + "Where? (A) cabinet (B) box", story + "Where? (A) box (B) cabinet", story + "(Who?)"]
    read: list[int] = []
    scores = model.score_next(prompts, " It is (", ["A", "B"], on_read=read.append)
    letters = [model.tokenizer.encode(label)[0] for label in "AB"]
    for prompt, row in zip(prompts, scores):
        ids = torch.tensor([model.tokenizer.encode(prompt + " It is (")])
        expected = torch.log_softmax(full_attention_logits(model.model, ids)[0], dim=-1)
        assert row == pytest.approx([float(expected[t]) for t in letters], abs=1e-4)
    lengths = [len(model.tokenizer.encode(p + " It is (")) for p in prompts]
    shared = len(model.tokenizer.encode(story))  # where the prompts part
    assert sum(read) == shared + sum(n - shared for n in lengths) < sum(lengths)


def test_prompts_are_read_whole_where_the_memory_cannot_take_tokens_back() -> None:
    # Block memory picks its blocks with each new token's query: a rest read on top of a shared
    # beginning and taken back would not leave the memory as it was, so each prompt is read alone.
    config = SegmentCacheConfig(sinks=4, window=24, segment=8, blocks=2, block_size=8, representatives=2)
    model = LocalModel(tiny_model("qwen2"), char_tokenizer(), name="tiny", chat=False, cache=config)
    story = "The keeper hung the brass key behind the chart cabinet. "
    prompts = [story + "Where? (A) cabinet (B) box", story + "Where? (A) box (B) cabinet"]
    together = model.score_next(prompts, " It is (", ["A", "B"])
    alone = [model.score_next([prompt], " It is (", ["A", "B"])[0] for prompt in prompts]
    assert together == [pytest.approx(row, abs=1e-5) for row in alone]


def test_span_beyond_trained_positions_is_refused() -> None:
    with pytest.raises(ModelError, match="trained positions"):
        SegmentReader(tiny_model("qwen2"), SegmentCacheConfig(sinks=64, window=200, segment=64))


@pytest.mark.parametrize("kind", ["qwen3", "mistral"])
def test_other_supported_families_read_like_full_attention(kind: str) -> None:
    model = tiny_model(kind)
    ids = torch.randint(1, VOCAB, (1, 40))
    config = SegmentCacheConfig(sinks=4, window=64, segment=7, blocks=2, block_size=8, representatives=2)
    logits, _ = read(model, ids, config)
    assert (logits - full_attention_logits(model, ids)).abs().max() < 1e-3
    long_config = SegmentCacheConfig(sinks=4, window=16, segment=7, blocks=2, block_size=8, representatives=2)
    logits, cache = read(model, torch.randint(1, VOCAB, (1, 200)), long_config)
    bound = NATIVE_WINDOW - 1 if kind == "mistral" else long_config.sinks + long_config.window
    assert max(cache.lengths()) <= bound and torch.isfinite(logits).all()
    assert cache.max_position < long_config.span
