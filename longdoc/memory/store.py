"""The on-disk cache of document memories: one verified, atomically written directory per key.

Layout under `home/memory/<key>/`:
    chunks.jsonl   one chunk per line (`Chunk.to_dict()` plus the document's source and kind)
    vectors.npy    float32 (n_chunks, dim) embeddings, read back with allow_pickle=False
    manifest.json  format, key, counts, creation time and the sha256 of the two files above
    terms.json     optional: the BM25 terms, sorted (see `lexical.Postings`)
    postings.npy   optional: offsets, docs, freqs and lengths of those terms, four arrays in turn

The two lexical files are listed apart in the manifest ("lexical", with the id of the tokenizer
that made them): they are derived from the chunks, so an entry without them, or with another
tokenizer's, is still good (readers before them ignore them), and a cached open of such an entry
rebuilds them once and attaches them with `save_lexical`. Damaged ones are likewise rebuilt.

A directory appears only complete (built beside it, then renamed in). Loading checks every hash
before parsing anything; a damaged entry is reported once and treated as absent, never trusted.

While an index is being built, the embeddings finished so far are checkpointed to
`home/memory/<key>.partial.npy` (with a `.sha256` beside it), so an interrupted build resumes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from longdoc.chunking import Chunk, ChunkConfig
from longdoc.progress import warn
from longdoc.files import atomic_write_bytes
from longdoc.memory.lexical import Postings, tokenizer_id

# Bump when the layout or the meaning of anything stored changes: old entries then miss the cache.
FORMAT_VERSION = 1
CHUNKS_FILE = "chunks.jsonl"
VECTORS_FILE = "vectors.npy"
MANIFEST_FILE = "manifest.json"
TERMS_FILE = "terms.json"
POSTINGS_FILE = "postings.npy"
_CHUNK_FIELDS = frozenset(field.name for field in fields(Chunk))


def default_home() -> Path:
    """Where longdoc keeps caches: $LONGDOC_HOME, else the platform's user cache directory."""
    configured = os.environ.get("LONGDOC_HOME")
    if configured:
        return Path(configured)
    import platformdirs

    return Path(platformdirs.user_cache_dir("longdoc"))


