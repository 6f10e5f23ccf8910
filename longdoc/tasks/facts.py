"""Key facts: the document's sentences, scored, shared out over the document, and looked up again
in the finished summary.

A small model asked to shrink a long text keeps what it read last and what is routine; asked to
list a part's key facts, the packaged 1.5B model copied the part's first sentences in order,
routine ones included. So code decides what the summary keeps, and the model only writes it:

- a sentence scores high when it is specific (figures and names that few chunks share), novel (its
  phrasing is not repeated elsewhere, as boilerplate is from section to section), made of words
  rare in the document, and near the start;
- the document is cut into consecutive parts, and each part gets a share of the summary's length,
  half split evenly and half by how much high-scoring material it holds, so no part vanishes and
  dense parts say more;
- within a part the best facts are taken until its share is used, skipping near-repeats and
  spreading the picks over its chunks.

`covers` tells whether a summary still states a fact: its figures and most of its names, or for a
fact without either, most of its content words.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from itertools import accumulate
from dataclasses import dataclass, field

from longdoc.memory.lexical import tokenize
from longdoc.script import HAN_CHARACTER
from longdoc.tasks.cleanup import ENDS_SENTENCE, sentences
from longdoc.tasks.grounding import SourceFacts, figures, names
from longdoc.tasks.language import count_words

_BULLET = re.compile(r"^\s*(?:[-*•·]|\d+[.)、]|[（(]\d+[)）])\s+")
# Below these a line is a heading or a fragment, not a fact; above, a table or a run-on list.
_MIN_WORDS, _MIN_CJK = 5, 8
_MAX_WORDS = 70
# The opening stretch of a document that earns a lead bonus, falling to none at its end (~600 words).
_LEAD_CHARS = 4000
# A second fact from the same chunk counts this much less: spread the picks over a part's chunks.
_SAME_CHUNK = 0.75
# Facts sharing this share of their terms say the same thing (a figure repeated in two sections).
_REPEAT = 0.6


@dataclass
class Fact:
    """A sentence of the document that may carry a key fact, its score and where it ended up."""

    text: str
    chunk: int  # index of the chunk it is in
    rank: int  # its place among the chunk's candidate sentences
    score: float = 0.0  # how much it is worth keeping: its strength and a bonus near the start
    strength: float = 0.0  # what it says, wherever it stands: weak facts are routine ones
    selected: bool = False  # chosen for the summary
    in_summary: bool = False  # still stated by the finished summary
    # The fact in the summary's language where that is not the document's ("" if no faithful
    # translation came back); None when the languages are the same.
    rendered: str | None = None
    terms: frozenset[str] = field(default_factory=frozenset, repr=False)

    @property
    def words(self) -> int:
        return count_words(self.text)

    @property
    def shown(self) -> str:
        """The fact as the summary states it."""
        return self.text if self.rendered is None else self.rendered


def _is_fact(text: str) -> bool:
    return len(HAN_CHARACTER.findall(text)) >= _MIN_CJK or len(text.split()) >= _MIN_WORDS


# A line break inside a sentence, as PDF text has at every line's end: the line ends in no
# sentence mark and runs on (the next begins in lower case or a digit), or it is as long as a line
# of prose, where headings and table rows are short.
_WRAPPED_LINE = re.compile(r"(?<=[^.!?:;。！？：；\s])[ \t]*\n[ \t]*(?=[^\W_]|\()")
_PROSE_LINE, _CJK_PROSE_LINE = 70, 15  # characters


def unwrap(text: str) -> str:
    """`text` with the line breaks inside its sentences joined (a space, none between Chinese characters)."""
    def join(match: re.Match[str]) -> str:
        line = match.start() - (text.rfind("\n", 0, match.start()) + 1)
        before, after = text[match.start() - 1], text[match.end()]
        if HAN_CHARACTER.match(before) and HAN_CHARACTER.match(after):
            return "" if line >= _CJK_PROSE_LINE else match.group()
        runs_on = after.islower() or after.isdigit() or after == "(" or line >= _PROSE_LINE
        return " " if runs_on else match.group()

    return _WRAPPED_LINE.sub(join, text)


def sentence_facts(chunks: Sequence[tuple[int, str]]) -> list[Fact]:
    """Every sentence of the chunks (index, text) that could carry a fact, as a candidate."""
    facts = []
    for index, text in chunks:
        # A line that is no list item and ends in no sentence mark is a heading or a table row.
        lines = (piece.replace("**", "").strip() for piece in sentences(unwrap(text)))
        pieces = (_BULLET.sub("", line, count=1) for line in lines if _BULLET.match(line) or ENDS_SENTENCE.search(line))
        kept = [piece for piece in pieces if _is_fact(piece) and count_words(piece) <= _MAX_WORDS and not piece.startswith("#")]
        facts += [Fact(piece, index, rank) for rank, piece in enumerate(kept)]
    return facts


def score_facts(facts: Sequence[Fact], texts: Sequence[str]) -> None:
    """Give every fact its score (about 0 to 1.3; higher is more worth keeping) against the
    document's chunk `texts`:

    - novel: the share of its word pairs found nowhere else in the document; boilerplate repeats
      its phrasing from section to section ("records were retained for the standard period");
    - specific: its figures and names, each weighted by how few chunks hold it, so the company's
      own name or the 30-day review period that every section cites count for little;
    - rare: how few chunks hold its words, on average;
    - lead: how near the start it is; reports, articles and papers open with what matters most.
    """
    chunk_terms = [tokenize(text) for text in texts]
    df = Counter(term for terms in chunk_terms for term in set(terms))
    pairs = Counter(pair for fact in facts for pair in set(_pairs(tokenize(fact.text))))
    anchor_df = Counter(anchor for text in texts for anchor in _weighted_anchors(text))
    ceiling = math.log(len(texts) + 1)
    before = [0] + list(accumulate(len(text) for text in texts))
    for fact in facts:
        terms = tokenize(fact.text)
        fact.terms = frozenset(terms)
        own = set(_pairs(terms))
        novel = sum(pairs[pair] <= 1 for pair in own) / len(own) if own else 0.0
        specific = min(sum(weight / max(1, anchor_df[a]) for a, weight in _weighted_anchors(fact.text).items()), 3) / 3
        idf = [math.log((len(texts) + 1) / max(df[term], 1)) for term in fact.terms]
        rare = sum(idf) / len(idf) / ceiling if idf else 0.0
        lead = max(0.0, 1 - before[fact.chunk] / _LEAD_CHARS)
        fact.strength = 0.45 * novel + 0.35 * specific + 0.2 * rare
        fact.score = fact.strength + 0.3 * lead


def _pairs(terms: Sequence[str]) -> list[tuple[str, str]]:
    return list(zip(terms, terms[1:]))


def _weighted_anchors(text: str) -> dict[str, float]:
    """A text's figures and names, each with its weight as a specific: a year, or a small number
    of days or clauses, counts for a third of an amount, a share or a name."""
    weights = {figure.literal: 1.0 if figure.notable else 0.35 for figure in figures(text)}
    return weights | {name.lower(): 1.0 for name in names(text)}


def anchors(text: str) -> set[str]:
    """A text's checkable specifics: its figures (digits as written) and capitalised names."""
    return {figure.literal for figure in figures(text)} | {name.lower() for name in names(text)}


