"""Reduce an HTML page to its readable text, keeping paragraph and line breaks, and its headings
as Markdown's "## Title" lines (a passage's section is found from them: Document.section_at)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is never prose a reader sees on the page.
_SKIPPED = frozenset({"script", "style", "head", "template", "noscript", "svg"})
# Elements that start a new paragraph (blank line) or a new line.
_PARAGRAPH = frozenset(
    {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "table", "ul", "ol",
     "dl", "section", "article", "header", "footer", "nav", "aside", "main", "figure", "form",
     "fieldset", "address", "hr", "body"}
)  # fmt: skip
_LINE = frozenset({"br", "li", "tr", "dt", "dd", "caption", "figcaption", "option"})
_CELL = frozenset({"td", "th"})
_HEADING = {f"h{level}": "#" * level + " " for level in range(1, 7)}

_WHITESPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")
_EMPTY_HEADING = re.compile(r"(?m)^#+$")


class _TextExtractor(HTMLParser):
    """Collects text nodes, turning block boundaries into newlines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0
        self._pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self._skip_depth = 0  # an unclosed <head> ends where the body starts
        if tag in _SKIPPED:
            self._skip_depth += 1
        elif tag == "pre":
            self._pre_depth += 1
        self._break(tag)
        if tag in _HEADING and not self._skip_depth:
            self.parts.append(_HEADING[tag])

    def handle_endtag(self, tag: str) -> None:
        if tag in _CELL:
            self.parts.append("\t")
        if tag in _SKIPPED:
            self._skip_depth = max(self._skip_depth - 1, 0)
        elif tag == "pre":
            self._pre_depth = max(self._pre_depth - 1, 0)
        if tag in _PARAGRAPH:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._pre_depth:
            self.parts.append(data)
            return
        # Outside <pre>, runs of whitespace are one space, as a browser renders them, and none
        # is kept at the start of a line.
        text = _WHITESPACE.sub(" ", data)
        if not self.parts or self.parts[-1].endswith(("\n", "\t", "# ")):
            text = text.lstrip(" ")
        if text:
            self.parts.append(text)

    def _break(self, tag: str) -> None:
        if tag in _PARAGRAPH:
            self.parts.append("\n\n")
        elif tag in _LINE:
            self.parts.append("\n")


def html_to_text(markup: str) -> str:
    """The visible text of an HTML document; entities unescaped, blocks on their own lines."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    lines = (line.rstrip() for line in "".join(parser.parts).split("\n"))
    return _BLANK_LINES.sub("\n\n", _EMPTY_HEADING.sub("", "\n".join(lines))).strip("\n")
