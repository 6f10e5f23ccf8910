"""The document model every stage shares: a document is a sequence of numbered pages of text."""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property

# Pages are joined with a blank line so paragraph splitting never glues two pages together.
PAGE_SEPARATOR = "\n\n"
# A Markdown heading line; HTML's <h1>-<h6> are read into the same form (ingest/html.py).
_HEADING = re.compile(r"(?m)^(#{1,6})[ \t]+(\S[^\n]*?)[ \t#]*$")
_LEADING_HEADINGS = re.compile(r"(?:\s*#{1,6}[ \t]+[^\n]*(?:\n|$))*")
# A section is named by its last two headings (a page title above them would repeat in every
# passage header), each cut to a readable length.
_SECTION_DEPTH, _TITLE_CHARS = 2, 80


class TextSpan:
    """A stretch of a document's text known by its first and last page and line (1-based, inclusive).

    A mixin for the dataclasses that are one (`Chunk`, `SummaryNode`, `Source`): each declares the
    four fields itself, among its own, so its field order and JSON stay as they were.
    """

    page_start: int
    page_end: int
    line_start: int
    line_end: int

    def location(self, kind: str) -> str:
        """'p. 5', 'pp. 3-4' for paged documents (or text with form-feed pages), else 'lines 10-42'."""
        if kind == "pdf" or self.page_end > 1:
            return f"p. {self.page_start}" if self.page_start == self.page_end else f"pp. {self.page_start}-{self.page_end}"
        return f"line {self.line_start}" if self.line_start == self.line_end else f"lines {self.line_start}-{self.line_end}"


@dataclass(frozen=True)
class Page:
    """One page of a document; text files have a single page unless they contain form feeds."""

    number: int  # 1-based, as a reader would cite it
    text: str


@dataclass(frozen=True)
class Document:
    """A document read from a file or stdin, with its pages in order."""

    source: str  # the path as given, or "<stdin>"
    pages: tuple[Page, ...]
    kind: str = "text"  # "text", "pdf", "html" or "markdown"
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @cached_property
    def text(self) -> str:
        """All pages joined; chunk offsets index into this string."""
        return PAGE_SEPARATOR.join(page.text for page in self.pages)

    @cached_property
    def page_starts(self) -> tuple[int, ...]:
        """Character offset in `text` where each page begins."""
        starts, offset = [], 0
        for page in self.pages:
            starts.append(offset)
            offset += len(page.text) + len(PAGE_SEPARATOR)
        return tuple(starts)

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the text and page layout: equal documents share caches, whatever their source."""
        digest = hashlib.sha256()
        for page in self.pages:
            digest.update(f"{page.number}:{len(page.text)}\n".encode())
            digest.update(page.text.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def page_at(self, offset: int) -> int:
        """Number of the page holding character `offset` of `text`."""
        index = bisect.bisect_right(self.page_starts, offset) - 1
        return self.pages[max(index, 0)].number

    @cached_property
    def _newlines(self) -> tuple[int, ...]:
        return tuple(i for i, char in enumerate(self.text) if char == "\n")

    def line_at(self, offset: int) -> int:
        """1-based line number of character `offset` of `text`."""
        return bisect.bisect_left(self._newlines, offset) + 1

    @cached_property
    def _sections(self) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """Where each heading line starts, and the section it opens ("Records › Team › Game")."""
        starts: list[int] = []
        names: list[str] = []
        path: list[tuple[int, str]] = []  # (level, title) of the headings enclosing this point
        for match in _HEADING.finditer(self.text):
            level = len(match.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level] + [(level, match.group(2)[:_TITLE_CHARS])]
            starts.append(match.start())
            names.append(" › ".join(title for _, title in path[-_SECTION_DEPTH:]))
        return tuple(starts), tuple(names)

    def section_at(self, offset: int) -> str:
        """The section holding character `offset`, by the headings before it (a passage that opens
        with headings stands under them); "" before any heading or in a document without them."""
        starts, names = self._sections
        if not starts:
            return ""
        body = _LEADING_HEADINGS.match(self.text, offset)
        index = bisect.bisect_right(starts, body.end() if body else offset) - 1
        return names[index] if index >= 0 else ""

    def pages_and_lines(self, start: int, end: int) -> tuple[int, int, int, int]:
        """(page_start, page_end, line_start, line_end) of `text[start:end]`, as a `TextSpan` holds them."""
        last = max(start, end - 1)  # end is exclusive; an empty span lies where it starts
        return self.page_at(start), self.page_at(last), self.line_at(start), self.line_at(last)
