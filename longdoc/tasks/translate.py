"""Paragraph-aligned translation with running context and a glossary, streamed as it goes.

The document is split into paragraphs (blank-line separated, or line by line when it has no blank
lines); each becomes one output paragraph, with the source's own separators kept, so the layout
survives one to one. A paragraph too long for one prompt is cut at sentence ends and its pieces
joined again. Every piece is translated with the previous piece and its translation as context
and with the glossary entries that occur in it: pinned terms from the user, plus names and terms
the model reported for earlier pieces. Pieces run in order, one after another, because each
needs the translation before it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from longdoc.chunking import ChunkConfig, chunk_document
from longdoc.document import Document, Page
from longdoc.engine.model import GenerationOptions, Model
from longdoc.tasks.language import detect_language, is_chinese, language_name
from longdoc.tasks.prompts import load_prompt
from longdoc.tasks.results import ResultCache, result_key
from longdoc.tasks.steps import Step, run_steps

_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_LINE_BREAK = re.compile(r"\n\s*")
_TERMS_LINE = re.compile(r"^\s*\**\s*(?:TERMS|Terms|术语)\s*\**\s*[:：]", re.M)
_TERM_PAIR = re.compile(r"^\s*(?:[-*•]\s*)?(.+?)\s*(?:=|→|->)\s*(.+?)\s*$")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NONE = "(none)"
_MAX_GLOSSARY_LINES = 40  # glossary entries shown per prompt; only those occurring in the piece


@dataclass(frozen=True)
class TranslateOptions:
    """Languages, segment size and pinned terms."""

    source: str = "auto"  # a language code or name; auto = detected (zh or en)
    target: str | None = None  # default: en for Chinese sources, zh for English ones
    # Source tokens per prompt. Kept well under the window because the prompt also carries the
    # previous paragraph twice (source and translation) and the answer may be longer than the input.
    piece_tokens: int = 350
    glossary: dict[str, str] = field(default_factory=dict)  # pinned: source term -> translation


@dataclass(frozen=True)
class Paragraph:
    """One source paragraph and the whitespace that followed it in the document."""

    index: int
    text: str
    separator: str


@dataclass(frozen=True)
class TranslatedParagraph:
    """A paragraph's translation, ready to print followed by the source's separator."""

    index: int
    source: str
    text: str
    separator: str
    missing_numbers: tuple[str, ...]  # numbers of the source that the translation lacks


def resolve_languages(text: str, options: TranslateOptions) -> tuple[str, str]:
    """(source, target) language codes or names, with auto and the default target settled."""
    source = detect_language(text) if options.source == "auto" else options.source
    target = options.target or ("en" if is_chinese(source) else "zh")
    return source, target


def split_paragraphs(text: str) -> list[Paragraph]:
    """Paragraphs with their following separators; blank lines separate them when the text has
    any, single line breaks otherwise (text that puts one paragraph per line)."""
    body = text.strip()
    pattern = _BLANK_LINE if _BLANK_LINE.search(body) else _LINE_BREAK
    paragraphs, position = [], 0
    for match in pattern.finditer(body):
        paragraphs.append(Paragraph(len(paragraphs), body[position : match.start()], match.group()))
        position = match.end()
    paragraphs.append(Paragraph(len(paragraphs), body[position:], "\n"))
    return [p for p in paragraphs if p.text.strip()]


def translate(
    document: Document,
    model: Model,
    results: ResultCache,
    options: TranslateOptions = TranslateOptions(),
    on_piece: Callable[[int], None] | None = None,
) -> Iterator[TranslatedParagraph]:
    """Translated paragraphs in order, each yielded as soon as it is done (for streaming)."""
    source, target = resolve_languages(document.text, options)
    run = _Translation(model, results, options, source, target)
    for paragraph in split_paragraphs(document.text):
        pieces = [run.translate_piece(piece) for piece in split_piece(paragraph.text, model, options.piece_tokens)]
        if on_piece is not None:
            on_piece(len(pieces))
        text = ("" if is_chinese(target) else " ").join(pieces)
        yield TranslatedParagraph(paragraph.index, paragraph.text, text, paragraph.separator, missing_numbers(paragraph.text, text))


def split_piece(text: str, model: Model, piece_tokens: int) -> list[str]:
    """A paragraph as pieces of at most `piece_tokens` model tokens, cut at sentence ends."""
    flat = _LINE_BREAK.sub(" ", text.strip())  # a hard-wrapped paragraph is one paragraph
    if model.count_tokens(flat) <= piece_tokens:
        return [flat]
    document = Document(source="<paragraph>", pages=(Page(1, flat),))
    chunks = chunk_document(document, ChunkConfig(size=piece_tokens, overlap=0), counter=model.count_tokens)
    return [chunk.text for chunk in chunks]


class _Translation:
    """The state carried from piece to piece: the previous piece, its translation, the glossary."""

    def __init__(self, model: Model, results: ResultCache, options: TranslateOptions, source: str, target: str) -> None:
        self.model, self.results, self.options = model, results, options
        self.source_name, self.target_name = language_name(source), language_name(target)
        self.prompt = load_prompt("translate_segment")
        self.pinned = dict(options.glossary)
        self.learned: dict[str, str] = {}
        self.previous = ("", "")
        # Translations run a little longer than their source (English from Chinese: ~1.5x tokens).
        self.generation = GenerationOptions(max_new_tokens=2 * options.piece_tokens + 64, batch_size=1)

    def translate_piece(self, piece: str) -> str:
        glossary = self._glossary_for(piece)
        rendered = self.prompt.render(
            source_language=self.source_name,
            target_language=self.target_name,
            text=piece,
            previous_source=self.previous[0] or _NONE,
            previous_translation=self.previous[1] or _NONE,
            glossary=glossary or _NONE,
        )
        key = result_key("translate", self.model.name, self.prompt.sha256, self.target_name, rendered)
        reply = run_steps(self.model, self.results, [Step(key, rendered)], self.generation)[0]
        translation, terms = parse_reply(reply)
        for term, rendering in terms.items():
            if term in piece and term not in self.pinned:
                self.learned.setdefault(term, rendering)  # the first rendering of a name sticks
        self.previous = (piece, translation)
        return translation

    def _glossary_for(self, piece: str) -> str:
        entries = {**self.learned, **self.pinned}
        lines = [f"{term} = {rendering}" for term, rendering in entries.items() if term in piece]
        return "\n".join(lines[:_MAX_GLOSSARY_LINES])


def parse_reply(reply: str) -> tuple[str, dict[str, str]]:
    """The translation, and the `source = translation` terms listed after its TERMS: line."""
    match = _TERMS_LINE.search(reply)
    if match is None:
        return reply.strip(), {}
    terms: dict[str, str] = {}
    for line in reply[match.end() :].splitlines():
        pair = _TERM_PAIR.match(line)
        if pair and 0 < len(pair.group(1)) <= 40 and 0 < len(pair.group(2)) <= 80:
            terms[pair.group(1).strip("*\"'“”")] = pair.group(2).strip("*\"'“”")
    return reply[: match.start()].strip(), terms


def missing_numbers(source: str, translation: str) -> tuple[str, ...]:
    """Multi-digit numbers of the source absent from the translation (single digits are often
    rendered as words or month names, so they are not checked)."""
    found = set(_NUMBER.findall(translation.replace(",", "")))
    return tuple(n for n in dict.fromkeys(_NUMBER.findall(source)) if len(n) > 1 and n.replace(",", "") not in found)


def load_glossary_csv(text: str) -> dict[str, str]:
    """Pinned terms from CSV text: `source,translation` per row; a header row and blank rows are skipped."""
    import csv
    import io

    terms: dict[str, str] = {}
    for row in csv.reader(io.StringIO(text)):
        cells = [cell.strip() for cell in row]
        if len(cells) < 2 or not cells[0] or not cells[1] or cells[0].startswith("#"):
            continue
        if cells[0].lower() in ("source", "term", "src") and not terms:
            continue  # header
        terms[cells[0]] = cells[1]
    return terms
