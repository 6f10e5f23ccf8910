"""Question answering over a document, with citations that map back to pages.

Retrieval mode (`ask`): retrieve from the external memory (hybrid dense + BM25) -> merge
overlapping or adjacent passages -> pack the best into the model's budget as numbered sources ->
answer citing [n] -> map each [n] to its pages or lines.

Read mode (`ask_by_reading`): no retrieval; the model reads the whole document, a window of
numbered passages at a time with the question around each, and the passages its attention to the
question ranks first are answered from as in retrieval mode (tasks/scan.py). A model that cannot
report its attention gets the whole document in one prompt, the question first and last.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import combinations

from longdoc.chunking import ChunkConfig, chunk_document
from longdoc.document import Document, TextSpan
from longdoc.memory.index import DocumentMemory, Hit
from longdoc.memory.lexical import Vocabulary, tokenize
from longdoc.model.protocol import GenerationOptions, Model, NextTokenScorer, PassageScorer
from longdoc.progress import OnProgress
from longdoc.script import HAN, HAN_CHARACTER
from longdoc.tasks.choice import choose, options_of, stem_of
from longdoc.tasks.cleanup import sentences, tidy
from longdoc.tasks.language import detect_language, reply_language
from longdoc.tasks.numerals import numbers_as_digits
from longdoc.tasks.pick import MOST, pick_scores
from longdoc.tasks.prompts import PromptTemplate, load_prompt, prompt_text
from longdoc.tasks.replan import replanned
from longdoc.tasks.results import ResultCache, result_key
from longdoc.tasks.scan import rerank, scan, with_words
from longdoc.tasks.scope import MULTIPLE_CHOICE, question_terms, unmentioned
from longdoc.tasks.steps import Step, run_steps, tracked

# What the prompt tells the model to write when the passages do not hold the answer.
NOT_FOUND_MARKER = "NOT IN DOCUMENT"
_CITATION = re.compile(r"\[(\d+(?:\s*[,;，]\s*\d+)*)\]")
_LEADING_CITATIONS = re.compile(rf"^(?:{_CITATION.pattern}[.:,]?\s*)+")
_HEADING_MARK = re.compile(r" (?=#{1,6} )")  # where a flattened Markdown heading begins
_PROMPT_MARGIN = 48  # chat template and source headers the template text does not show


@dataclass(frozen=True)
class AskOptions:
    """How much to retrieve and how long an answer may be."""

    # Chunks pulled from the index before packing; more than fit, so packing can fill the budget.
    candidates: int = 12
    # The answer comes first and one supporting sentence after it; decoding is the slow part on a
    # CPU (2-7 tok/s with the default model), and the old 300-token cap let small models copy
    # whole passages (bench/answers.py: seconds per question).
    answer_tokens: int = 120
    # Passages shown to the model at most; beyond ~8 a small model loses track of what to cite.
    max_sources: int = 8
    # The second look (after a refusal) shows only the best few: qwen2.5-0.5b, given the needle as
    # passage [1] of 8 (2,100 tokens), invented an answer; given [1] of 4, it answered right.
    recheck_sources: int = 3
    # A question whose terms the document mostly never mentions is not asked of the model
    # (tasks/scope.py): below this share of them, the answer is "not in the document".
    min_mentioned: float = 0.4
    # A document that fits the budget whole is given whole, in order, as at most max_sources
    # passages: a question about a whole story needs more than the best few chunks.
    whole_if_fits: bool = True
    # Read mode: tokens per numbered passage of the whole document (a citation's granularity).
    read_passage_tokens: int = 300
    # Read mode answers from this many of the passages the question attended to most: the scan
    # ranks a planted fact's passage first where retrieval's top 3 hold an NQ answer half the time,
    # and each passage costs the answer ~330 tokens to read (~15 s with the default model, fp32 CPU).
    read_sources: int = 4
    # Read mode, a question listing lettered options that the model answers by scoring them: this
    # many passages instead (0: read_sources). Scoring writes nothing, so more passages cost only
    # their reading, and a question about a story's course needs more of it than a fact does.
    read_choice_sources: int = 0
    # Read mode, a question listing lettered options: the scan's ranking joined with how well each
    # passage matches the question's and options' words (BM25, tasks/scan.py `with_words`), the
    # words counting this much beside the attention (0: attention alone). Off: on QuALITY stories
    # joined three to a document it moved answers within noise (bench/README.md "Read mode").
    read_choice_words: float = 0.0
    # Retrieval mode, with a model that reports its attention: the retrieved passages re-ranked by
    # it (tasks/scan.py `rerank`) and this many of the best shown, best first (0: retrieval's
    # order, up to max_sources). Off by default: with the default model it put the passage holding
    # an NQ answer first more often (38% against 29%), but answers moved within noise (9 of 30 right
    # against 7, bench/README.md "Answers") and refusals were measured on 13 unanswerable questions only.
    reranked_sources: int = 0
    # Retrieval mode, with a model that reports next-token probabilities: the retrieved passages
    # (up to nine) ranked by which one the model says answers the question (tasks/pick.py), and this
    # many of the best shown, best first (0: off). It outranks `reranked_sources`. Off: with the
    # default model it put the NQ answer's passage first 54% of the time against retrieval's 31%,
    # but answers moved within noise (9 of 30 against 7) at 1.7x the seconds (bench/README.md "Answers").
    picked_sources: int = 0
    # A question that lists lettered options, put to a model that reports next-token probabilities
    # (the local engine): the likeliest letter after "The right option is (" is the answer
    # (tasks/choice.py), instead of a written reply matched to an option. Measured: bench/README.md "Answers".
    choose_by_scores: bool = True


@dataclass(frozen=True)
class Source(TextSpan):
    """A numbered passage given to the model: a merged span of one or more retrieved chunks."""

    number: int
    text: str
    start: int
    end: int
    page_start: int
    page_end: int
    line_start: int
    line_end: int
    score: float  # what ranked it: the best retrieval score among its chunks, or the model's attention (scan.py)
    chunks: tuple[int, ...]  # chunk indices it covers
    section: str = ""  # the headings it stands under ("Team records › Game"), where the document has them


@dataclass
class Answer:
    """The model's answer, the passages it was given and which of them it cited."""

    question: str
    text: str
    supported: bool  # False when the model found no answer in the passages
    sources: list[Source]
    cited: list[int]  # source numbers cited in the text, in first-cited order
    model: str
    timings: dict[str, float] = field(default_factory=dict)
    matched: bool = False  # cited by the reply's words: the model cited no passage that holds them
    # False where nothing in the answer could be looked up in its passages (another language, no
    # numbers): its citations are the model's alone.
    checked: bool = True
    # A reply set aside because no passage holds its own words (see `verify`); kept for --json.
    unverified: str = ""
    # What the question names that the document never does, when that decided the refusal.
    unmentioned: list[str] = field(default_factory=list)