@dataclass
class Part:
    """A run of consecutive chunks, its share of the summary and the facts chosen for it."""

    chunks: range
    words: int  # the summary's words this part is given
    facts: list[Fact] = field(default_factory=list)  # chosen, in document order


def plan_parts(facts: Sequence[Fact], chunk_tokens: Sequence[int], words: int, parts: int) -> list[Part]:
    """Cut the chunks into `parts` runs of similar length and choose each run's facts for `words` words."""
    runs = _runs(chunk_tokens, parts)
    floor = weak_below(facts, words)
    strong = [fact for fact in facts if fact.strength >= floor]
    by_run = [[fact for fact in strong if fact.chunk in run] for run in runs]
    plan = [Part(run, round(words * share)) for run, share in zip(runs, _shares(by_run))]
    chosen: list[Fact] = []
    for part, candidates in zip(plan, by_run):
        _choose(part, candidates, chosen, part.words)
    # Words a part could not use (too few strong facts) go to the best facts left anywhere.
    spare = words - sum(fact.words for fact in chosen)
    for fact in sorted(strong, key=lambda f: -f.score):
        if spare <= 0:
            break
        if not fact.selected and fact.words <= spare * 1.15 and not _repeats(fact, chosen):
            part = next(p for p, run in zip(plan, runs) if fact.chunk in run)
            _take(part, fact, chosen)
            spare -= fact.words
    for part in plan:
        part.facts.sort(key=lambda fact: (fact.chunk, fact.rank))
    return plan