def cache_key(content_hash: str, embedder_id: str, config: ChunkConfig) -> str:
    """sha256 naming one memory: same text, embedder and chunking give the same key."""
    parts = {
        "format": FORMAT_VERSION,
        "content": content_hash,
        "embedder": embedder_id,
        "chunk_size": config.size,
        "chunk_overlap": config.overlap,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class StoredMemory:
    """What a cache entry holds: the chunks and their embeddings, row i belonging to chunk i, and
    the BM25 postings over the chunks when they were saved by this tokenizer."""

    chunks: list[Chunk]
    vectors: np.ndarray  # (n_chunks, dim) float32
    lexical: Postings | None = None


class _Damaged(Exception):
    """A cache entry that exists but cannot be trusted."""


class MemoryStore:
    """Cache entries of document memories under one home directory."""

    def __init__(self, home: Path) -> None:
        self.root = Path(home) / "memory"

    def path(self, key: str) -> Path:
        """The directory of the entry for `key`, whether or not it exists."""
        return self.root / key

    def load(self, key: str, dimension: int | None, label: str) -> StoredMemory | None:
        """The entry for `key` if present and intact; None (with a warning if damaged) otherwise.

        `dimension` is the embedding width the caller expects; None trusts the manifest's.
        """
        directory = self.path(key)
        if not directory.exists():
            return None
        try:
            return _read(directory, key, dimension)
        except (_Damaged, OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            warn(f"index cache for {label} was damaged; rebuilding ({_reason(error)})")
            return None

    def save(self, key: str, memory: StoredMemory, *, source: str, kind: str, replace: bool = False) -> None:
        """Write the entry for `key` atomically; keep an intact entry another writer made unless `replace`."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=self.root))
        try:
            _write(staging, key, memory, source=source, kind=kind)
            self._install(staging, key, memory.vectors.shape[1], replace)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def save_lexical(self, key: str, postings: Postings) -> None:
        """Attach BM25 postings to the existing entry for `key`, atomically; OSError if it cannot be
        written. A damaged entry is left alone: the next load reports and rebuilds it.

        The files are replaced first and the manifest last, each by rename, so a reader sees either
        the old manifest (and ignores lexical files it does not list) or the new one with its files.
        """
        directory = self.path(key)
        try:
            manifest = _manifest(directory, key)
        except (_Damaged, ValueError):
            return
        lexical = _lexical_record(postings)
        if lexical is None:
            return
        record, contents = lexical
        for name, content in contents.items():
            atomic_write_bytes(directory / name, content)
        manifest["lexical"] = record
        manifest["checksum"] = _manifest_checksum(manifest)
        atomic_write_bytes(directory / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())

    def save_progress(self, key: str, vectors: np.ndarray) -> None:
        """Checkpoint the embeddings finished so far for `key`, atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        data = buffer.getvalue()
        partial, digest = self._partial_paths(key)
        for path, content in ((partial, data), (digest, _sha256(data).encode())):
            atomic_write_bytes(path, content)

    def load_progress(self, key: str, dimension: int | None) -> np.ndarray | None:
        """Embeddings checkpointed for `key`, if intact; anything doubtful is dropped, not trusted."""
        partial, digest = self._partial_paths(key)
        try:
            data = partial.read_bytes()
            if _sha256(data) != digest.read_text().strip():
                return None
            vectors = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError):
            return None
        if vectors.dtype != np.float32 or vectors.ndim != 2 or (dimension is not None and vectors.shape[1] != dimension):
            return None
        return vectors

    def clear_progress(self, key: str) -> None:
        """Remove the checkpoint of `key` once its entry is complete."""
        for path in self._partial_paths(key):
            path.unlink(missing_ok=True)

    def _partial_paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.partial.npy", self.root / f"{key}.partial.sha256"

    def _install(self, staging: Path, key: str, dimension: int, replace: bool) -> None:
        """Rename the finished staging directory into place, moving a stale entry aside first."""
        target = self.path(key)
        for _ in range(5):  # a few rounds against concurrent writers doing the same
            try:
                os.rename(staging, target)
                return
            except OSError:
                if not target.exists():
                    continue
            if not replace and _intact(target, key, dimension):
                return  # a concurrent writer finished first with an equal entry
            aside = Path(tempfile.mkdtemp(prefix=f".{key[:16]}.", suffix=".old", dir=self.root))
            try:
                os.rename(target, aside / "entry")
            except FileNotFoundError:
                pass  # someone else moved it already
            finally:
                shutil.rmtree(aside, ignore_errors=True)
            replace = False  # the stale entry is gone; from now on a newer one is another writer's
        raise OSError(f"could not install the index cache entry at {target}")


def _write(directory: Path, key: str, memory: StoredMemory, *, source: str, kind: str) -> None:
    lines = [json.dumps({"source": source, "kind": kind, **chunk.to_dict()}, ensure_ascii=False) for chunk in memory.chunks]
    chunk_bytes = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(memory.vectors, dtype=np.float32), allow_pickle=False)
    vector_bytes = buffer.getvalue()
    manifest = {
        "format": FORMAT_VERSION,
        "key": key,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": source,
        "kind": kind,
        "chunks": len(memory.chunks),
        "dimension": int(memory.vectors.shape[1]),
        "files": {CHUNKS_FILE: _sha256(chunk_bytes), VECTORS_FILE: _sha256(vector_bytes)},
    }
    lexical = None if memory.lexical is None else _lexical_record(memory.lexical)
    if lexical is not None:
        manifest["lexical"] = lexical[0]
        for name, content in lexical[1].items():
            _write_file(directory / name, content)
    manifest["checksum"] = _manifest_checksum(manifest)
    _write_file(directory / CHUNKS_FILE, chunk_bytes)
    _write_file(directory / VECTORS_FILE, vector_bytes)
    # The manifest goes last: an entry with a manifest has all its files.
    _write_file(directory / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())


def _lexical_record(postings: Postings) -> tuple[dict[str, object], dict[str, bytes]] | None:
    """The manifest's "lexical" record and the files' contents for `postings`; None when the
    tokenizer has no id (its source unreadable), as postings that cannot be matched to a tokenizer
    could not be trusted later."""
    tokenizer = tokenizer_id()
    if tokenizer is None:
        return None
    buffer = io.BytesIO()
    for array in (postings.offsets, postings.docs, postings.freqs, postings.lengths):
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    contents = {TERMS_FILE: json.dumps(postings.terms, ensure_ascii=False).encode("utf-8"), POSTINGS_FILE: buffer.getvalue()}
    record = {"tokenizer": tokenizer, "files": {name: _sha256(content) for name, content in contents.items()}}
    return record, contents