@replanned  # a server that refuses the passages as too long has taught the model a smaller window
def ask(
    document: Document,
    memory: DocumentMemory,
    question: str,
    model: Model,
    results: ResultCache,
    options: AskOptions = AskOptions(),
    on_progress: OnProgress | None = None,
) -> Answer:
    """Answer `question` from the passages of `document` that its memory retrieves."""
    started = time.perf_counter()
    hits = memory.search(question, k=options.candidates)
    budget = model.context_window - answer_overhead(question, model) - options.answer_tokens
    whole = whole_document(document, model, budget, options.max_sources) if options.whole_if_fits else []
    sources = whole or select_passages(document, hits, model, budget, options.max_sources)
    retrieved = time.perf_counter()
    if not sources:
        return Answer(question, "", False, [], [], model.name, {"retrieve": retrieved - started})
    absent = unmentioned(question, document.text, memory.vocabulary, options.min_mentioned)
    if absent:
        return Answer(question, "", False, sources, [], model.name, {"retrieve": retrieved - started}, unmentioned=absent)
    if not whole and len(sources) > 1:
        sources = _ranked(question, sources, document.kind, model, results, options, budget, on_progress)
    # The best passages by retrieval (or the re-ranking); a whole document's are in reading order.
    def best() -> list[Source]:
        return select_passages(document, hits, model, budget, options.recheck_sources) if whole else sources[: options.recheck_sources]

    answer = _final_answer(document.kind, question, sources, best, model, results, options, on_progress)
    answer.timings = {"retrieve": retrieved - started, "answer": time.perf_counter() - retrieved}
    return answer


def answer_overhead(question: str, model: Model) -> int:
    """Tokens the answer prompt takes for `question` besides the passages."""
    empty = load_prompt("ask_answer").render(sources="", question=question, language=reply_language(question))
    return model.count_tokens(prompt_text(empty)) + _PROMPT_MARGIN


