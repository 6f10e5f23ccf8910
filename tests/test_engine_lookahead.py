"""Copy lookahead: guesses from the latest earlier occurrence, and greedy output it leaves unchanged."""

from __future__ import annotations

import pytest
import torch

from longdoc.engine.cache_config import SegmentCacheConfig
from longdoc.engine.generation import generate_tokens
from longdoc.engine.lookahead import CopyLookahead
from longdoc.engine.reader import SegmentReader
from longdoc.model.protocol import GenerationOptions
from tests.test_engine import VOCAB, tiny_model


def test_guess_copies_what_followed_the_latest_earlier_occurrence() -> None:
    # "5 6" occurs twice before the end; the latest one was followed by 9 1, the first by 7 8.
    lookahead = CopyLookahead([5, 6, 7, 8, 2, 5, 6, 9, 1, 4, 5, 6])
    assert lookahead.guess(2) == [9, 1]
    assert lookahead.guess(5) == [9, 1, 4, 5, 6]


def test_guess_prefers_the_longest_match() -> None:
    # "3 5 6" matches at the start (followed by 7); "5 6" alone matches later (followed by 9).
    lookahead = CopyLookahead([3, 5, 6, 7, 8, 5, 6, 9, 0, 3, 5, 6])
    assert lookahead.guess(1) == [7]


def test_no_guess_without_a_repeat_and_generated_tokens_count() -> None:
    lookahead = CopyLookahead([1, 2, 3, 4])
    assert lookahead.guess(3) == []
    lookahead.extend([2])
    assert lookahead.guess(3) == []  # a single token is too short a match
    lookahead.extend([3])
    assert lookahead.guess(3) == [4, 2, 3]
    assert lookahead.guess(0) == []


def _repetitive_prompts() -> list[list[int]]:
    torch.manual_seed(3)
    phrase = torch.randint(1, VOCAB, (9,)).tolist()
    filler = torch.randint(1, VOCAB, (40,)).tolist()
    return [filler[:15] + phrase + filler[15:] + phrase[:4], phrase * 3 + filler[:5] + phrase[:3]]


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_greedy_output_is_the_same_with_lookahead(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model(kind)
    reader = SegmentReader(model, SegmentCacheConfig(sinks=4, window=40, segment=8))
    passes: list[int] = []
    look_ahead = SegmentReader.look_ahead
    monkeypatch.setattr(SegmentReader, "look_ahead", lambda self, cache, ids: passes.append(ids.shape[1]) or look_ahead(self, cache, ids))
    for prompt in _repetitive_prompts():
        # 60 new tokens after up to 50: the window slides while guesses are taken back.
        before = len(passes)
        plain = generate_tokens(reader, [prompt], GenerationOptions(max_new_tokens=60, lookahead=0, loop_tokens=0), {0}, 0)
        assert len(passes) == before  # lookahead 0: never
        guessed = generate_tokens(reader, [prompt], GenerationOptions(max_new_tokens=60, lookahead=5, loop_tokens=0), {0}, 0)
        assert guessed == plain
    assert passes and max(passes) > 2  # guesses were fed, several tokens at once


def test_lookahead_keeps_the_token_cap_and_batched_rows_alike() -> None:
    model = tiny_model("qwen2")
    reader = SegmentReader(model, SegmentCacheConfig(sinks=4, window=64, segment=8))
    prompts = _repetitive_prompts()
    for cap in (1, 2, 7):
        options = GenerationOptions(max_new_tokens=cap, lookahead=6, loop_tokens=0)
        outputs = generate_tokens(reader, prompts, options, {0}, 0)
        assert all(len(out) <= cap for out in outputs)
        assert outputs == generate_tokens(reader, prompts, GenerationOptions(max_new_tokens=cap, lookahead=0, loop_tokens=0), {0}, 0)


def test_no_lookahead_where_taking_tokens_back_is_not_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    # Gemma 3's natively windowed layers trim what they drop, so a guess could not be taken back.
    model = tiny_model("gemma3")
    reader = SegmentReader(model, SegmentCacheConfig(sinks=4, window=40, segment=8))
    monkeypatch.setattr(SegmentReader, "look_ahead", lambda *args: pytest.fail("guessed on a windowed model"))
    prompt = _repetitive_prompts()[1]
    options = GenerationOptions(max_new_tokens=30, lookahead=5, loop_tokens=0)
    assert generate_tokens(reader, [prompt], options, {0}, 0) == generate_tokens(reader, [prompt], GenerationOptions(max_new_tokens=30, lookahead=0, loop_tokens=0), {0}, 0)
