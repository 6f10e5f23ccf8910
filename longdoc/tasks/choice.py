"""Multiple-choice questions answered by the option the model rates likeliest.

Asked to pick an option, a small model writes a sentence that paraphrases one, often loosely, and
which option it meant is then a guess from shared words. A model that reports next-token
probabilities (`NextTokenScorer`: the local engine) is asked instead to continue "The right
option is (" and the options' letters are compared: one read of the prompt, nothing decoded, and
the answer is always one of the options, named by its letter and its words.
"""

from __future__ import annotations

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
    `sources` and `question`; cached like a reply."""
    prompt = load_prompt("ask_choice")
    rendered = prompt.render(question=question, sources=sources)
    key = result_key("choice", model.name, prompt.sha256, rendered)
    cached = results.get(key)
    if cached in options:
        return cast(str, cached)
    reading = model.count_tokens(prompt_text(rendered)) if on_progress is not None else 0
    options_, on_done = tracked("answering", 1, 1, GenerationOptions(), on_progress, reading)
    letters = list(options)
    scores = cast(NextTokenScorer, model).score_next(rendered, PREFIX, letters, on_read=options_.on_read)
    letter = letters[max(range(len(letters)), key=scores.__getitem__)]
    results.put(key, letter)
    if on_done is not None:
        on_done(1)
    return letter
