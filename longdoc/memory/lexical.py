"""BM25 keyword search over chunk texts: word tokens for Latin script, character bigrams for CJK."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from longdoc.script import CJK

# Okapi BM25 with the usual parameters: k1 saturates repeated terms, b normalises by chunk length.
# Chunks are of near-equal length by construction, so b matters little; the defaults measured fine.
K1 = 1.5
B = 0.75

# Han ideographs, kana and hangul syllables are written without spaces between words; a run of
# them is indexed as overlapping character bigrams, which match Chinese words of two or more
# characters without a segmenter. Everything else that is a letter or digit forms words.
_TOKEN = re.compile(rf"([{CJK}]+)|([^\W_{CJK}]+)")

_STOPWORDS = frozenset(
    """a about above after again all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my no
    nor not now of off on once only or other our ours out over own same she should so some such
    than that the their theirs them then there these they this those through to too under until
    up very was we were what when where which while who whom why will with would you your yours""".split()
)


def tokenize(text: str) -> list[str]:
    """Search terms of `text`: lowercased words minus stopwords, and bigrams of CJK runs."""
    terms: list[str] = []
    for cjk, word in _TOKEN.findall(text):
        if cjk:
            terms.extend([cjk] if len(cjk) == 1 else [cjk[i : i + 2] for i in range(len(cjk) - 1)])
        else:
            term = _term(word)
            if term is not None:
                terms.append(term)
    return terms


@lru_cache(maxsize=1 << 17)
def _term(word: str) -> str | None:
    """A word's search term, or None for a stopword or a lone letter ("world's" -> "world", "s").
    Cached: a document repeats few distinct words many times, and building BM25 tokenizes every
    chunk (400K tokens: 2.5 s before, on a 2-core CPU)."""
    word = word.lower()
    if word in _STOPWORDS or (len(word) == 1 and not word.isdigit()):
        return None
    return _stem(word)


def _stem(word: str) -> str:
    """Fold the commonest English plural forms so "keys" finds "key" (no full stemmer needed)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


class Vocabulary:
    """The search terms a text holds, to ask whether it mentions a word at all.

    A word of six or more letters also counts as mentioned when the text has a word of the same
    first five letters ("conclusion" by "concluded", "summarize" by "summary"): the stemmer only
    folds plurals, and a word the text never names in any form is what matters here.
    """

    def __init__(self, terms: Iterable[str]) -> None:
        self._terms = frozenset(terms)
        self._prefixes = frozenset(t[:5] for t in self._terms if len(t) >= 5 and t.isascii() and t.isalpha())

    def mentions(self, term: str) -> bool:
        """Whether the text has `term` (a search term from `tokenize`), or a word sharing its first five letters."""
        return term in self._terms or (len(term) >= 6 and term.isascii() and term.isalpha() and term[:5] in self._prefixes)


@dataclass(frozen=True)
class Postings:
    """What a BM25 index counted, as compressed sparse rows: the part worth saving beside the chunks.

    Term `terms[i]` occurs in texts `docs[offsets[i]:offsets[i + 1]]` (ascending), `freqs` times each.
    """

    terms: list[str]  # sorted, distinct
    offsets: np.ndarray  # (n_terms + 1,) int64, offsets[0] == 0, offsets[-1] == n_postings
    docs: np.ndarray  # (n_postings,) int32
    freqs: np.ndarray  # (n_postings,) float32, occurrences of the term in that text
    lengths: np.ndarray  # (n_texts,) float32, terms per text

    def check(self, size: int) -> None:
        """Raise ValueError unless these are well-formed postings over `size` texts (a loaded file may not be)."""
        n_terms, n_postings = len(self.terms), len(self.docs)
        offsets = self.offsets
        if (
            offsets.dtype != np.int64 or self.docs.dtype != np.int32 or self.freqs.dtype != np.float32
            or self.lengths.dtype != np.float32
        ):
            raise ValueError("postings arrays of the wrong type")
        if (
            offsets.shape != (n_terms + 1,) or self.docs.ndim != 1 or self.freqs.shape != (n_postings,)
            or self.lengths.shape != (size,)
        ):
            raise ValueError(f"postings of {n_terms} terms and {n_postings} entries do not fit {size} texts")
        if offsets[0] != 0 or offsets[-1] != n_postings or (np.diff(offsets) < 1).any():
            raise ValueError("postings offsets are not increasing")
        if n_postings and (int(self.docs.min()) < 0 or int(self.docs.max()) >= size):
            raise ValueError("postings name texts that do not exist")
        if not (np.isfinite(self.freqs).all() and np.isfinite(self.lengths).all()):
            raise ValueError("postings counts are not finite")
        if any(not isinstance(term, str) for term in self.terms) or len(set(self.terms)) != n_terms:
            raise ValueError("postings terms are not distinct strings")


