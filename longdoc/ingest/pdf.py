"""Read a PDF's text page by page with pypdf, in a child process so a pathological file cannot hang
or crash longdoc: the child streams pages back and the parent stops it when time runs out."""

from __future__ import annotations

import io
import json
import logging
import math
import multiprocessing
import os
import re
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any

from pypdf import PdfReader
from pypdf.errors import DependencyError

from longdoc.document import Page
from longdoc.errors import CorruptInput, EmptyInput, EncryptedPdf, NoTextLayer
from longdoc.ingest.text import normalise

Message = dict[str, Any]

# Ligatures that PDF fonts emit as single code points; searching and tokenizing want the letters.
_LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl"}
)
_HYPHEN_BREAK = re.compile(r"(?<=[^\W\d_])-[ \t]*\n[ \t]*(?=[^\W\d_])")
_SPACE_RUN = re.compile(r"[^\S\n]+")
_SPACE_AT_LINE_END = re.compile(r" +\n")
_BLANK_LINES = re.compile(r"\n{3,}")
# How long the parent waits for a killed child to be reaped.
_REAP_SECONDS = 5.0


@dataclass(frozen=True)
class PdfPages:
    """The pages of a PDF that have text, and warnings about the pages that were left out."""

    pages: tuple[Page, ...]
    warnings: tuple[str, ...]


@dataclass
class _Progress:
    """What the parent has heard from the child so far."""

    total: int | None = None
    texts: dict[int, str] = field(default_factory=dict)
    failed: list[int] = field(default_factory=list)
    fatal: Message | None = None
    done: bool = False
    stopped: str | None = None  # why reading ended early: "timeout" or "crash"

    def apply(self, message: Message) -> None:
        event = message["event"]
        if event == "opened":
            self.total = message["pages"]
        elif event == "page":
            self.texts[message["number"]] = message["text"]
        elif event == "failed":
            self.failed.append(message["number"])
        elif event == "done":
            self.done = True
        else:
            self.fatal = message
            self.done = True

    def unread(self) -> list[int]:
        seen = set(self.texts) | set(self.failed)
        return [n for n in range(1, (self.total or 0) + 1) if n not in seen]


def read_pdf(data: bytes, source: str, timeout: float) -> PdfPages:
    """Extract the text of every page, giving up on the rest after `timeout` seconds in total
    (`math.inf` for no limit)."""
    progress = None
    if not multiprocessing.current_process().daemon:  # daemonic processes may not have children
        progress = _read_in_child(data, timeout)
    if progress is None:
        progress = _read_in_process(data)
    return _pages(progress, source, timeout)


def _read_in_child(data: bytes, timeout: float) -> _Progress | None:
    """Pages as the child reports them; None when no child process can be started."""
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(data, sender), daemon=True)
    try:
        child.start()
    except OSError:  # out of processes or memory: reading unguarded beats not reading
        receiver.close()
        sender.close()
        return None
    sender.close()  # so the parent sees EOF when the child dies
    try:
        return _collect(receiver, time.monotonic() + timeout)
    finally:
        receiver.close()
        _stop(child)


def _read_in_process(data: bytes) -> _Progress:
    """The fallback without a child: no time limit, but the same events and errors."""
    progress = _Progress()
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _extract_all(data, progress.apply)
    except Exception as exc:
        progress.apply({"event": "corrupt", "error": _describe(exc)})
    finally:
        logger.setLevel(level)
    return progress


def tidy(text: str) -> str:
    """Undo PDF line-layout artefacts: hyphenated line breaks, ligatures, runs of spaces."""
    # Lone surrogates from broken font maps would make every later UTF-8 encode fail.
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    text = normalise(text.translate(_LIGATURES).replace("\f", "\n"))
    text = _HYPHEN_BREAK.sub(_join_hyphenated, text)
    text = _SPACE_AT_LINE_END.sub("\n", _SPACE_RUN.sub(" ", text))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _join_hyphenated(match: re.Match[str]) -> str:
    # "inter-\nnational" is one word; "Jean-\nPaul" and "COVID-\n19" keep their hyphen.
    following = match.string[match.end()]
    return "" if following.islower() else "-\n"


def _context() -> BaseContext:
    # fork starts in milliseconds and shares the bytes without copying; elsewhere spawn is safe.
    if sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _collect(receiver: Connection, deadline: float) -> _Progress:
    progress = _Progress()
    while not progress.done:
        remaining = deadline - time.monotonic()
        # poll(None) waits for ever; an infinite float would overflow the selector.
        if remaining <= 0 or not receiver.poll(None if math.isinf(remaining) else remaining):
            progress.stopped = "timeout"
            break
        try:
            progress.apply(json.loads(receiver.recv_bytes()))
        except (EOFError, OSError):
            progress.stopped = "crash"  # killed by the OS (memory) or crashed inside a C library
            break
    return progress


def _stop(child: multiprocessing.process.BaseProcess) -> None:
    if child.is_alive():
        child.kill()
    child.join(_REAP_SECONDS)


