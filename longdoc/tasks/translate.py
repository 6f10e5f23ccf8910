"""Paragraph-aligned translation with running context and a glossary, streamed as it goes.

Each paragraph (paragraphs.py) becomes one output paragraph; a paragraph too long for one prompt is
translated piece by piece and the pieces joined again. Every piece is translated with the previous
piece and its translation as context and with the glossary entries that occur in it (glossary.py):
pinned terms, plus the recurring terms of the document, each translated once, the first time a
piece contains it. Pieces run in order, one after another, because each needs the translation
before it.

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

from longdoc.document import Document
from longdoc.model.protocol import GenerationOptions, Model
from longdoc.script import CJK_PUNCTUATION, HAN
from longdoc.tasks.glossary import clean_term, recurring_terms, sentence_with
from longdoc.tasks.language import detect_language, is_chinese, language_name
from longdoc.tasks.paragraphs import Paragraph, split_paragraphs, split_piece, split_runs
from longdoc.tasks.prompts import load_prompt
from longdoc.tasks.replan import replanning
from longdoc.tasks.results import ResultCache, result_key
from longdoc.tasks.steps import Step, run_steps
from longdoc.workers import DaemonPool

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NONE = "(none)"
_MAX_GLOSSARY_LINES = 40  # glossary entries shown per prompt; only those occurring in the piece
_CJK_CHAR = re.compile(f"[{HAN}{CJK_PUNCTUATION}]")
_LEAK_REMINDER = (
    "Write every word in {target}: leave nothing in {source} characters; give names of people and "
    "places in pinyin or their usual {target} form."
)
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


def _unwrap(reply: str) -> str:
    """The translation without tags a small model sometimes copies from the prompt."""
    return re.sub(r"^\s*<text>\s*|\s*</text>\s*$", "", reply.strip()).strip()


def missing_numbers(source: str, translation: str) -> tuple[str, ...]:
    """Multi-digit numbers of the source absent from the translation (single digits are often
    rendered as words or month names, so they are not checked)."""
    found = set(_NUMBER.findall(translation.replace(",", "")))
    return tuple(n for n in dict.fromkeys(_NUMBER.findall(source)) if len(n) > 1 and n.replace(",", "") not in found)
