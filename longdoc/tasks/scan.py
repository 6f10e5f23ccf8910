"""Read mode's selection: every passage of a document scored by the model's own attention to the
question, one window of passages at a time (engine/passage_attention.py).

Each window's scores are kept in the result cache as soon as they exist, so an interrupted read of a
book resumes where it stopped, and a second question re-reads nothing it asked before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from longdoc.model.protocol import Model, PassageScorer
from longdoc.progress import OnProgress, Progress
from longdoc.tasks.prompts import load_prompt
from longdoc.tasks.results import ResultCache, result_key

# Stands in for the passages in the rendered prompt; no document text can contain it (NUL).
MARKER = "\x00passages\x00"
# Tokens of passages per forward pass: long enough that the fixed question around each window is a
# small part of the read, short enough that a window's attention stays sharp and its memory small.
WINDOW_TOKENS = 2048


def scan(
    question: str, passages: Sequence[str], model: Model, results: ResultCache, on_progress: OnProgress | None = None,
    window_tokens: int = WINDOW_TOKENS,
) -> list[float]:
    """A score per passage: its share of the attention the question pays to its window's passages."""
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
        key = result_key("scan", model.name, prompt.sha256, question, *texts)
        cached = results.get(key)
        values = json.loads(cached) if cached is not None else model.score_passages(rendered, MARKER, texts)
        if cached is None:
            results.put(key, json.dumps(values))
        scores += values
        read += sum(costs[start:stop])
    if on_progress is not None:
        on_progress(Progress("reading", len(windows), len(windows), read=read, prompt_tokens=total))
    return scores


def windows_of(costs: Sequence[int], limit: int) -> list[tuple[int, int]]:
    """Consecutive ranges [start, stop) of passages, each at most `limit` tokens (or one passage)."""
    windows: list[tuple[int, int]] = []
    start, used = 0, 0
    for index, cost in enumerate(costs):
        if index > start and used + cost > limit:
            windows.append((start, index))
            start, used = index, 0
        used += cost
    if start < len(costs):
        windows.append((start, len(costs)))
    return windows
