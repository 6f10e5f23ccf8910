"""Paragraph-aligned translation with running context and a glossary, streamed as it goes.

The document is split into paragraphs (blank-line separated, or line by line when it has no blank
lines); each becomes one output paragraph, with the source's own separators kept, so the layout
survives one to one. A paragraph too long for one prompt is cut at sentence ends and its pieces
joined again. Every piece is translated with the previous piece and its translation as context
and with the glossary entries that occur in it: pinned terms from the user, plus names and terms
that recur in the document. A recurring term (a Chinese character sequence, or a capitalised name
in Latin script, seen at least three times) is translated once, in a short call of its own with a
sentence that uses it, the first time a piece contains it; from then on every piece that contains
it gets that translation in its glossary, so a name is rendered the same way throughout. Pieces run
in order, one after another, because each needs the translation before it.

With a server that takes concurrent requests (`model.concurrency` > 1) the document is cut, at paragraph
ends, into that many runs of about equal length, translated side by side, each run in order as
above. The context of a piece is its predecessor and that piece's translation, so a run after the
first begins by translating the piece before it once more, for context only: every piece still
sees its predecessor, at the cost of one extra request per run. Other ways lose more: giving only
the previous source paragraph drops the translation that fixes the wording of names and terms,
and independent pieces lose context everywhere. The recurring terms are all translated first, in
concurrent requests; a piece's glossary holds exactly the terms it contains either way, so its
glossary does not depend on how the document was split. Runs stream in document order.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from longdoc.chunking import ChunkConfig, chunk_document
from longdoc.document import Document, Page
from longdoc.model.protocol import GenerationOptions, Model
from longdoc.script import CJK_PUNCTUATION, HAN, HAN_CHARACTER
from longdoc.tasks.language import detect_language, is_chinese, language_name
from longdoc.tasks.prompts import load_prompt
from longdoc.tasks.replan import replanning
from longdoc.tasks.results import ResultCache, result_key
from longdoc.tasks.steps import Step, run_steps
from longdoc.workers import DaemonPool

_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_LINE_BREAK = re.compile(r"\n\s*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NONE = "(none)"
_MAX_GLOSSARY_LINES = 40  # glossary entries shown per prompt; only those occurring in the piece
_CJK_RUN = re.compile(f"[{HAN}]{{2,}}")
_CJK_CHAR = re.compile(f"[{HAN}{CJK_PUNCTUATION}]")
_LEAK_REMINDER = (
    "Write every word in {target}: leave nothing in {source} characters; give names of people and "
    "places in pinyin or their usual {target} form."
)
_NAME = re.compile(r"(?<![.!?。]\s)(?<!^)\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)*")
# Characters that start or end ordinary phrases rather than names: a candidate term with one of
# them at an edge is a fragment of a sentence ("的茶", "在镇").
_FUNCTION_CHARS = set("的了是在有和与及或不这那个们我你他她它也就都而着把被从到对说上下中里为以之其所很又还让给向于等匹支只条位座")
_NUMERALS = set("一二三四五六七八九十百千万两零年")
_MIN_OCCURRENCES = 3
_MAX_TERMS = 200
# The prompt's own words and chat template beside the pieces (measured: ~80 cl100k tokens), and
# the pieces a window must hold at once: the previous piece, its translation (~1.5x), this piece,
# and this piece's translation (up to 2x).
_TEMPLATE_TOKENS = 160
_PIECES_PER_WINDOW = 5.5


@dataclass(frozen=True)
class TranslateOptions:
    """Languages, segment size and pinned terms."""

    source: str = "auto"  # a language code or name; auto = detected (zh or en)
    target: str | None = None  # default: en for Chinese sources, zh for English ones
    # Source tokens per prompt. Kept well under the window because the prompt also carries the
    # previous paragraph twice (source and translation) and the answer may be longer than the input.
    piece_tokens: int = 350
    glossary: dict[str, str] = field(default_factory=dict)  # pinned: source term -> translation

    def __post_init__(self) -> None:
        assert self.piece_tokens >= 16, "piece_tokens must be >= 16"


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
) -> Iterator[TranslatedParagraph]:
    """Translated paragraphs in order, each yielded as soon as it is done (for streaming)."""
    source, target = resolve_languages(document.text, options)
    run = _Translation(model, results, options, source, target)
    terms = recurring_terms(document.text, is_chinese(source))
    paragraphs = split_paragraphs(document.text)
    # Runs of paragraphs side by side, one per request a server serves at once; the local engine
    # (concurrency 1) decodes one piece at a time anyway.
    runs = split_runs(paragraphs, model.concurrency)
    if len(runs) <= 1:
        yield from run.paragraphs(paragraphs, terms, document.text)
        return
    run.learn_terms(document.text, terms, document.text)
    yield from _side_by_side(run, runs, terms, document.text)


def split_runs(paragraphs: Sequence[Paragraph], count: int) -> list[list[Paragraph]]:
    """At most `count` consecutive runs of whole paragraphs, of about equal length in characters:
    a paragraph goes to the run its middle character falls in."""
    total = sum(len(p.text) for p in paragraphs) or 1
    runs: list[list[Paragraph]] = []
    done, current = 0, -1
    for paragraph in paragraphs:
        share = min(count - 1, (done + len(paragraph.text) // 2) * count // total)
        if share != current:
            runs.append([])
            current = share
        runs[-1].append(paragraph)
        done += len(paragraph.text)
    return runs


_DONE = object()  # a run has yielded all its paragraphs
_STOPPED = object()  # a run gave up because another failed or the reader went away


def _side_by_side(run: _Translation, runs: list[list[Paragraph]], terms: list[str], text: str) -> Iterator[TranslatedParagraph]:
    """The runs translated at once, one thread each, their paragraphs yielded in document order."""
    outboxes: list[queue.Queue[object]] = [queue.Queue() for _ in runs]
    stop = threading.Event()
    failures: list[BaseException] = []

    def work(number: int) -> None:
        outbox = outboxes[number]
        try:
            previous = ("", "")
            if number > 0:  # the piece before this run, translated again for context only
                last = run.pieces(runs[number - 1][-1].text)[-1]
                previous = (last, run.translate_piece(last, ("", "")))
            for paragraph in run.paragraphs(runs[number], terms, text, previous):
                if stop.is_set():
                    outbox.put(_STOPPED)
                    return
                outbox.put(paragraph)
            outbox.put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the reading thread, which raises it
            failures.append(error)
            stop.set()
            outbox.put(_STOPPED)

    pool = DaemonPool(len(runs), "longdoc-translate")
    try:
        for number in range(len(runs)):
            pool.submit(work, number)
        for outbox in outboxes:
            while (item := outbox.get()) is not _DONE:
                if item is _STOPPED:
                    raise failures[0]
                yield item  # type: ignore[misc]
    finally:
        stop.set()
        pool.shutdown()


def split_piece(text: str, model: Model, piece_tokens: int) -> list[str]:
    """A paragraph as pieces of at most `piece_tokens` model tokens, cut at sentence ends."""
    flat = _joined_lines(text.strip())  # a hard-wrapped paragraph is one paragraph
    if model.count_tokens(flat) <= piece_tokens:
        return [flat]
    document = Document(source="<paragraph>", pages=(Page(1, flat),))
    chunks = chunk_document(document, ChunkConfig(size=piece_tokens, overlap=0), counter=model.count_tokens)
    return [chunk.text for chunk in chunks]


def _joined_lines(text: str) -> str:
    """Line breaks inside a paragraph removed: nothing between Chinese characters, a space elsewhere."""
    def joiner(match: re.Match[str]) -> str:
        before, after = text[max(match.start() - 1, 0)], text[match.end() : match.end() + 1]
        return "" if _CJK_CHAR.match(before) and _CJK_CHAR.match(after) else " "

    return _LINE_BREAK.sub(joiner, text)


class _Translation:
    """What pieces share: prompts, languages and the glossary (pinned and learned terms)."""

    def __init__(self, model: Model, results: ResultCache, options: TranslateOptions, source: str, target: str) -> None:
        self.model, self.results, self.options = model, results, options
        self.source_name, self.target_name = language_name(source), language_name(target)
        self.prompt = load_prompt("translate_segment")
        self.pinned = dict(options.glossary)
        self.learned: dict[str, str] = {}
        self.term_prompt = load_prompt("translate_term")
        self.source, self.target = source, target
        # Translations run a little longer than their source (English from Chinese: ~1.5x tokens).
        self.generation = GenerationOptions(max_new_tokens=2 * options.piece_tokens + 64, batch_size=1)

    def paragraphs(
        self, paragraphs: Sequence[Paragraph], terms: list[str], document_text: str, previous: tuple[str, str] = ("", "")
    ) -> Iterator[TranslatedParagraph]:
        """The paragraphs translated in order, each piece with the one before it as context;
        `previous` is the context of the first piece: a (source, translation) pair, or empty."""
        joiner = "" if is_chinese(self.target) else " "
        for paragraph in paragraphs:
            pieces = []
            for piece in self.pieces(paragraph.text):
                self.learn_terms(piece, terms, document_text)
                translation = self.translate_piece(piece, previous)
                previous = (piece, translation)
                pieces.append(translation)
            text = joiner.join(pieces)
            yield TranslatedParagraph(paragraph.index, paragraph.text, text, paragraph.separator, missing_numbers(paragraph.text, text))

    def pieces(self, paragraph: str) -> list[str]:
        return split_piece(paragraph, self.model, self.options.piece_tokens)

    def learn_terms(self, piece: str, terms: list[str], document_text: str) -> None:
        """Translate, in one batch, the recurring terms of `piece` that have no translation yet."""
        new = [t for t in terms if t in piece and t not in self.learned and t not in self.pinned]
        if not new:
            return
        steps = []
        for term in new:
            rendered = self.term_prompt.render(
                source_language=self.source_name, target_language=self.target_name, term=term,
                sentence=sentence_with(document_text, term),
            )
            steps.append(Step(result_key("term", self.model.name, self.term_prompt.sha256, self.target_name, rendered), rendered))
        # A batch of 8 suits the local engine; a server gets as many at once as it serves (run_steps).
        replies = run_steps(self.model, self.results, steps, GenerationOptions(max_new_tokens=24, batch_size=8))
        for term, reply in zip(new, replies):
            rendering = clean_term(reply, term, self.target)
            self.learned[term] = rendering or ""  # "" = tried and failed: not asked again

    def translate_piece(self, piece: str, previous: tuple[str, str]) -> str:
        """The translation of `piece`, with `previous` (source, translation) as context. A piece
        that a server refuses as too long is cut smaller, to fit the window it taught the model."""
        return replanning(self.model, lambda window: self._translate_within(piece, previous, window))

    def _translate_within(self, piece: str, previous: tuple[str, str], window: int | None) -> str:
        """`piece` translated whole, or, within `window`, in pieces small enough for it."""
        if window is None:
            return self._translate_one(piece, previous, self.generation)
        size = max(16, int((window - _TEMPLATE_TOKENS) / _PIECES_PER_WINDOW))
        generation = replace(self.generation, max_new_tokens=2 * size + 64)
        if self.model.count_tokens(previous[0]) > size:
            previous = ("", "")  # context longer than a piece may now be: left out
        translations = []
        for part in split_piece(piece, self.model, size):
            translations.append(self._translate_one(part, previous, generation))
            previous = (part, translations[-1])
        return ("" if is_chinese(self.target) else " ").join(translations)

    def _translate_one(self, piece: str, previous: tuple[str, str], generation: GenerationOptions) -> str:
        translation = self._attempt(piece, previous, "", generation)
        if self._leaked(translation):
            # Small models leave rare words and names in Chinese characters. One more try, told
            # so; the attempt with fewer untranslated characters wins.
            reminder = _LEAK_REMINDER.format(source=self.source_name, target=self.target_name)
            retry = self._attempt(piece, previous, reminder, generation)
            translation = min((translation, retry), key=lambda text: len(_CJK_CHAR.findall(text)))
        return translation

    def _attempt(self, piece: str, previous: tuple[str, str], reminder: str, generation: GenerationOptions) -> str:
        messages = self._messages(piece, previous, reminder)
        key = result_key("translate", self.model.name, self.prompt.sha256, self.target_name, messages)
        return _unwrap(run_steps(self.model, self.results, [Step(key, messages)], generation)[0])

    def _leaked(self, translation: str) -> bool:
        """Whether a translation out of Chinese into a language not written in Chinese characters
        still holds some."""
        return is_chinese(self.source) and not is_chinese(self.target) and bool(_CJK_CHAR.search(translation))

    def _messages(self, piece: str, previous: tuple[str, str], reminder: str = "") -> list[dict[str, str]]:
        """System (languages, glossary), then the previous paragraph and its translation as the
        conversation so far, then this paragraph: context a small model does not mistake for
        text to translate."""
        system, user = self._render(piece, reminder)
        if not previous[0]:
            return [system, user]
        _, previous_user = self._render(previous[0])
        return [system, previous_user, {"role": "assistant", "content": previous[1]}, user]

    def _render(self, piece: str, reminder: str = "") -> tuple[dict[str, str], dict[str, str]]:
        rendered = self.prompt.render(
            source_language=self.source_name,
            target_language=self.target_name,
            glossary=self._glossary_for(piece) or _NONE,
            reminder=reminder,
            text=piece,
        )
        assert isinstance(rendered, list) and len(rendered) == 2, "translate_segment needs [system] and [user] parts"
        return rendered[0], rendered[1]

    def _glossary_for(self, piece: str) -> str:
        entries = {**{t: r for t, r in self.learned.items() if r}, **self.pinned}
        lines = [f"{term} = {rendering}" for term, rendering in entries.items() if term in piece]
        return "\n".join(lines[:_MAX_GLOSSARY_LINES])


def recurring_terms(text: str, chinese: bool) -> list[str]:
    """Names and terms worth a glossary entry: sequences that recur, longest first.

    Chinese: 3-6 character sequences seen at least three times, not starting or ending with a
    function character, not mostly numerals, and not just part of a longer recurring sequence. Latin script:
    capitalised words and phrases not at a sentence start, seen at least three times.
    """
    counts: dict[str, int] = {}
    if chinese:
        for run in _CJK_RUN.findall(text):
            for size in (3, 4, 5, 6):  # two-character sequences are mostly common words
                for i in range(len(run) - size + 1):
                    gram = run[i : i + size]
                    counts[gram] = counts.get(gram, 0) + 1
        candidates = {g: c for g, c in counts.items() if c >= _MIN_OCCURRENCES and _could_be_term(g)}
        # "雾溪" inside "雾溪镇": keep the shorter only when it also occurs on its own often enough.
        terms = [g for g, c in candidates.items() if not any(g in longer and c - candidates[longer] < _MIN_OCCURRENCES for longer in candidates if len(longer) > len(g))]
    else:
        for match in _NAME.finditer(text):
            counts[match.group()] = counts.get(match.group(), 0) + 1
        terms = [name for name, count in counts.items() if count >= _MIN_OCCURRENCES]
    terms.sort(key=lambda term: (-len(term), -counts[term], term))
    return terms[:_MAX_TERMS]


def _could_be_term(gram: str) -> bool:
    """False for fragments of ordinary phrasing: a function character at an edge or "的" inside,
    or a number ("二十", "十年代")."""
    if gram[0] in _FUNCTION_CHARS or gram[-1] in _FUNCTION_CHARS or "的" in gram or gram[-1] in _NUMERALS:
        return False
    return sum(char in _NUMERALS for char in gram) * 2 < len(gram)


def sentence_with(text: str, term: str) -> str:
    """The sentence (at most ~200 characters around the term) where `term` first occurs."""
    at = text.find(term)
    start = max(text.rfind(mark, 0, at) for mark in ("。", "！", "？", ". ", "\n")) + 1
    end_marks = [text.find(mark, at) for mark in ("。", "！", "？", ". ", "\n")]
    end = min([e + 1 for e in end_marks if e >= 0] or [len(text)])
    start, end = max(start, at - 100), min(end, at + len(term) + 100)
    return text[start:end].strip()


def clean_term(reply: str, term: str, target: str) -> str | None:
    """The translation in a reply to the term prompt, or None when it does not look like one.

    Small models wrap it ('The translation of "X" is "Y".'): the last quoted phrase is taken.
    Rejected: long replies, the term itself, or text still in the source script.
    """
    quoted = re.findall(r"[\"“”']([^\"“”']{1,60})[\"“”']", reply)
    candidate = (quoted[-1] if quoted else reply.strip().splitlines()[0] if reply.strip() else "").strip(" .。\"'“”")
    if not candidate or candidate == term or len(candidate.split()) > 6 or len(candidate) > 60:
        return None
    if not is_chinese(target) and _CJK_RUN.search(candidate) or HAN_CHARACTER.search(candidate) and not is_chinese(target):
        return None
    if is_chinese(target) and not HAN_CHARACTER.search(candidate):
        return None
    return candidate


def _unwrap(reply: str) -> str:
    """The translation without tags a small model sometimes copies from the prompt."""
    return re.sub(r"^\s*<text>\s*|\s*</text>\s*$", "", reply.strip()).strip()


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
