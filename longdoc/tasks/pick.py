"""Retrieved passages ranked by which one the model says answers the question.

Retrieval ranks passages by their likeness to the question, and a small model answers from the
first one it is shown that looks related, often with a neighbouring figure or name. Asked outright
which passage answers the question, the same model names the one holding the answer far more often
than retrieval puts it first (bench/passage_pick.py). As multiple choice is scored (tasks/choice.py),
nothing is written: the reply is begun for the model ("The answer is in passage [") and the
passages' numbers are compared as its next token.

A model also likes some places (the first passage shown), so the passages are asked about twice, in
retrieval's order and reversed, and a passage's score is its number's log-probability, normalised
over the numbers, summed over both orders: a liking for a place adds to two different passages.

Off by default (`AskOptions.picked_sources`): with the default model the better order did not
carry into better NQ answers (bench/README.md "Answers").
"""

from __future__ import annotations

import json
from typing import cast

from longdoc.model.protocol import GenerationOptions, Model, NextTokenScorer
from longdoc.progress import OnProgress
from longdoc.tasks.choice import order_totals
from longdoc.tasks.prompts import load_prompt, prompt_text
from longdoc.tasks.results import ResultCache, result_key
from longdoc.tasks.steps import tracked

PREFIX = "The answer is in passage ["
# Numbers from 10 begin with the token "1" in most tokenizers, so at most nine are compared.
MOST = 9


def pick_scores(
    question: str, passages: list[str], model: Model, results: ResultCache, on_progress: OnProgress | None = None
) -> list[float]:
    """A score per passage (higher: more likely the one that answers `question`); `passages` are
    the bodies the prompt numbers [1].. in retrieval's order, at most `MOST`. Cached like a reply."""
    assert 1 < len(passages) <= MOST, "pick between two and nine passages"
    prompt = load_prompt("ask_pick")
    asked = orders(len(passages))
    rendered = [prompt.render(question=question, sources=numbered([passages[i] for i in order])) for order in asked]
    key = result_key("pick", model.name, prompt.sha256, rendered)
    cached = results.get(key)
    if cached is not None:
        return cast(list[float], json.loads(cached))
    reading = sum(model.count_tokens(prompt_text(r)) for r in rendered) if on_progress is not None else 0
    options, on_done = tracked("ranking", 1, 1, GenerationOptions(), on_progress, reading)
    labels = [str(n) for n in range(1, len(passages) + 1)]
    scores = cast(NextTokenScorer, model).score_next(rendered, PREFIX, labels, on_read=options.on_read)
    totals = order_totals(scores, asked)
    results.put(key, json.dumps(totals))
    if on_done is not None:
        on_done(1)
    return totals


def orders(count: int) -> list[list[int]]:
    """The orders the passages are shown in: retrieval's, then reversed."""
    return [list(range(count)), list(range(count))[::-1]]


def numbered(bodies: list[str]) -> str:
    """The passages as the pick prompt shows them, numbered [1].. in the order given."""
    return "\n\n".join(f"[{number}] {body}" for number, body in enumerate(bodies, 1))