def _ranked(
    question: str, sources: list[Source], kind: str, model: Model, results: ResultCache, options: AskOptions,
    budget: int, on_progress: OnProgress | None,
) -> list[Source]:
    """`sources` best first by the model's own judgement where it can give one and `options` ask
    for it: the passage it says answers the question (`picked_sources`, tasks/pick.py), else the
    attention the question pays each (`reranked_sources`); else as retrieved."""
    if options.picked_sources and isinstance(model, NextTokenScorer):
        shown = sources[:MOST]
        scores = pick_scores(question, [source_body(s, kind) for s in shown], model, results, on_progress)
        limit = options.picked_sources
    elif options.reranked_sources and isinstance(model, PassageScorer):
        shown = sources
        scores = rerank(question, [format_sources([s], kind) for s in sources], model, results, on_progress)
        limit = options.reranked_sources
    else:
        return sources
    ranked = sorted(range(len(shown)), key=lambda i: -scores[i])
    return _fitting([shown[i] for i in ranked], [scores[i] for i in ranked], model, budget, limit)


def _final_answer(
    kind: str, question: str, sources: list[Source], best: Callable[[], list[Source]], model: Model,
    results: ResultCache, options: AskOptions, on_progress: OnProgress | None,
) -> Answer:
    """The option a scoring model rates likeliest, for a question that lists lettered options;
    else a written answer from `sources`, with a second look after a refusal."""
    listed = _scored_options(question, model, options)
    if listed:
        return _chosen(question, listed, sources, kind, model, results, on_progress)
    return _answer_with_second_look(kind, question, sources, best, model, results, options, on_progress)


def _scored_options(question: str, model: Model, options: AskOptions) -> dict[str, str]:
    """The lettered options of `question` where the model answers it by scoring them; else {}."""
    return options_of(question) if options.choose_by_scores and isinstance(model, NextTokenScorer) else {}


def _chosen(
    question: str, listed: dict[str, str], sources: list[Source], kind: str, model: Model, results: ResultCache,
    on_progress: OnProgress | None,
) -> Answer:
    """The option the model rates likeliest (tasks/choice.py), cited to the passage holding most of
    its own words, where one holds two or more."""
    letter = choose(question, listed, format_sources(sources, kind), model, results, on_progress)
    answer = Answer(question, f"({letter}) {listed[letter]}", True, sources, [], model.name)
    own = _evidence(listed[letter]) - _evidence(stem_of(question))
    if own:
        best, shared = _best_holder(own, sources)
        if len(shared) >= 2:
            answer.cited, answer.matched = [best.number], True
    return answer


def _answer_with_second_look(
    kind: str, question: str, sources: list[Source], best: Callable[[], list[Source]], model: Model,
    results: ResultCache, options: AskOptions, on_progress: OnProgress | None,
) -> Answer:
    """The answer from `sources`; after a refusal, a second look at the `best()` few."""
    answer = _answer(load_prompt("ask_answer"), question, sources, model, results, options, on_progress,
                     sources=format_sources(sources, kind))
    if answer.supported:
        return answer
    # Among many passages a small model can miss the one that answers, and `verify` sets aside
    # answers no passage holds; the same prompt over the best few is trusted only when its answer
    # passes the same check.
    few = best()
    if few == sources:  # the same prompt again: the same reply
        return answer
    second = _answer(load_prompt("ask_answer"), question, few, model, results, options, on_progress,
                     "a second look", sources=format_sources(few, kind))
    if second.supported:
        return second
    if second.unverified and not answer.unverified:
        answer.unverified = second.unverified
    return answer


def _answer(
    prompt: PromptTemplate, question: str, given: list[Source], model: Model, results: ResultCache,
    options: AskOptions, on_progress: OnProgress | None = None, phase: str = "answering", **texts: str,
) -> Answer:
    """One answer from `prompt` rendered with the question and `texts` (the passages), cached."""
    rendered = prompt.render(question=question, language=reply_language(question), **texts)
    key = result_key("ask", model.name, prompt.sha256, options.answer_tokens, rendered)
    options_ = GenerationOptions(max_new_tokens=options.answer_tokens, batch_size=1)
    reading = model.count_tokens(prompt_text(rendered)) if on_progress is not None else 0
    options_, on_done = tracked(phase, 1, options.answer_tokens, options_, on_progress, reading)
    reply = run_steps(model, results, [Step(key, rendered)], options_, on_done)[0]
    text = tidy(reply, truncated=model.count_tokens(reply) >= options.answer_tokens - 2)
    return verify(attribute(interpret(question, text, given, model.name)))


