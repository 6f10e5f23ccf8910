"""Multiple-choice questions answered by the option the model rates likeliest.

Asked to pick an option, a small model writes a sentence that paraphrases one, often loosely, and
which option it meant is then a guess from shared words. A model that reports next-token
probabilities (`NextTokenScorer`: the local engine) is asked instead to continue "The right
option is (" and the options' letters are compared: one read of the prompt, nothing decoded, and
the answer is always one of the options, named by its letter and its words.

A small model also favours some letters whatever they stand for (qwen2.5-1.5b picked B for 15 of 30
QuALITY questions where 10 were B). So the question is asked once per cyclic rotation of its
options, each option standing once at each letter, and an option's score is its letter's
log-probability (normalised over the letters) summed over the rotations: a preference for a
letter adds the same to every option and cancels. The story before the question is read once for
all rotations (`NextTokenScorer.score_next` shares the prompts' common beginning).
"""

from __future__ import annotations

import math
import re
from typing import cast

from longdoc.model.protocol import GenerationOptions, Model, NextTokenScorer
from longdoc.progress import OnProgress
from longdoc.tasks.prompts import load_prompt, prompt_text
from longdoc.tasks.results import ResultCache, result_key
from longdoc.tasks.steps import tracked

# An option on its own line: "(A) ...", "B) ...", "C. ...", or with Chinese punctuation "（A）...", "B．...", "C、...".
_OPTION = re.compile(r"(?m)^[ \t]*[(（]?([A-Da-d])[).）．、][ \t]*(\S.*?)[ \t]*$")
# The reply's opening the letters are scored after: the option's letter is its next token.
PREFIX = "The right option is ("


def options_of(question: str) -> dict[str, str]:
    """The options `question` lists, letter -> text, in order; {} unless it lists two or more."""
    found: dict[str, str] = {}
    for letter, text in _OPTION.findall(question):
        found.setdefault(letter.upper(), text)
    return found if len(found) >= 2 else {}


def stem_of(question: str) -> str:
    """The question without its options."""
    return _OPTION.sub("", question).strip()


def choose(
    question: str, options: dict[str, str], sources: str, model: Model, results: ResultCache,
    on_progress: OnProgress | None = None,
) -> str:
    """The letter of the option `model` (a `NextTokenScorer`) rates likeliest after reading
    `sources` and `question`, over every rotation of the options; cached like a reply."""
    prompt = load_prompt("ask_choice")
    letters, texts = list(options), list(options.values())
    stem = stem_of(question)
    questions = [_asked(stem, letters, rotated(texts, shift)) for shift in range(len(letters))]
    rendered = [prompt.render(question=asked, sources=sources) for asked in questions]
    key = result_key("choice", model.name, prompt.sha256, rendered)
    cached = results.get(key)
    if cached in options:
        return cast(str, cached)
    # The passages are read once, the question once per rotation.
    reading = (model.count_tokens(prompt_text(rendered[0])) + sum(model.count_tokens(q) for q in questions[1:])
               if on_progress is not None else 0)
    options_, on_done = tracked("answering", 1, 1, GenerationOptions(), on_progress, reading)
    scores = cast(NextTokenScorer, model).score_next(rendered, PREFIX, letters, on_read=options_.on_read)
    totals = rotation_totals(scores)
    letter = letters[max(range(len(letters)), key=totals.__getitem__)]
    results.put(key, letter)
    if on_done is not None:
        on_done(1)
    return letter


def rotated(texts: list[str], shift: int) -> list[str]:
    """The options as listed under rotation `shift`: the first letter shows option `shift`."""
    return texts[shift:] + texts[:shift]


def rotation_totals(scores: list[list[float]]) -> list[float]:
    """Each option's letter log-probability, normalised over the letters, summed over the
    rotations; `scores[shift][place]` is the score of the letter at `place` under `shift`."""
    count = len(scores[0])
    return order_totals(scores, [[(place + shift) % count for place in range(count)] for shift in range(len(scores))])


def order_totals(scores: list[list[float]], orders: list[list[int]]) -> list[float]:
    """Each item's label log-probability, normalised over the labels, summed over the orderings it
    was shown in; `scores[k][place]` is the score of the label at `place` when `orders[k][place]`
    is the item standing there."""
    totals = [0.0] * len(orders[0])
    for order, row in zip(orders, scores):
        peak = max(row)
        norm = peak + math.log(sum(math.exp(value - peak) for value in row))
        for place, value in enumerate(row):
            totals[order[place]] += value - norm
    return totals


def _asked(stem: str, letters: list[str], texts: list[str]) -> str:
    """The question with its options listed one to a line, in the given order."""
    return "\n".join([stem, *(f"({letter}) {text}" for letter, text in zip(letters, texts))])