def _write_file(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _manifest(directory: Path, key: str) -> dict[str, object]:
    """The entry's manifest, checked to describe this entry intact."""
    manifest = json.loads((directory / MANIFEST_FILE).read_bytes())
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION or manifest.get("key") != key:
        raise _Damaged("manifest does not describe this entry")
    if manifest.get("checksum") != _manifest_checksum(manifest):
        raise _Damaged("manifest does not match its checksum")
    return manifest


def _read(directory: Path, key: str, dimension: int | None) -> StoredMemory:
    manifest = _manifest(directory, key)
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != {CHUNKS_FILE, VECTORS_FILE}:
        raise _Damaged("manifest lists the wrong files")
    data = {name: (directory / name).read_bytes() for name in files}
    for name, content in data.items():
        if _sha256(content) != files[name]:
            raise _Damaged(f"{name} does not match its checksum")
    chunks = [_chunk(line) for line in data[CHUNKS_FILE].decode("utf-8").splitlines()]
    vectors = np.load(io.BytesIO(data[VECTORS_FILE]), allow_pickle=False)
    expected = (manifest.get("chunks"), manifest.get("dimension") if dimension is None else dimension)
    if vectors.dtype != np.float32 or vectors.shape != expected or len(chunks) != expected[0]:
        raise _Damaged(f"holds {len(chunks)} chunks and vectors of shape {vectors.shape}, expected {expected}")
    if not np.isfinite(vectors).all():
        raise _Damaged("vectors are not finite")
    return StoredMemory(chunks=chunks, vectors=vectors, lexical=_read_lexical(directory, manifest.get("lexical"), len(chunks)))


def _read_lexical(directory: Path, record: object, size: int) -> Postings | None:
    """The entry's BM25 postings over `size` chunks, or None when absent, another tokenizer's, or
    damaged: they are derived data, rebuilt from the chunks, so a bad copy costs time, not trust."""
    tokenizer = tokenizer_id()
    if not isinstance(record, dict) or tokenizer is None or record.get("tokenizer") != tokenizer:
        return None
    files = record.get("files")
    if not isinstance(files, dict) or set(files) != {TERMS_FILE, POSTINGS_FILE}:
        return None
    try:
        data = {name: (directory / name).read_bytes() for name in files}
        if any(_sha256(content) != files[name] for name, content in data.items()):
            return None
        stream = io.BytesIO(data[POSTINGS_FILE])
        offsets, docs, freqs, lengths = (np.load(stream, allow_pickle=False) for _ in range(4))
        postings = Postings(json.loads(data[TERMS_FILE].decode("utf-8")), offsets, docs, freqs, lengths)
        if not isinstance(postings.terms, list):
            return None
        postings.check(size)
    except (OSError, EOFError, ValueError, TypeError):  # EOFError: fewer arrays than four
        return None
    return postings


def _chunk(line: str) -> Chunk:
    record = json.loads(line)
    if not isinstance(record, dict):
        raise _Damaged("a chunk line is not an object")
    chunk = Chunk(**{name: value for name, value in record.items() if name in _CHUNK_FIELDS})
    if not isinstance(chunk.text, str) or not all(
        isinstance(getattr(chunk, name), int) for name in _CHUNK_FIELDS - {"id", "text"}
    ):
        raise _Damaged("a chunk has fields of the wrong type")
    return chunk


def _intact(directory: Path, key: str, dimension: int | None) -> bool:
    try:
        _read(directory, key, dimension)
    except (_Damaged, OSError, ValueError, TypeError, KeyError, AttributeError):
        return False
    return True


def _manifest_checksum(manifest: dict[str, object]) -> str:
    """sha256 of every other manifest field, so a damaged manifest is caught like a damaged file."""
    fields = {name: value for name, value in manifest.items() if name != "checksum"}
    return _sha256(json.dumps(fields, sort_keys=True).encode())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _reason(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError):
        return f"{Path(error.filename or '?').name} is missing"
    return " ".join(str(error).split())[:120] or type(error).__name__