def weak_below(facts: Sequence[Fact], words: int) -> float:
    """The strength under which a fact is weak (routine): 0.7 of the mean of the strongest facts
    that `words` words could hold. Weak facts are used only to bring a summary up to its length.
    Strength leaves position out, so a late part's facts are never weak for being late."""
    if not facts:
        return 0.0
    lengths = sorted(fact.words for fact in facts)
    room = max(3, round(words / max(1, lengths[len(lengths) // 2])))
    best = sorted((fact.strength for fact in facts), reverse=True)[:room]
    return 0.7 * sum(best) / len(best)


def _runs(chunk_tokens: Sequence[int], parts: int) -> list[range]:
    total, runs, start, used = sum(chunk_tokens), [], 0, 0
    for index, tokens in enumerate(chunk_tokens):
        used += tokens
        if used >= total * (len(runs) + 1) / parts and len(runs) < parts - 1:
            runs.append(range(start, index + 1))
            start = index + 1
    runs.append(range(start, len(chunk_tokens)))
    return [run for run in runs if len(run)]


def _shares(by_run: Sequence[Sequence[Fact]]) -> list[float]:
    """Half of the length split evenly over the parts, half by their strong material."""
    masses = [sum(fact.score for fact in run) for run in by_run]
    total = sum(masses)
    return [0.5 / len(by_run) + 0.5 * (mass / total if total else 1 / len(by_run)) for mass in masses]


def _choose(part: Part, candidates: Sequence[Fact], chosen: list[Fact], budget: int) -> None:
    """Add the best candidates to `part` until the next one would overrun `budget` words."""
    used = 0
    picked_in: Counter[int] = Counter()
    pool = list(candidates)
    while pool:
        best = max(pool, key=lambda fact: fact.score * _SAME_CHUNK ** picked_in[fact.chunk])
        pool.remove(best)
        if _repeats(best, chosen):
            continue
        if used + best.words > budget * 1.15 and (used or best.words > budget * 2):
            break  # what is left of the budget is not worth a lesser fact: it goes to the best ones anywhere
        _take(part, best, chosen)
        picked_in[best.chunk] += 1
        used += best.words


def _take(part: Part, fact: Fact, chosen: list[Fact]) -> None:
    fact.selected = True
    part.facts.append(fact)
    chosen.append(fact)


def _repeats(fact: Fact, chosen: Sequence[Fact]) -> bool:
    """Whether a chosen fact already says this: the same specifics, or the same words where the
    two facts share half their specifics or have none (one pattern about different towns differs)."""
    own = anchors(fact.text)
    for other in chosen:
        theirs = anchors(other.text)
        if own and len(own) >= 2 and own <= theirs:
            return True
        union = fact.terms | other.terms
        similar = bool(union) and len(fact.terms & other.terms) / len(union) >= _REPEAT
        if similar and (not own or not theirs or len(own & theirs) * 2 >= len(own | theirs)):
            return True
    return False


def covers(summary: SourceFacts, summary_terms: frozenset[str], fact: Fact) -> bool:
    """Whether a summary (indexed as `summary`, `summary_terms`) still states `fact`."""
    if not fact.shown:
        return False
    own = figures(fact.shown)
    if own and not all(summary.supports_figure(figure) for figure in own):
        return False
    fact_names = {name.lower() for name in names(fact.shown)}
    if fact_names and sum(name in summary.words for name in fact_names) * 2 < len(fact_names):
        return False
    terms = fact.terms if fact.rendered is None else frozenset(tokenize(fact.rendered))
    overlap = len(terms & summary_terms) / len(terms) if terms else 0.0
    return overlap >= (0.3 if own or fact_names else 0.6)