def _pages(progress: _Progress, source: str, timeout: float) -> PdfPages:
    """Turn what the child reported into pages and warnings, or the error the user should see."""
    _raise_fatal(progress, source, timeout)
    texts = {number: tidy(text) for number, text in progress.texts.items()}
    pages = tuple(Page(number, text) for number, text in sorted(texts.items()) if text)
    empty = sorted(number for number, text in texts.items() if not text)
    unread = progress.unread()
    if not pages:
        _raise_no_text(progress, source, timeout, bool(empty))
    notes = []
    if progress.failed:
        failed = page_list(sorted(progress.failed))
        notes.append(f"{source}: skipped unreadable PDF page(s) {failed}")
    if empty:
        notes.append(f"{source}: page(s) {page_list(empty)} have no text layer (scanned?); left out")
    if unread:
        reason = _stop_reason(progress, timeout)
        notes.append(f"{source}: {reason}; page(s) {page_list(unread)} not read")
    return PdfPages(pages, tuple(notes))


def _raise_fatal(progress: _Progress, source: str, timeout: float) -> None:
    fatal = progress.fatal or {}
    if fatal.get("event") == "encrypted":
        raise EncryptedPdf(
            f"{source}: PDF is encrypted and needs a password; decrypt it first "
            "(e.g. qpdf --decrypt --password=PASSWORD in.pdf out.pdf)"
        )
    if fatal.get("event") == "crypto":
        raise EncryptedPdf(
            f"{source}: PDF is encrypted with AES, which needs the 'cryptography' package"
        )
    if progress.total is None:
        if progress.stopped is not None:
            raise CorruptInput(f"{source}: {_stop_reason(progress, timeout)} while opening the PDF")
        error = fatal.get("error", "unknown error")
        raise CorruptInput(f"{source}: damaged PDF, it cannot be opened ({error})")
    if progress.total == 0:
        raise EmptyInput(f"{source}: PDF has no pages")


def _raise_no_text(progress: _Progress, source: str, timeout: float, any_empty: bool) -> None:
    if progress.unread():
        raise CorruptInput(f"{source}: {_stop_reason(progress, timeout)} before any page with text")
    if any_empty:
        raise NoTextLayer(
            f"{source}: PDF has no text layer (scanned/image-only?); run OCR first, e.g. ocrmypdf"
        )
    raise CorruptInput(f"{source}: damaged PDF, none of its {progress.total} page(s) could be read")


def _stop_reason(progress: _Progress, timeout: float) -> str:
    if progress.stopped == "timeout":
        return f"PDF reading stopped after the {timeout:g} s limit"
    if progress.stopped == "crash":
        return "the PDF reader crashed"
    return f"damaged PDF ({(progress.fatal or {}).get('error', 'unknown error')})"


def page_list(numbers: list[int]) -> str:
    """Page numbers as a reader writes them: "2, 5-7, 10"."""
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


# ---- the child process -------------------------------------------------------------------------


def _child_main(data: bytes, sender: Connection) -> None:
    """Entry point of the child: extract every page and report each as it is done."""
    _quiet_child()

    def send(message: Message) -> None:
        sender.send_bytes(json.dumps(message).encode("utf-8"))

    try:
        _extract_all(data, send)
    except BaseException as exc:  # a traceback from the child must never reach the terminal
        try:
            send({"event": "corrupt", "error": _describe(exc)})
        except Exception:
            pass  # the parent has gone; nothing to report to
    finally:
        sender.close()


def _quiet_child() -> None:
    # Ctrl-C reaches the whole process group; the parent handles it and kills this child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # pypdf logs and warns about every repaired defect; the user hears about pages, not xref tables.
    logging.getLogger("pypdf").setLevel(logging.CRITICAL + 1)
    logging.getLogger("pypdf").propagate = False
    warnings.simplefilter("ignore")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


def _extract_all(data: bytes, send: Callable[[Message], None]) -> None:
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not _opens_without_password(reader, send):
        return
    total = len(reader.pages)
    send({"event": "opened", "pages": total})
    for number in range(1, total + 1):
        try:
            text = _extract_page(reader, number - 1)
        except Exception as exc:  # one bad page must not cost the others
            send({"event": "failed", "number": number, "error": _describe(exc)})
        else:
            send({"event": "page", "number": number, "text": text})
    send({"event": "done"})


def _opens_without_password(reader: PdfReader, send: Callable[[Message], None]) -> bool:
    # Many PDFs are "encrypted" only to restrict printing, with an empty user password.
    try:
        opened = bool(reader.decrypt(""))
    except DependencyError as exc:
        send({"event": "crypto", "error": _describe(exc)})
        return False
    if not opened:
        send({"event": "encrypted"})
    return opened


def _extract_page(reader: PdfReader, index: int) -> str:
    """The raw text of one page (a module-level function so tests can make it slow or fail)."""
    return reader.pages[index].extract_text() or ""


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
