"""One task over many input files: one output file each, several at once where the model serves
requests concurrently, and a failed input reported and skipped while the rest go on."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path

from longdoc.errors import LongdocError, OutputUnwritable
from longdoc.files import atomic_write_text
from longdoc.workers import DaemonPool

# Makes the text of one output from the input named by its argument.
Job = Callable[[str], str]


@dataclass(frozen=True)
class Outcome:
    """What became of one input: the file written, or the error that stopped it."""

    source: str
    output: Path | None
    error: LongdocError | None = None


def output_paths(sources: Sequence[str], out_dir: Path, suffix: str) -> list[Path]:
    """Where each input's result goes: `<stem><suffix>` in `out_dir`; inputs that share a stem
    (a.txt, a.pdf, or a.txt in two folders) keep their whole name and, if still equal, a number."""
    stems = [Path(source).stem or "stdin" for source in sources]
    names = [stem if stems.count(stem) == 1 else Path(source).name for stem, source in zip(stems, sources)]
    seen: dict[str, int] = {}
    paths = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique = name if names.count(name) == 1 else f"{name}.{seen[name]}"
        paths.append(out_dir / f"{unique}{suffix}")
    return paths


def run_batch(
    sources: Sequence[str],
    job: Job,
    out_dir: Path,
    suffix: str,
    parallel: int = 1,
    fatal: tuple[type[LongdocError], ...] = (),
) -> Iterator[Outcome]:
    """Run `job` on every input and write its text atomically into `out_dir`, yielding each
    outcome as the input finishes. `parallel` inputs run at once (1: one after another, here).
    An error of a `fatal` class is no input's fault (the model server is gone): it is raised and
    ends the batch, keeping the files already written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputUnwritable(f"cannot create the output directory {out_dir}: {error.strerror or error}") from error
    work = list(zip(sources, output_paths(sources, out_dir, suffix)))
    if parallel <= 1:
        for source, path in work:
            yield _checked(_run_one(job, source, path), fatal)
        return
    pool = DaemonPool(parallel, "longdoc-input")
    try:
        pending: set[Future[Outcome]] = {pool.submit(_run_one, job, source, path) for source, path in work}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield _checked(future.result(), fatal)
    finally:
        # Ctrl-C or an abandoned iteration: inputs not started are dropped; finished files stay.
        pool.shutdown()


def _checked(outcome: Outcome, fatal: tuple[type[LongdocError], ...]) -> Outcome:
    if isinstance(outcome.error, fatal):
        raise outcome.error
    return outcome


def _run_one(job: Job, source: str, path: Path) -> Outcome:
    try:
        write_atomically(path, job(source))
    except LongdocError as error:
        return Outcome(source, None, error)
    except Exception as error:  # noqa: BLE001 - one input's bug must not end the batch; it is reported
        failure = LongdocError(f"internal error: {type(error).__name__}: {error}")
        failure.__cause__ = error
        return Outcome(source, None, failure)
    return Outcome(source, path)


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` atomically; a failure is an `OutputUnwritable` naming the path."""
    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise OutputUnwritable(f"cannot write {path}: {error.strerror or error}") from error