def ask_by_reading(
    document: Document, question: str, model: Model, results: ResultCache, options: AskOptions = AskOptions(),
    on_progress: OnProgress | None = None,
) -> Answer:
    """Answer `question` by reading all of `document`.

    A model that reports its attention (the local engine) reads the document a window at a time
    and answers from the passages the question attended to most (tasks/scan.py); any other model
    is given the whole document in one prompt, which only a model that attends past its window
    can use, and only the passages it cites are kept of the hundreds it read.
    """
    started = time.perf_counter()
    config = ChunkConfig(size=options.read_passage_tokens, overlap=0)
    chunks = chunk_document(document, config, counter=model.count_tokens)
    sources = [_source(document, n, _Span(c.start, c.end, 0.0, [c.index], c.tokens)) for n, c in enumerate(chunks, 1)]
    if not sources:
        return Answer(question, "", False, [], [], model.name, {"read": 0.0})
    absent = unmentioned(question, document.text, Vocabulary(tokenize(document.text)), options.min_mentioned)
    if absent:
        return Answer(question, "", False, [], [], model.name, {"read": time.perf_counter() - started}, unmentioned=absent)
    if isinstance(model, PassageScorer):
        return _ask_by_scanning(document, question, sources, model, results, options, on_progress, started)
    answer = _answer(load_prompt("ask_read"), question, sources, model, results, options, on_progress,
                     passages=format_sources(sources, document.kind))
    # A book has hundreds of passages: report the ones the answer stands on, not all it read.
    answer.sources = [s for s in sources if s.number in answer.cited]
    answer.timings = {"read": time.perf_counter() - started}
    return answer


def _ask_by_scanning(
    document: Document, question: str, passages: list[Source], model: Model, results: ResultCache,
    options: AskOptions, on_progress: OnProgress | None, started: float,
) -> Answer:
    """Read mode through the model's attention: every passage scored, the best answered from (a
    document that fits the answering window is given whole, as `ask` does)."""
    budget = model.context_window - answer_overhead(question, model) - options.answer_tokens

    read: list[list[float]] = []  # the ranking scores, once (scan, words if asked): the second look reuses them

    lettered = bool(_scored_options(question, model, options))

    def best(limit: int) -> list[Source]:
        if not read:
            scanned = scan(question, [format_sources([p], document.kind) for p in passages], model, results, on_progress)
            if lettered and options.read_choice_words:
                scanned = with_words(question, [p.text for p in passages], scanned, options.read_choice_words)
            read.append(scanned)
        scores = read[0]
        ranked = sorted(range(len(passages)), key=lambda i: -scores[i])
        return _fitting([passages[i] for i in ranked], [scores[i] for i in ranked], model, budget, limit)

    whole = whole_document(document, model, budget, options.max_sources) if options.whole_if_fits else []
    sources = whole or best(options.read_choice_sources if lettered and options.read_choice_sources else options.read_sources)
    answering = time.perf_counter()
    answer = _final_answer(
        document.kind, question, sources, lambda: best(options.recheck_sources), model, results, options, on_progress
    )
    answer.timings = {"read": answering - started, "answer": time.perf_counter() - answering}
    return answer


def _fitting(ranked: list[Source], scores: list[float], model: Model, budget: int, limit: int) -> list[Source]:
    """The best `limit` passages that fit `budget` tokens, renumbered 1.. in rank order."""
    chosen: list[Source] = []
    used = 0
    for source, score in zip(ranked, scores):
        cost = model.count_tokens(source.text) + 16
        if len(chosen) == limit:
            break
        if used + cost <= budget:
            chosen.append(replace(source, number=len(chosen) + 1, score=score))
            used += cost
    return chosen


@dataclass
class _Span:
    start: int
    end: int
    score: float
    chunks: list[int]
    cost: int  # tokens of its text plus its header line