class BM25:
    """An in-memory Okapi BM25 index over a fixed list of texts; built in about a second for 400K
    tokens, or restored from saved `Postings` in milliseconds."""

    def __init__(self, texts: Sequence[str], k1: float = K1, b: float = B) -> None:
        self._setup(_count(texts), k1, b)

    @classmethod
    def from_postings(cls, postings: Postings, k1: float = K1, b: float = B) -> BM25:
        """The index whose counts are `postings` (from `postings()`), scoring exactly as the one that made them."""
        index = cls.__new__(cls)
        index._setup(postings, k1, b)
        return index

    def _setup(self, postings: Postings, k1: float, b: float) -> None:
        self.size = len(postings.lengths)
        self.k1, self.b = k1, b
        self._counts = postings
        self._rows = {term: row for row, term in enumerate(postings.terms)}
        lengths = postings.lengths
        average = float(lengths.mean()) if self.size and lengths.mean() > 0 else 1.0
        # Per-document denominator part of BM25, computed once: k1 * (1 - b + b * len / avg)
        self._norm = k1 * (1.0 - b + b * lengths / average)  # (n,)

    def postings(self) -> Postings:
        """The counts this index scores from, to save and restore with `from_postings`."""
        return self._counts

    def vocabulary(self) -> Vocabulary:
        """Every term of every text."""
        return Vocabulary(self._counts.terms)

    def idf(self, term: str) -> float:
        """Inverse document frequency, the non-negative variant (a term in every text scores ~0)."""
        row = self._rows.get(term)
        frequency = 0 if row is None else int(self._counts.offsets[row + 1] - self._counts.offsets[row])
        return math.log(1.0 + (self.size - frequency + 0.5) / (frequency + 0.5))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every text for `query`, shape (n,); zero where no term matches."""
        scores = np.zeros(self.size, dtype=np.float32)
        counts = self._counts
        for term, repeats in Counter(tokenize(query)).items():
            row = self._rows.get(term)
            if row is None:
                continue
            start, end = counts.offsets[row], counts.offsets[row + 1]
            docs, freqs = counts.docs[start:end], counts.freqs[start:end]  # (df,) each
            scores[docs] += repeats * self.idf(term) * freqs * (self.k1 + 1.0) / (freqs + self._norm[docs])
        return scores


def _count(texts: Sequence[str]) -> Postings:
    """Tokenize every text once and gather, per term, the texts it occurs in and how often."""
    postings: dict[str, tuple[list[int], list[int]]] = {}
    lengths = np.zeros(len(texts), dtype=np.float32)  # (n,) terms per text
    for doc, text in enumerate(texts):
        counts = Counter(tokenize(text))
        lengths[doc] = sum(counts.values())
        for term, count in counts.items():
            docs, freqs = postings.setdefault(term, ([], []))
            docs.append(doc)
            freqs.append(count)
    terms = sorted(postings)
    sizes = np.fromiter((len(postings[term][0]) for term in terms), dtype=np.int64, count=len(terms))
    offsets = np.zeros(len(terms) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    docs_all = [doc for term in terms for doc in postings[term][0]]
    freqs_all = [freq for term in terms for freq in postings[term][1]]
    return Postings(
        terms=terms,
        offsets=offsets,
        docs=np.asarray(docs_all, dtype=np.int32),
        freqs=np.asarray(freqs_all, dtype=np.float32),
        lengths=lengths,
    )


@lru_cache(maxsize=1)
def tokenizer_id() -> str | None:
    """Names the tokenizer, so saved postings are reused only by code that tokenizes the same way:
    the sha256 of this module's source and of the CJK ranges it takes from `longdoc.script`, since
    any edit to either may change what `tokenize` returns (a changed comment costs one rebuild of
    the postings). None when the source cannot be read."""
    try:
        return hashlib.sha256(Path(__file__).read_bytes() + CJK.encode("utf-8")).hexdigest()
    except OSError:
        return None
