"""Running many model calls as resumable steps: cached ones are read back, the rest generated in
batches, and each batch is saved the moment it finishes, so an interrupt loses at most one batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from longdoc.model.protocol import GenerationOptions, Model, Prompt
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
    for start in range(0, len(pending), options.batch_size):
        batch = pending[start : start + options.batch_size]
        texts = model.generate([steps[i].prompt for i in batch], options)
        for i, text in zip(batch, texts):
            text = text.strip()
            results.put(steps[i].key, text)
            outputs[i] = text
        if on_done is not None:
            on_done(len(batch))
    return [output or "" for output in outputs]
