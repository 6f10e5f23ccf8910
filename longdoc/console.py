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
    """An `OnProgress` that shows the library's reports on `bar` as "label: phase" with its count;
    a new phase or stage restarts the clock, so the estimate follows the speed of what is under way."""
    shown: dict[str, tuple[str, str]] = {"stage": ("", "")}

    def on_progress(report: reports.Progress) -> None:
        task = bar.task_ids[0]
        count = _count(report.done, report.total)
        # Before the first token comes the prompt: the bar moves by tokens read, then by tokens
        # generated (each a stage of its own: its speed, its estimate), else by units done.
        if report.token_limit and not report.tokens and report.read and report.prompt_tokens:
            stage, completed, total = "reading", min(report.read, report.prompt_tokens), report.prompt_tokens
            count += f" · reading {completed}/{total} tokens"
        elif report.token_limit:
            stage, completed, total = "writing", min(report.tokens, report.token_limit), report.token_limit
            count += f" · {report.tokens} tokens"
        else:
            stage, completed, total = "", report.done, report.total
        if (report.phase, stage) != shown["stage"]:
            shown["stage"] = (report.phase, stage)
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
