"""Everything longdoc shows on the terminal: results to stdout, progress and warnings to stderr."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

# Document text is untrusted: C0/C1 control characters (ESC starts terminal escape sequences)
# and bidi overrides are removed before anything reaches a terminal. Tab and newline stay.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def clean(text: str) -> str:
    """Text safe to print: no control characters or terminal escape sequences."""
    return _CONTROL.sub("", text)


def emit(text: str = "") -> None:
    """Write one result line to stdout, verbatim apart from control characters (never markup)."""
    sys.stdout.write(clean(text) + "\n")


def warn(message: str) -> None:
    """A one-line warning on stderr; document text in it is shown literally, not as markup."""
    stderr.print(f"warning: {clean(message)}", style="yellow", markup=False)


def info(message: str) -> None:
    """A one-line note on stderr, for progress-like facts worth keeping in a log."""
    stderr.print(clean(message), style="dim", markup=False)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Progress]:
    """A progress bar on stderr, shown only when stderr is a terminal, so pipes and logs stay clean."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    with bar:
        bar.add_task(description, total=total)
        yield bar


def advance(bar: Progress, steps: int = 1) -> None:
    """Move the single task of a bar made by `progress` forward."""
    bar.advance(bar.task_ids[0], steps)
