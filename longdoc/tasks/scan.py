"""Passages ranked by the model's own attention to the question (engine/passage_attention.py):
read mode's selection (`scan`: every passage of a document, one window at a time) and retrieval
mode's re-ranking (`rerank`: the retrieved passages, one window).

Each window's scores are kept in the result cache as soon as they exist, so an interrupted read of a
book resumes where it stopped, and a second question re-reads nothing it asked before.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Sequence

import numpy as np

from longdoc.memory.index import standardise
from longdoc.memory.lexical import BM25
from longdoc.model.protocol import Model, PassageScorer, Prompt
from longdoc.progress import OnProgress, Progress
from longdoc.tasks.prompts import load_prompt
from longdoc.tasks.results import ResultCache, result_key

# What the cached scores are: bump when their meaning changes, so old entries are not misread.
SCORES = "attention density"
CALIBRATED = "attention over a content-free question's"
# The question that asks nothing: the attention it pays a passage is what the passage draws for its
# place and its looks alone (the calibration of in-context re-ranking).
CONTENT_FREE = "N/A"
# Stands in for the passages in the rendered prompt; no document text can contain it (NUL).
MARKER = "\x00passages\x00"
# Tokens of passages per forward pass: long enough that the fixed question around each window is a
# small part of the read, short enough that a window's attention stays sharp and its memory small.
WINDOW_TOKENS = 2048


def scan(
    question: str, passages: Sequence[str], model: Model, results: ResultCache, on_progress: OnProgress | None = None,
    window_tokens: int = WINDOW_TOKENS,
) -> list[float]:
    """A score per passage: its attention density (engine/passage_attention.py) over what passages
    at the same place in the other windows get (`by_place`)."""
    assert isinstance(model, PassageScorer), "scanning needs a model that reports its attention"
    prompt = load_prompt("ask_scan")
    rendered = prompt.render(question=question, passages=MARKER)
    costs = [model.count_tokens(passage) for passage in passages]
    windows = windows_of(costs, window_tokens)
    total, read = sum(costs), 0
    scores: list[float] = []
    for done, (start, stop) in enumerate(windows):
        if on_progress is not None:
            on_progress(Progress("reading", done, len(windows), read=read, prompt_tokens=total))
        texts = passages[start:stop]
        key = result_key("scan", SCORES, model.name, prompt.sha256, question, *texts)
        cached = results.get(key)
        values = json.loads(cached) if cached is not None else model.score_passages(rendered, MARKER, texts)
        if cached is None:
            results.put(key, json.dumps(values))
        scores += values
        read += sum(costs[start:stop])
    if on_progress is not None:
        on_progress(Progress("reading", len(windows), len(windows), read=read, prompt_tokens=total))
    return by_place(scores, windows)


def rerank(
    question: str, passages: Sequence[str], model: Model, results: ResultCache, on_progress: OnProgress | None = None
) -> list[float]:
    """A score per passage, all read in one forward pass: the attention the question pays it over
    the attention a content-free question pays it (1 is average).

    One window has no other windows to compare places with (`by_place`), and the question attends
    most to whatever passage ends the window; the content-free question does the same, so the
    ratio keeps what the real question adds. On NQ dev questions with the default model this put
    the passage holding the answer first more often than retrieval's own order (bench/rerank.py).
    """
    assert isinstance(model, PassageScorer), "ranking needs a model that reports its attention"
    prompt = load_prompt("ask_scan")
    rendered = prompt.render(question=question, passages=MARKER)
    baseline = _closing(prompt.render(question=CONTENT_FREE, passages=MARKER)) + "\n"
    key = result_key("rerank", CALIBRATED, model.name, prompt.sha256, question, *passages)
    cached = results.get(key)
    if cached is not None:
        return json.loads(cached)
    total = sum(model.count_tokens(passage) for passage in passages)
    if on_progress is not None:
        on_progress(Progress("ranking", 0, 1, prompt_tokens=total))
    values = model.score_passages(rendered, MARKER, passages, baseline=baseline)
    results.put(key, json.dumps(values))
    if on_progress is not None:
        on_progress(Progress("ranking", 1, 1, read=total, prompt_tokens=total))
    return values


def _closing(prompt: Prompt) -> str:
    """What follows the passages in a rendered scan prompt, up to the end of its last message."""
    text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
    return text.partition(MARKER)[2]


def by_place(scores: Sequence[float], windows: Sequence[tuple[int, int]]) -> list[float]:
    """Each score over the median score of the passages at the same place (counted from the
    window's end) in every window.

    The question after a window attends more to the passage just before it: on 8K-token
    haystacks of essays with the default model, the last passage of a window drew 1.5-2x the
    average, the middle ones 0.7x, which put ordinary last passages above a planted fact. A fact
    stands out from its own place's median; the median needs a few windows (documents that fit
    the answering window whole are not scanned).
    """
    places: dict[int, list[float]] = {}
    for start, stop in windows:
        for index in range(start, stop):
            places.setdefault(stop - 1 - index, []).append(scores[index])
    prior = {place: statistics.median(values) for place, values in places.items()}
    return [scores[index] / prior[stop - 1 - index] if prior[stop - 1 - index] > 0 else scores[index]
            for start, stop in windows for index in range(start, stop)]


def with_words(question: str, passages: Sequence[str], scores: Sequence[float], weight: float) -> list[float]:
    """The scan's `scores` joined with how well each passage matches the question's words (BM25),
    both as standard deviations above their mean over the document, the words' counting `weight`
    times as much (the z-score fusion of hybrid search, memory/index.py)."""
    attention = np.log(np.maximum(np.asarray(scores, dtype=np.float64), 1e-9))  # a ratio: its log is symmetric
    lexical = BM25(passages).scores(question)
    joined = standardise(attention, float(attention.mean()), float(attention.std()))
    joined = joined + weight * standardise(lexical, float(lexical.mean()), float(lexical.std()))
    return [float(value) for value in joined]


def windows_of(costs: Sequence[int], limit: int) -> list[tuple[int, int]]:
    """Consecutive ranges [start, stop) of passages, each at most `limit` tokens (or one passage)
    and as even as that allows: a short last window would score its few passages unlike the rest."""
    if not costs:
        return []
    count = math.ceil(sum(costs) / limit)
    while True:
        windows = _even(costs, count)
        if count >= len(costs) or all(sum(costs[a:b]) <= limit or b - a == 1 for a, b in windows):
            return windows
        count += 1


def _even(costs: Sequence[int], count: int) -> list[tuple[int, int]]:
    """`count` windows whose ends fall at the passage ends nearest each k/count of the tokens."""
    ends = list(itertools.accumulate(costs))
    cuts = sorted({min(range(len(ends)), key=lambda i: abs(ends[i] - ends[-1] * k / count)) + 1 for k in range(1, count)})
    bounds = [0, *(cut for cut in cuts if 0 < cut < len(costs)), len(costs)]
    return list(zip(bounds, bounds[1:]))