def select_passages(
    document: Document, hits: list[Hit], model: Model, budget: int, limit: int, max_passage: int = 400
) -> list[Source]:
    """The retrieved chunks that fit `budget` tokens, best first, numbered 1.. .

    A chunk that overlaps or touches a passage already chosen extends it (its neighbour's context,
    read once and whole, covered by one citation) unless that would pass `max_passage` tokens,
    where a small model starts to lose the fact in the middle; any other chunk becomes a new passage. Chunks
    are taken in rank order, and one that no longer fits is skipped for a smaller one below it.
    """
    spans: list[_Span] = []
    used = 0
    for hit in hits:
        chunk = hit.chunk
        touching = [s for s in spans if s.start <= chunk.end and chunk.start <= s.end]
        start = min([chunk.start, *(s.start for s in touching)])
        end = max([chunk.end, *(s.end for s in touching)])
        cost = model.count_tokens(document.text[start:end].strip()) + 16
        if touching and cost > max_passage:  # too long to read as one: the chunk stands alone
            touching, start, end = [], chunk.start, chunk.end
            cost = model.count_tokens(chunk.text) + 16
        if not touching and len(spans) == limit:
            continue
        extra = cost - sum(s.cost for s in touching)
        if used + extra > budget:
            continue
        merged = _Span(start, end, max([hit.score, *(s.score for s in touching)]),
                       sorted({chunk.index, *(i for s in touching for i in s.chunks)}), cost)
        place = spans.index(touching[0]) if touching else len(spans)
        spans = [s for s in spans if s not in touching]
        spans.insert(min(place, len(spans)), merged)
        used += extra
    return [_source(document, number, span) for number, span in enumerate(spans, start=1)]


