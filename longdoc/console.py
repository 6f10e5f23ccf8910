"""Everything longdoc shows on the terminal: results to stdout, progress and warnings to stderr."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from longdoc import progress as reports

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
    """A progress bar on stderr, shown only when stderr is a terminal, so pipes and logs stay clean:
    what is under way, the bar, a count ("3/8", "412 tokens"), time spent and an estimate of the rest."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        _Timing(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    with bar:
        bar.add_task(description, total=total, count=_count(0, total))
        yield bar


def advance(bar: Progress, steps: int = 1) -> None:
    """Move the single task of a bar made by `progress` forward."""
    task = bar.tasks[0]
    bar.update(task.id, advance=steps, count=_count(int(task.completed) + steps, task.total))


def reporter(bar: Progress, label: str) -> reports.OnProgress:
    """An `OnProgress` that shows the library's reports on `bar`: "label: phase", and the bar moves
    by tokens generated where the phase has a token limit (a long batch still shows movement, and
    the estimate follows the decoding speed), else by units done. A new phase restarts the clock."""
    shown = {"phase": ""}

    def on_progress(report: reports.Progress) -> None:
        task = bar.task_ids[0]
        by_tokens = report.token_limit > 0
        completed = min(report.tokens, report.token_limit) if by_tokens else report.done
        total = report.token_limit if by_tokens else report.total
        count = " ".join(filter(None, [_count(report.done, report.total), report.unit]))
        if by_tokens:  # before the first token comes the prompt: say it is being read
            count += f" · {report.tokens} tokens" if report.tokens or not report.read else f" · reading {report.read} tokens"
        if report.phase != shown["phase"]:
            shown["phase"] = report.phase
            bar.reset(task, total=total, completed=completed, description=f"{label}: {report.phase}", count=count)
        else:
            bar.update(task, total=total, completed=completed, count=count)

    return on_progress


class _Timing(ProgressColumn):
    """Time spent on the phase, and an estimate of the time left once the speed is known."""

    def render(self, task: Task) -> Text:
        spent = _clock(task.finished_time if task.finished else task.elapsed)
        left = task.time_remaining
        return Text(f"{spent}" + (f", ~{_clock(left)} left" if left is not None and task.total else ""), style="dim")


def _clock(seconds: float | None) -> str:
    whole = int(seconds or 0)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}" if whole >= 3600 else f"{whole // 60}:{whole % 60:02d}"


def _count(done: int, total: float | None) -> str:
    return f"{done}/{int(total)}" if total is not None else ""
