"""Read a document from a path or stdin into a `Document`: PDF, HTML, Markdown or plain text.

The format is decided by the bytes (a PDF piped on stdin works); the file extension only tells
HTML and Markdown apart from plain text. Every failure is a `longdoc.errors.InputError`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO

from longdoc.document import Document, Page
from longdoc.errors import (
    EmptyInput,
    InputIsDirectory,
    InputNotFound,
    InputUnreadable,
)
from longdoc.ingest.html import html_to_text
from longdoc.ingest.sniff import is_pdf, looks_like_html
from longdoc.ingest.text import decode, split_pages

__all__ = ["read_document"]

STDIN_SOURCE = "<stdin>"
_HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
_MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})


def read_document(
    source: str | os.PathLike[str],
    *,
    encoding: str | None = None,
    pdf_timeout: float = 120.0,
    stdin: BinaryIO | None = None,
) -> Document:
    """Read a file, or stdin when `source` is "-", into a Document of numbered pages."""
    if os.fspath(source) == "-":
        name, suffix, data = STDIN_SOURCE, "", _read_stdin(stdin)
    else:
        name = os.fspath(source)
        suffix, data = Path(name).suffix.lower(), _read_file(name)
    if not data.strip():
        raise EmptyInput(f"{name}: is empty")
    if is_pdf(data):
        return _pdf_document(data, name, pdf_timeout)
    return _text_document(data, name, suffix, encoding)


def _read_file(path: str) -> bytes:
    """All bytes of a file, with OS errors mapped to the user-facing input errors."""
    try:
        if os.path.isdir(path):
            raise InputIsDirectory(f"{path}: is a directory, not a document")
        with open(path, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        raise InputNotFound(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputIsDirectory(f"{path}: is a directory, not a document") from None
    except PermissionError:
        raise InputUnreadable(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputUnreadable(f"{path}: cannot read: {exc.strerror or exc}") from None


def _read_stdin(stdin: BinaryIO | None) -> bytes:
    stream = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise InputUnreadable(f"{STDIN_SOURCE}: no standard input to read")
    try:
        return stream.read()
    except OSError as exc:
        raise InputUnreadable(f"{STDIN_SOURCE}: cannot read: {exc.strerror or exc}") from None


def _pdf_document(data: bytes, name: str, timeout: float) -> Document:
    from longdoc.ingest.pdf import read_pdf  # pypdf takes ~0.3 s to import: only for PDFs

    result = read_pdf(data, name, timeout)
    return Document(source=name, pages=result.pages, kind="pdf", warnings=result.warnings)


def _text_document(data: bytes, name: str, suffix: str, encoding: str | None) -> Document:
    decoded = decode(data, name, encoding)
    kind = _text_kind(decoded.text, suffix)
    if kind == "html":
        texts = [html_to_text(decoded.text)]
    else:
        texts = split_pages(decoded.text)
    # Blank pages are left out, but the others keep their numbers so citations stay right.
    pages = tuple(
        Page(number, text.strip("\n").rstrip())
        for number, text in enumerate(texts, start=1)
        if text.strip()
    )
    if not pages:
        raise EmptyInput(f"{name}: has no text, only whitespace or markup")
    warnings = (decoded.warning,) if decoded.warning else ()
    return Document(source=name, pages=pages, kind=kind, warnings=warnings)


def _text_kind(text: str, suffix: str) -> str:
    if suffix in _HTML_SUFFIXES:
        return "html"
    if suffix in _MARKDOWN_SUFFIXES:
        return "markdown"
    return "html" if looks_like_html(text) else "text"
