"""Token-aware chunking: a document becomes overlapping chunks cut at sentence and paragraph ends."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from longdoc.document import Document, TextSpan
from longdoc.tokens import TokenCounter, count_tokens

# A sentence ends at . ! ? (followed by space) or at Chinese/Japanese 。！？； and the closing
# quotes or brackets right after it. A blank line ends a paragraph.
_SENTENCE_END = re.compile(r"(?:[.!?]+[\"'”’)\]]*(?=\s)|[。！？；]+[”’」』）)]*)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\r]*\n\s*|\f\s*")
# A period after an initial or a dotted abbreviation ("Robert T. Stafford", "U.S. Army", "P.L.
# 93-288", "e.g.") or a title ("Dr. Lee") ends no sentence; nor does one before a lowercase word.
_ABBREVIATED = re.compile(r"(?:^|[\s(\[\"'“‘])(?:(?:[A-Za-z]\.)*[A-Za-z]|" + "|".join(
    "Mr Mrs Ms Dr Prof St Jr Sr Inc Ltd Co Corp No Nos vs Fig Vol Gen Sen Rep Gov Dept Sec Art approx cf".split()
) + r")$")
_NEXT_LOWER = re.compile(r"\s+[a-z]")
# Where an over-long sentence may still be cut without splitting a word: after a comma or space.
_SOFT_BREAK = re.compile(r"[,，、:：]\s*|\s+")
# No tokenizer spends more than this many characters on one token in practice; it bounds how much
# text is counted when cutting an over-long sentence, keeping that linear in the sentence length.
_MAX_CHARS_PER_TOKEN = 12


@dataclass(frozen=True)
class ChunkConfig:
    """How to cut a document into chunks."""

    # 200 cl100k tokens leave room below the 256-token input of the default embedder even for
    # text that its WordPiece tokenizer splits more finely (digits, rare words).
    size: int = 200
    # ~15% overlap keeps a sentence cut at a chunk edge whole in one of the two neighbours.
    overlap: int = 30

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"chunk size must be at least 8 tokens, not {self.size}")
        if not 0 <= self.overlap < self.size:
            raise ValueError(f"overlap must be between 0 and the chunk size, not {self.overlap}")


@dataclass(frozen=True)
class Chunk(TextSpan):
    """A span of a document's text with where it came from."""

    id: str  # stable: content hash of the document + position, equal for equal input and config
    index: int  # 0-based position in the document
    text: str
    start: int  # character offsets into Document.text, end exclusive
    end: int
    page_start: int
    page_end: int
    line_start: int
    line_end: int
    tokens: int

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict of every field."""
        return asdict(self)


@dataclass(frozen=True)
class _Unit:
    """A sentence (or piece of one) with its offsets and token count."""

    start: int
    end: int
    tokens: int


def chunk_document(
    document: Document, config: ChunkConfig = ChunkConfig(), counter: TokenCounter = count_tokens
) -> list[Chunk]:
    """Cut `document` into chunks of at most `config.size` tokens as counted by `counter`."""
    text = document.text
    units = [piece for unit in _sentences(text, counter) for piece in _fit(text, unit, config.size, counter)]
    chunks: list[Chunk] = []
    first = 0
    while first < len(units):
        last = _pack(text, units, first, config.size, counter)
        chunks.append(_make_chunk(document, units[first].start, units[last].end, len(chunks), counter))
        if last + 1 >= len(units):
            break
        first = _overlap_start(units, first, last, config.overlap)
    return chunks


def abbreviation_period(text: str, period: int) -> bool:
    """Whether the "." at text[period], followed by whitespace, belongs to an abbreviation or an
    initial rather than ending a sentence."""
    if _NEXT_LOWER.match(text, period + 1):
        return True
    return _ABBREVIATED.search(text, max(0, period - 12), period) is not None


def _sentences(text: str, counter: TokenCounter) -> Iterator[_Unit]:
    """Sentences of `text` in order, stripped of surrounding whitespace."""
    for para_start, para_end in _spans(text, _PARAGRAPH_BREAK, 0, len(text)):
        for start, end in _spans(text, _SENTENCE_END, para_start, para_end, keep_separator=True, skip=_abbreviation):
            yield _Unit(start, end, counter(text[start:end]))


def _abbreviation(text: str, match: re.Match[str]) -> bool:
    return match.group() == "." and abbreviation_period(text, match.start())


def _spans(text: str, pattern: re.Pattern[str], start: int, end: int, keep_separator: bool = False,
           skip: Callable[[str, re.Match[str]], bool] | None = None) -> Iterator[tuple[int, int]]:
    """Non-blank spans of text[start:end] between matches of `pattern` (but those `skip` rejects),
    whitespace trimmed."""
    cursor = start
    for match in pattern.finditer(text, start, end):
        if skip is not None and skip(text, match):
            continue
        cut = match.end() if keep_separator else match.start()
        yield from _trimmed(text, cursor, cut)
        cursor = match.end()
    yield from _trimmed(text, cursor, end)


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        yield start, end


def _fit(text: str, unit: _Unit, size: int, counter: TokenCounter) -> Iterator[_Unit]:
    """Split a unit longer than `size` tokens at soft breaks, or between characters if it has none."""
    if unit.tokens <= size:
        yield unit
        return
    start = unit.start
    while True:
        if unit.end - start <= size * _MAX_CHARS_PER_TOKEN and (tokens := counter(text[start : unit.end])) <= size:
            yield _Unit(start, unit.end, tokens)
            return
        cut = _longest_prefix(text, start, unit.end, size, counter)
        piece_end = next(_trimmed(text, start, cut), (start, cut))[1]
        yield _Unit(start, piece_end, counter(text[start:piece_end]))
        start = next(_trimmed(text, cut, unit.end), (unit.end, unit.end))[0]
        if start >= unit.end:
            return


def _longest_prefix(text: str, start: int, end: int, size: int, counter: TokenCounter) -> int:
    """End of the longest text[start:cut] within `size` tokens, moved back to a soft break if any."""
    low, high = start + 1, min(end, start + size * _MAX_CHARS_PER_TOKEN)
    # text[start:low] always fits (one character is a few tokens at most); search for the longest.
    while low < high:
        middle = (low + high + 1) // 2
        if counter(text[start:middle]) <= size:
            low = middle
        else:
            high = middle - 1
    breaks = [m.end() for m in _SOFT_BREAK.finditer(text, start, low) if m.end() < low]
    # Only back off to a soft break if it keeps at least half the piece; else cut mid-text.
    if breaks and breaks[-1] - start > (low - start) // 2:
        return breaks[-1]
    return low


def _pack(text: str, units: list[_Unit], first: int, size: int, counter: TokenCounter) -> int:
    """Index of the last unit that fits with units[first] in one chunk of at most `size` tokens."""
    total, last = units[first].tokens, first
    while last + 1 < len(units) and total + units[last + 1].tokens + 1 <= size:
        last += 1
        total += units[last].tokens + 1  # +1: the whitespace between units is usually a token
    # Merging units can tokenize differently from their parts: verify and back off if needed.
    while last > first and counter(text[units[first].start : units[last].end]) > size:
        last -= 1
    return last


def _overlap_start(units: list[_Unit], first: int, last: int, overlap: int) -> int:
    """First unit of the next chunk: the trailing units of this one that fit in `overlap` tokens."""
    start, carried = last + 1, 0
    while start - 1 > first and carried + units[start - 1].tokens <= overlap:
        start -= 1
        carried += units[start].tokens
    return start


def _make_chunk(document: Document, start: int, end: int, index: int, counter: TokenCounter) -> Chunk:
    text = document.text[start:end]
    page_start, page_end, line_start, line_end = document.pages_and_lines(start, end)
    return Chunk(
        id=f"{document.content_hash[:12]}-{index}",
        index=index,
        text=text,
        start=start,
        end=end,
        page_start=page_start,
        page_end=page_end,
        line_start=line_start,
        line_end=line_end,
        tokens=counter(text),
    )
