"""The `Model` protocol the tasks layer talks to, and the options of one generation call.

Nothing here imports torch, so tasks and their tests can use fakes without loading a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# A prompt is the user's message as text, or a whole conversation of {"role", "content"} messages.
Prompt = str | Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class GenerationOptions:
    """How to continue a prompt."""

    # Caps the answer; summaries of one chunk rarely need more, and CPU decoding is ~5-12 tok/s.
    max_new_tokens: int = 256
    # 0 means greedy decoding: the same prompt always gives the same text (cacheable, testable).
    temperature: float = 0.0
    # Nucleus sampling mass, used only when temperature > 0.
    top_p: float = 1.0
    # Generation ends at the first of these strings, which is not part of the returned text.
    stop: tuple[str, ...] = ()
    # Seeds sampling so that even sampled runs repeat.
    seed: int = 0
    # Prompts decoded together; beyond ~8 rows a 2-core CPU gains nothing, a GPU gains more.
    batch_size: int = 8
    # Greedy decoding of small models can fall into a loop, repeating a sentence until the token
    # cap. A row ends as soon as its last `loop_tokens` tokens already occurred in its output, and
    # that repeat is dropped. 0 turns the guard off; 24 tokens is longer than any phrase a summary
    # or translation legitimately repeats word for word.
    loop_tokens: int = 24
    # Greedy decoding of a single row (alone, or the last of its batch) guesses up to this many
    # next tokens by copying what followed the latest earlier occurrence of its last few tokens,
    # in the prompt or its own output, and checks the guess in the same pass (engine/lookahead.py).
    # Greedy output stays the model's, up to the rounding of a many-row pass (in bf16 a near tie
    # can tip another way). Off (0): on a 2-core Zen 4 a guessing pass costs ~1.2 steps and
    # translations confirm too few guesses, 0.92-0.96x the tokens a second of plain decoding on
    # the translate task's own prompts (bench/decode_task.py, bench/README.md "Copy lookahead").
    # Servers ignore it.
    lookahead: int = 0
    # Progress, for a bar that moves inside a long batch: `on_read(n)` reports n more prompt tokens
    # read, `on_token(n)` n more tokens generated (all rows together). Not part of what is generated.
    on_read: Callable[[int], None] | None = field(default=None, compare=False, repr=False)
    on_token: Callable[[int], None] | None = field(default=None, compare=False, repr=False)
    # `on_reply(i, text)` as soon as the reply to the call's i-th prompt is final (a server's as each
    # request returns, the local engine's as each batch ends), so it can be saved before the rest.
    on_reply: Callable[[int, str], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        assert self.max_new_tokens >= 1, "max_new_tokens must be >= 1"
        assert self.temperature >= 0.0, "temperature must be >= 0"
        assert 0.0 < self.top_p <= 1.0, "top_p must be in (0, 1]"
        assert self.batch_size >= 1, "batch_size must be >= 1"
        assert self.loop_tokens >= 0, "loop_tokens must be >= 0"
        assert self.lookahead >= 0, "lookahead must be >= 0"


@runtime_checkable
class Model(Protocol):
    """A language model that continues prompts; local engine and remote servers both fit."""

    @property
    def name(self) -> str:
        """Stable identifier, part of every cache key."""
        ...

    @property
    def context_window(self) -> int:
        """Tokens a prompt may take and still be attended to exactly (no sliding)."""
        ...

    @property
    def concurrency(self) -> int:
        """Prompts it serves at once as separate requests: a server's limit of requests in flight;
        1 for the local engine, which instead decodes the prompts of one call together in a batch."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of model tokens in `text` (no special tokens)."""
        ...

    def generate(self, prompts: Sequence[Prompt], options: GenerationOptions | None = None) -> list[str]:
        """One continuation per prompt, in order."""
        ...


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """`text` up to the first of the stop strings it contains (all of it when it has none)."""
    cuts = [text.find(s) for s in stop if s in text]
    return text[: min(cuts)] if cuts else text


@runtime_checkable
class PassageScorer(Protocol):
    """A model that can say how much a prompt's question attends to each of several passages (the
    local engine: read mode selects passages with it)."""

    def score_passages(self, prompt: Prompt, marker: str, passages: Sequence[str], baseline: str = "") -> list[float]:
        """Each passage's attention density (1 is average): the attention the prompt's text after
        `marker` pays its tokens, per token, over the same for all the passages, which stand, in
        order, where `marker` is. With `baseline` (a content-free question read between the
        passages and that text), each passage's attention over the baseline's attention to it."""
        ...


@runtime_checkable
class NextTokenScorer(Protocol):
    """A model that reports how likely each of a few labels is as the next token (the local engine:
    multiple-choice questions are answered with it, tasks/choice.py)."""

    def score_next(
        self, prompts: Sequence[Prompt], prefix: str, labels: Sequence[str], on_read: Callable[[int], None] | None = None
    ) -> list[list[float]]:
        """For each prompt, the log-probability of each label's first token right after the reply
        has begun with `prefix`; `on_read(n)` hears of n more prompt tokens read. Prompts that begin
        alike (one question with its options in turn) may share the reading of their beginning."""
        ...
