"""Planning a step again when the server refuses one of its prompts as longer than its context.

A server's window is not always known in advance (not every server states it, and its tokenizer
counts differently from the one budgets are planned with), so a prompt planned to fit can still be
refused. The model then plans against a smaller window (model/server.py) and raises
`PromptTooLong`; the step is planned again against `model.context_window`, a bounded number of
times, and only while each refusal made the window smaller.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from longdoc.errors import PromptTooLong
from longdoc.model.protocol import Model

T = TypeVar("T")
P = ParamSpec("P")

# Plans after the first. A refusal that states the server's limit and count makes the first
# re-plan fit; one that states nothing shrinks the window by a quarter each time.
REPLANS = 2


def replanning(model: Model, plan: Callable[[int | None], T], replans: int = REPLANS, windowed: bool = False) -> T:
    """What `plan(None)` returns; when the model refuses one of its prompts as too long, what
    `plan(window)` returns, `window` being the model's window after the refusal (its tokens), at
    most `replans` more times. A step that plans without a window is given one at the first
    refusal; after that (and from the start, if `windowed`: the step plans against
    `model.context_window` every time) it is planned again only if the refusal made the window smaller."""
    window = model.context_window if windowed else None
    for attempt in range(replans + 1):
        try:
            return plan(window)
        except PromptTooLong as refusal:
            learned = model.context_window
            if attempt == replans or (window is not None and learned >= window):
                raise gave_up(refusal, model, attempt) from None
            window = learned
    raise AssertionError("unreachable: the loop returns or raises")


def replanned(task: Callable[P, T]) -> Callable[P, T]:
    """`task` (a function with a `model` argument that plans against `model.context_window` on
    every call) run again, through `replanning`, when its model refuses a prompt as too long."""
    signature = inspect.signature(task)

    @functools.wraps(task)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        model = signature.bind(*args, **kwargs).arguments["model"]
        return replanning(model, lambda window: task(*args, **kwargs), windowed=True)

    return run


def gave_up(refusal: PromptTooLong, model: Model, replans: int) -> PromptTooLong:
    """The refusal, saying that planning again did not make the prompt fit, or could not."""
    if replans:
        told = f"; still too long after planning it {replans} more time{'s' * (replans > 1)} against a smaller window"
    else:
        told = f"; it was planned for {model.context_window} tokens and cannot be planned smaller"
    return PromptTooLong(f"{refusal}{told} (set --context-window to what the server accepts)", refusal.limit, refusal.tokens)