def whole_document(document: Document, model: Model, budget: int, limit: int) -> list[Source]:
    """All of `document` as at most `limit` passages in reading order, if it fits `budget` tokens; else []."""
    if len(document.text) > budget * 8:  # no tokenizer writes 8 characters a token: cannot fit
        return []
    total = model.count_tokens(document.text)
    if total + 16 * limit > budget:
        return []
    config = ChunkConfig(size=max(total * 6 // (5 * limit) + 1, 64), overlap=0)  # a fifth spare: cuts fall at sentence ends
    chunks = chunk_document(document, config, counter=model.count_tokens)
    if len(chunks) > limit or sum(c.tokens for c in chunks) + 16 * len(chunks) > budget:
        return []
    return [_source(document, n, _Span(c.start, c.end, 0.0, [c.index], c.tokens)) for n, c in enumerate(chunks, 1)]


def _source(document: Document, number: int, span: _Span) -> Source:
    return Source(
        number, document.text[span.start : span.end].strip(), span.start, span.end,
        *document.pages_and_lines(span.start, span.end), span.score, tuple(span.chunks),
        document.section_at(span.start),
    )


def format_sources(sources: list[Source], kind: str) -> str:
    """The numbered passages as the prompt shows them."""
    return "\n\n".join(f"[{s.number}] {source_body(s, kind)}" for s in sources)


def source_body(source: Source, kind: str) -> str:
    """A passage as the prompt shows it after its number: where it is, then its text. Its section
    is left to the reader's source list: in the header too it cost 8% a question and moved no
    answer (bench/README.md "Answers")."""
    return f"({source.location(kind)})\n{source.text}"


def interpret(question: str, text: str, sources: list[Source], model_name: str) -> Answer:
    """Read the model's reply: the not-found marker, and the [n] citations that name real sources."""
    reply = text.strip()
    bare = _LEADING_CITATIONS.sub("", reply).upper()  # "[1]. Not in DOCUMENT" still refuses (qwen2.5-0.5b)
    if not bare or bare.startswith(NOT_FOUND_MARKER):
        return Answer(question, "", False, sources, [], model_name)
    cited: list[int] = []
    for group in _CITATION.findall(reply):
        for number in re.split(r"\s*[,;，]\s*", group):
            value = int(number)
            if 1 <= value <= len(sources) and value not in cited:
                cited.append(value)
    return Answer(question, reply, True, sources, cited, model_name)


def attribute(answer: Answer) -> Answer:
    """Cite, for a reply that cites nothing, the passage that holds most of the reply's own words.

    Small models often answer right but drop the [n]. The words a reply shares with the question
    prove nothing, so only the rest count, and the passage must hold at least 60% of them (at least
    two, or one number): an invented answer finds no such passage and stays uncited.
    """
    if not answer.supported or answer.cited or not answer.sources:
        return answer
    own = _own_terms(answer)
    if not own:
        return answer
    best, shared = _best_holder(own, answer.sources)
    if len(shared) >= 0.6 * len(own) and (len(shared) >= 2 or any(ch.isdigit() for term in shared for ch in term)):
        answer.cited, answer.matched = [best.number], True
    return answer


def verify(answer: Answer) -> Answer:
    """Keep an answer only where a passage about the question holds its own words; else it becomes a refusal.

    A small model asked what a document does not say often answers anyway, from what it knows,
    and cites a passage that says nothing of the kind, or copies a sentence about something else.
    The answer's own terms (those the question does not already have; citations left out) must be
    at least half inside the passages it cites, or else at least 60% inside one other passage,
    which it is then cited to; and that passage must be about the question: hold at least a
    quarter of the question's terms (`on_topic`). An answer joining two facts that stand in two
    passages (a code's first digits in one, its last in another) holds only about half its words
    in each: it is kept, cited to both, where two passages about the question each hold 40% and
    together 80% of its three or more own terms (`_joined_holders`); one that cites only the first
    of its two passages gets the second cited too (`_completing`). A multiple-choice answer is
    exempt: its words are the option's, which the question already holds.
    """
    if not answer.supported or MULTIPLE_CHOICE.search(answer.question):
        return answer
    own = _own_terms(answer)
    if not own:
        return answer
    if _across_languages(answer):
        return _numbers_held(answer, {term for term in own if any(ch.isdigit() for ch in term)})
    terms = question_terms(answer.question)
    about = [s for s in answer.sources if on_topic(terms, s.text)]
    cited = [s for s in answer.sources if s.number in answer.cited]
    held = set().union(*(_evidence(s.text) for s in cited)) & own if cited else set()
    if len(held) >= 0.5 * len(own) and any(s in about for s in cited):
        answer.cited += [s.number for s in _completing(own, held, [s for s in about if s not in cited])]
        return answer
    if about:
        best, shared = _best_holder(own, about)
        if len(shared) >= 0.6 * len(own):
            return _recited(answer, [best.number])
    joined = _joined_holders(own, about) if len(own) >= 3 else []
    if joined:
        return _recited(answer, sorted(s.number for s in joined))
    return Answer(answer.question, "", False, answer.sources, [], answer.model, unverified=answer.text)


def _across_languages(answer: Answer) -> bool:
    """Whether a question and its answer without Chinese stand on Chinese passages, whose words
    they cannot share: a reader of Chinese sources asking in English."""
    if HAN_CHARACTER.search(answer.question) or HAN_CHARACTER.search(answer.text):
        return False
    return detect_language("\n".join(s.text for s in answer.sources)) == "zh"


def _numbers_held(answer: Answer, numbers: set[str]) -> Answer:
    """An answer in another language than its passages, checked by what both write alike: its
    numbers (一九一一 holds 1911) must stand in a passage it cites, or in one other, which it is then
    cited to; else it is set aside. One without numbers is kept as the model cited it, marked
    unchecked: nothing in it can be looked up, and the passages it cites are shown for the reader."""
    if not numbers:
        answer.checked = False
        return answer
    if any(numbers <= _evidence(s.text) for s in answer.sources if s.number in answer.cited):
        return answer
    holder = next((s for s in answer.sources if numbers <= _evidence(s.text)), None)
    if holder is not None:
        return _recited(answer, [holder.number])
    return Answer(answer.question, "", False, answer.sources, [], answer.model, unverified=answer.text)


def _recited(answer: Answer, numbers: list[int]) -> Answer:
    """`answer` cited to the passages `numbers`, found by its words. Each [n] the model wrote names
    a passage that does not hold the answer, which a reader would follow: it becomes the found
    citation in place, not deleted ("... according to the passage in [5]." would lose its end)."""
    answer.cited, answer.matched = numbers, True
    found = f"[{', '.join(map(str, numbers))}]"
    answer.text = _CITATION.sub(found, answer.text)
    return answer


def on_topic(terms: list[str], passage: str, min_share: float = 0.25) -> bool:
    """Whether `passage` holds at least `min_share` of a question's `terms` (any, if it has none).

    On the development split every right answer stood on a passage holding a third or more of its
    question's terms; answers to questions about something else, copied from a passage on another
    subject, mostly on passages holding under a fifth (bench/answers.py)."""
    if not terms:
        return True
    held = set(tokenize(passage))
    return sum(term in held for term in terms) >= min_share * len(terms)


def _own_terms(answer: Answer) -> set[str]:
    """The reply's distinctive terms that the question does not already hold (citations left out)."""
    return _evidence(_CITATION.sub(" ", answer.text)) - _evidence(answer.question)


def _best_holder(own: set[str], sources: list[Source]) -> tuple[Source, set[str]]:
    """The passage holding most of `own`, and those of its terms it holds."""
    best = max(sources, key=lambda source: len(own & _evidence(source.text)))
    return best, own & _evidence(best.text)


# An answer joining two passages: the share of its own terms each must hold, and both together.
_PART, _JOINED = 0.4, 0.8


def _completing(own: set[str], held: set[str], others: list[Source]) -> list[Source]:
    """The passage among `others` that holds the rest of an answer whose cited passages hold only
    `held` of its `own` terms, where it holds 40% of them and the two together 80%; else []."""
    if len(own) < 3 or len(held) >= _JOINED * len(own) or not others:
        return []
    best, shared = _best_holder(own - held, others)
    whole = own & _evidence(best.text)
    return [best] if len(whole) >= _PART * len(own) and len(held | shared) >= _JOINED * len(own) else []


def _joined_holders(own: set[str], sources: list[Source]) -> list[Source]:
    """Two passages that each hold 40% of `own` and together 80%, the pair holding most; else [].

    Each must hold a good part: a passage sharing a word or two (a province's name, in Chinese
    character pairs) would otherwise lend support to an answer that one other passage nearly holds.
    """
    halves = [(source, own & _evidence(source.text)) for source in sources]
    halves = [(source, held) for source, held in halves if len(held) >= _PART * len(own)]
    pairs = [(a, b) for a, b in combinations(halves, 2) if len(a[1] | b[1]) >= _JOINED * len(own)]
    best = max(pairs, key=lambda pair: len(pair[0][1] | pair[1][1]), default=None)
    return [best[0][0], best[1][0]] if best else []


# Words that occur in nearly every passage, so they show nothing about where a reply came from.
_COMMON = frozenset(
    "the and was were that this with from for are has have had its his her their they them which who whom "
    "what when where how not but into than then also been being would could should there these those "
    "according passage passages document text".split()
)


def _evidence(text: str) -> set[str]:
    """A text's distinctive terms: words of 3+ letters, numbers (7-3-9-1 kept whole; written in words
    or Chinese numerals, in digits), Chinese character pairs."""
    lowered = numbers_as_digits(text.lower())
    words = re.findall(r"[a-z0-9]+(?:[-./:][a-z0-9]+)*", lowered)
    kept = {w for w in words if (len(w) > 2 or any(ch.isdigit() for ch in w)) and w not in _COMMON}
    runs = re.findall(f"[{HAN}]+", lowered)
    return kept | {run[i : i + 2] for run in runs for i in range(len(run) - 1)}


def excerpt(text: str, question: str, width: int = 160) -> str:
    """The part of a passage to show next to its citation: the sentence sharing most words (or
    Chinese character pairs) with the question, widened to about `width` characters."""
    flat = " ".join(text.split())
    start = max(0, min(_best_sentence(flat, question), len(flat) - width))
    snippet = flat[start : start + width]
    return ("..." if start else "") + snippet + ("..." if start + width < len(flat) else "")


def excerpt_offset(text: str, question: str) -> int:
    """Where in `text` the sentence `excerpt` shows begins (its section is the one to name)."""
    flat = " ".join(text.split())
    kept = len(flat[: _best_sentence(flat, question)].replace(" ", ""))  # characters before it, spaces aside
    seen = 0
    for index, char in enumerate(text):
        if not char.isspace():
            if seen == kept:
                return index
            seen += 1
    return 0


def _best_sentence(flat: str, question: str) -> int:
    """Where in `flat` (whitespace runs made single spaces) the sentence sharing most of the
    question's terms begins."""
    wanted = _evidence(question)
    # A heading has no full stop: it starts a piece of its own, not the end of the sentence before.
    pieces = [q for p in sentences(flat) for q in _HEADING_MARK.split(p) if q.strip()] or [flat]
    return flat.index(max(pieces, key=lambda piece: len(wanted & _evidence(piece))))
