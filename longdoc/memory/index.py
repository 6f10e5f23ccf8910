"""A document's searchable memory: chunks, a FAISS dense index and BM25, with hybrid search."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from longdoc.chunking import Chunk, ChunkConfig, chunk_document
from longdoc.progress import warn
from longdoc.document import Document
from longdoc.errors import ModelError
from longdoc.memory.embedder import Embedder, embed_query
from longdoc.memory.lexical import BM25, Vocabulary
from longdoc.memory.store import MemoryStore, StoredMemory, cache_key

# Candidates taken from each ranking before fusion: deep enough that a chunk ranked low by one
# method but high by the other still meets the fusion step.
POOL_DEPTH = 50
# The usual reciprocal-rank-fusion constant (Cormack et al. 2009); RRF is kept for comparison
# (bench/bench_index.py) but search() fuses z-scores, which measured better.
RRF_K = 60
# Chunks embedded between checkpoints of an index build: ~10 s of work on a 2-core CPU, so Ctrl-C
# loses little, while the checkpoint writes (a few MB at most) stay negligible.
CHECKPOINT_CHUNKS = 256

# How much BM25's z-score counts beside the dense one in hybrid search. With multilingual-e5
# (bench/embedders.py), the chunk holding the answer was in the top 3 for 58% of NQ questions at
# 0.5 (53% at 1.0, 56% at 0.25; dense alone 61%, n=36) and for 96% of CMRC's (95% at 1.0, dense
# alone 95%, n=366); BM25 still finds rare exact words the embedder blurs.
LEXICAL_WEIGHT = 0.5

Method = Literal["hybrid", "dense", "lexical"]
IndexProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Hit:
    """One search result: a chunk, its fused score and the score each method gave it."""

    chunk: Chunk
    score: float  # what the hits are ordered by (fused for hybrid search)
    dense: float  # cosine similarity of query and chunk embeddings
    lexical: float  # BM25 score, 0 when no query term occurs in the chunk
    rank: int  # 1-based position in the results


class DocumentMemory:
    """The chunks of one document with their embeddings and a BM25 index, searchable by meaning and words.

    Hybrid search fuses the two methods by z-score: each score is turned into standard deviations
    above its mean over the whole document, and the two are added. A method that has nothing to
    say for a query (BM25 for a paraphrase, MiniLM for Chinese) gives flat scores and so little
    weight, where reciprocal rank fusion would still let its arbitrary order count as much as
    the other's (bench/bench_index.py: MRR 0.70 for z-scores, 0.38 for RRF).
    """

    def __init__(self, chunks: list[Chunk], vectors: np.ndarray, embedder: Embedder, lexical: BM25 | None = None) -> None:
        """`lexical` is the BM25 index over the chunks' texts when the caller has it already (from
        the cache); otherwise it is built here, which tokenizes every chunk."""
        import faiss

        assert vectors.shape[0] == len(chunks), f"{vectors.shape[0]} vectors for {len(chunks)} chunks"
        self.chunks = chunks
        self.vectors = vectors  # (n_chunks, dim) float32, unit rows
        self.embedder = embedder
        self._dense = faiss.IndexFlatIP(vectors.shape[1])  # exact inner product = cosine on unit vectors
        if len(chunks):
            self._dense.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self._lexical = lexical if lexical is not None else BM25([chunk.text for chunk in chunks])
        assert self._lexical.size == len(chunks), f"a BM25 index of {self._lexical.size} texts for {len(chunks)} chunks"

    @cached_property
    def vocabulary(self) -> Vocabulary:
        """The search terms of the whole document, to ask whether it mentions a word at all."""
        return self._lexical.vocabulary()

    def search(self, query: str, k: int = 5, method: Method = "hybrid") -> list[Hit]:
        """The `k` chunks that best match `query`, best first."""
        if not query.strip():
            raise ValueError("the query is empty")
        if k < 1 or not self.chunks:
            return []
        query_vector = embed_query(self.embedder, query)  # (1, dim)
        lexical = self._lexical.scores(query)  # (n_chunks,)
        depth = min(POOL_DEPTH, len(self.chunks))
        dense_scores, dense_ids = self._dense.search(query_vector, depth)  # (1, depth) each
        dense_ranking = [int(i) for i in dense_ids[0] if i >= 0]
        lexical_ranking = _top(lexical, depth)
        if method == "dense":
            fused = {i: float(score) for i, score in zip(dense_ranking, dense_scores[0])}
        elif method == "lexical":
            fused = {i: float(lexical[i]) for i in lexical_ranking}
        else:
            fused = self._zscore_fusion(query_vector[0], lexical, sorted(set(dense_ranking) | set(lexical_ranking)))
        best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
        dense = self.vectors[best] @ query_vector[0] if best else np.zeros(0)  # (len(best),)
        return [
            Hit(chunk=self.chunks[i], score=fused[i], dense=float(dense[n]), lexical=float(lexical[i]), rank=n + 1)
            for n, i in enumerate(best)
        ]

    @cached_property
    def _vector_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (dim,) and covariance (dim, dim) of the vectors: they give the mean and spread of
        q . v over all chunks in O(dim^2) per query, with no pass over every vector."""
        mean = self.vectors.mean(axis=0)
        centred = self.vectors - mean  # (n_chunks, dim)
        return mean, (centred.T @ centred) / len(self.vectors)

    def _zscore_fusion(self, query: np.ndarray, lexical: np.ndarray, pool: list[int]) -> dict[int, float]:
        """Sum of each candidate's dense and BM25 z-scores over the whole document."""
        mean, covariance = self._vector_moments
        dense_mean = float(query @ mean)
        dense_std = float(np.sqrt(max(float(query @ covariance @ query), 0.0)))
        dense = standardise(self.vectors[pool] @ query, dense_mean, dense_std)  # (len(pool),)
        lexical_z = standardise(lexical[pool], float(lexical.mean()), float(lexical.std()))  # (len(pool),)
        return {i: float(d + LEXICAL_WEIGHT * w) for i, d, w in zip(pool, dense, lexical_z)}


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = RRF_K) -> dict[int, float]:
    """Score each item by the sum of 1 / (k + rank) over the rankings that contain it."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


def standardise(scores: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Standard deviations above the mean; all zero when the scores do not vary (no signal)."""
    if std < 1e-9:
        return np.zeros(len(scores))
    return (scores - mean) / std


