"""How the library tells its caller what it is doing without printing: progress and warnings.

Progress goes to an `OnProgress` callback the caller passes (the CLI draws a bar from it; a
notebook may ignore it). Warnings are `LongdocWarning`s raised through Python's `warnings`
module: the CLI shows them on stderr as one line each, Python shows them as any other warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One report: what is under way, how much of it is done, and the tokens generated so far."""

    phase: str  # what is under way, e.g. "writing", "answering", "preparing qwen2.5-1.5b"
    done: int  # units finished (steps, files, paragraphs)
    total: int | None  # units in all, known before the first starts; None where it cannot be
    tokens: int = 0  # new tokens the model has generated in this phase so far
    token_limit: int = 0  # the most it may generate in this phase (0: no limit known)
    read: int = 0  # prompt tokens read so far in this phase (padding of a batch included)
    prompt_tokens: int = 0  # prompt tokens this phase has to read (0: not counted)


OnProgress = Callable[[Progress], None]


class LongdocWarning(UserWarning):
    """Something the user should know that does not stop the work (a cache that could not be
    written, a damaged index rebuilt)."""


def warn(message: str) -> None:
    """Report `message` as a `LongdocWarning` from the caller of the function that calls this."""
    warnings.warn(message, LongdocWarning, stacklevel=3)
