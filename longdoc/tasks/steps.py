"""Running many model calls as resumable steps: cached ones are read back, the rest generated in
batches, and each reply is saved the moment it is final (a server's as its request returns, the
local engine's as its decoding batch ends), so an interrupt loses at most the replies under way."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from longdoc.model.protocol import GenerationOptions, Model, Prompt
from longdoc.progress import OnProgress, Progress
from longdoc.tasks.results import ResultCache


@dataclass(frozen=True)
class Step:
    """One model call: the prompt and the cache key of its result."""

    key: str
    prompt: Prompt


def run_steps(
    model: Model,
    results: ResultCache,
    steps: Sequence[Step],
    options: GenerationOptions,
    on_done: Callable[[int], None] | None = None,
) -> list[str]:
    """The output of every step, in order; `on_done(n)` reports n more steps finished."""
    outputs: list[str | None] = [results.get(step.key) for step in steps]
    cached = sum(output is not None for output in outputs)
    if cached and on_done is not None:
        on_done(cached)
    pending = [i for i, output in enumerate(outputs) if output is None]
    # A local decoding batch, or as many requests as a server serves at once, per call.
    wave = max(options.batch_size, model.concurrency)
    lock = threading.Lock()  # a server's replies arrive on its request threads
    for start in range(0, len(pending), wave):
        batch = pending[start : start + wave]

        def keep(number: int, text: str, batch: list[int] = batch) -> None:
            index = batch[number]
            with lock:
                if outputs[index] is not None:
                    return
                outputs[index] = text.strip()
                results.put(steps[index].key, text.strip())
            if on_done is not None:
                on_done(1)

        texts = model.generate([steps[i].prompt for i in batch], replace(options, on_reply=keep))
        for number, text in enumerate(texts):  # a model that reports no reply early
            keep(number, text)
    return [output or "" for output in outputs]


def tracked(
    phase: str, total: int, token_limit: int, options: GenerationOptions, on_progress: OnProgress | None,
    prompt_tokens: int = 0,
) -> tuple[GenerationOptions, Callable[[int], None] | None]:
    """`options` and an `on_done` for `run_steps` that report `phase` to `on_progress`: steps done of
    `total`, the `prompt_tokens` read first and every token generated after, so a long batch shows
    movement from the start (a whole document read through the engine takes minutes).

    The first report (nothing done) goes out at once, so the count is known before any step starts."""
    if on_progress is None:
        return options, None
    state = {"done": 0, "tokens": 0, "read": 0}

    def report() -> None:
        on_progress(Progress(phase, state["done"], total, state["tokens"], token_limit, state["read"], prompt_tokens))

    def on_token(count: int) -> None:
        state["tokens"] += count
        report()

    def on_read(count: int) -> None:
        state["read"] += count
        report()

    def on_done(count: int) -> None:
        state["done"] += count
        report()

    report()
    return replace(options, on_token=on_token, on_read=on_read), on_done