def _top(scores: np.ndarray, depth: int) -> list[int]:
    """Indices of the `depth` highest positive scores, best first (ties by position)."""
    positive = np.flatnonzero(scores > 0)
    order = positive[np.lexsort((positive, -scores[positive]))]
    return [int(i) for i in order[:depth]]


def open_memory(
    document: Document,
    embedder: Embedder,
    *,
    home: Path,
    config: ChunkConfig | None = None,
    rebuild: bool = False,
    on_progress: IndexProgress | None = None,
) -> tuple[DocumentMemory, bool]:
    """The document's memory from the cache, or built and cached; True when it came from the cache.

    `on_progress(n, total)` is called while embedding, with the chunks just finished and the total.
    """
    config = index_config(config or ChunkConfig(), embedder)
    key = cache_key(document.content_hash, embedder.id, config)
    store = MemoryStore(home)
    dimension = getattr(embedder, "dimension", None)  # optional: the embedder id names it too
    if not rebuild:
        stored = store.load(key, dimension, label=document.source)
        if stored is not None:
            return DocumentMemory(stored.chunks, stored.vectors, embedder, _stored_lexical(store, key, stored)), True
    chunks = chunk_document(document, config, counter=embedder.count_tokens)
    vectors = _embed_resumably(store, key, [chunk.text for chunk in chunks], embedder, rebuild, on_progress)
    lexical = BM25([chunk.text for chunk in chunks])
    try:
        replace_entry = rebuild or store.path(key).exists()  # forced, or the entry there was damaged
        stored = StoredMemory(chunks, vectors, lexical.postings())
        store.save(key, stored, source=document.source, kind=document.kind, replace=replace_entry)
        store.clear_progress(key)
    except OSError as error:
        warn(f"could not save the index cache for {document.source} ({error}); it will be rebuilt next time")
    return DocumentMemory(chunks, vectors, embedder, lexical), False


def _stored_lexical(store: MemoryStore, key: str, stored: StoredMemory) -> BM25:
    """The BM25 index of a cached entry: restored from its saved postings, or, for an entry saved
    without them (older longdoc, another tokenizer, a damaged copy), built once and attached."""
    if stored.lexical is not None:
        return BM25.from_postings(stored.lexical)
    lexical = BM25([chunk.text for chunk in stored.chunks])
    try:
        store.save_lexical(key, lexical.postings())
    except OSError:
        pass  # the postings only save time; the entry itself is intact
    return lexical


def _embed_resumably(
    store: MemoryStore, key: str, texts: list[str], embedder: Embedder, rebuild: bool, on_progress: IndexProgress | None
) -> np.ndarray:
    """Embeddings of `texts`, continuing from the checkpoint an interrupted build left, saving new ones."""
    total = len(texts)
    done = None if rebuild else store.load_progress(key, getattr(embedder, "dimension", None))
    parts = [done] if done is not None and len(done) <= total else []
    finished = sum(len(part) for part in parts)
    if on_progress is not None and finished:
        on_progress(finished, total)
    callback = None if on_progress is None else (lambda n: on_progress(n, total))
    for start in range(finished, total, CHECKPOINT_CHUNKS):
        batch = np.asarray(embedder.embed(texts[start : start + CHECKPOINT_CHUNKS], on_progress=callback), dtype=np.float32)
        if batch.ndim != 2 or batch.shape[0] != len(texts[start : start + CHECKPOINT_CHUNKS]):
            raise ModelError(f"the embedder returned vectors of shape {batch.shape} for {len(texts[start : start + CHECKPOINT_CHUNKS])} chunks")
        parts.append(batch)
        if start + CHECKPOINT_CHUNKS < total:
            try:
                store.save_progress(key, np.concatenate(parts))
            except OSError:
                pass  # a checkpoint is an optimisation; the build itself goes on
    if not parts:
        return np.zeros((0, getattr(embedder, "dimension", 1)), dtype=np.float32)
    return np.concatenate(parts)  # (n_chunks, dim)


def index_config(config: ChunkConfig, embedder: Embedder) -> ChunkConfig:
    """`config` with chunks no longer than the embedder reads whole, so nothing is silently cut."""
    size = min(config.size, embedder.max_tokens)
    if size == config.size:
        return config
    return replace(config, size=size, overlap=min(config.overlap, size // 4))

