"""The external memory: embedders, BM25, the on-disk cache and hybrid search."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from longdoc.chunking import ChunkConfig
from longdoc.document import Document, Page
from longdoc.errors import ModelError
from longdoc.memory import index as index_module
from longdoc.memory import store as store_module
from longdoc.memory.index import DocumentMemory, open_memory
from longdoc.memory.lexical import BM25, tokenize
from longdoc.memory.store import CHUNKS_FILE, MANIFEST_FILE, VECTORS_FILE, MemoryStore, default_home
from longdoc.progress import LongdocWarning


class FakeEmbedder:
    """Hashed bag of words -> unit vector: deterministic, instant, and it counts its calls."""

    def __init__(self, name: str = "fake-bow", dimension: int = 64, max_tokens: int = 120) -> None:
        self.id = f"{name}:{dimension}d"
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.calls = 0
        self.texts_embedded = 0

    def count_tokens(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text))

    def embed(self, texts: Sequence[str], on_progress: Callable[[int], None] | None = None) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in tokenize(text):
                slot = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little") % self.dimension
                vectors[row, slot] += 1.0
            vectors[row] /= max(float(np.linalg.norm(vectors[row])), 1e-9)
        if on_progress is not None:
            on_progress(len(texts))
        return vectors


class InterruptedEmbedder(FakeEmbedder):
    """Embeds two slices, then the user presses Ctrl-C."""

    def embed(self, texts: Sequence[str], on_progress: Callable[[int], None] | None = None) -> np.ndarray:
        if self.calls == 2:
            raise KeyboardInterrupt
        return super().embed(texts, on_progress)


SUBJECTS = ["The miller", "A young clerk", "Her neighbour", "The old captain", "Our teacher", "The baker's son",
            "A tired farmer", "The town council", "My cousin", "The night watchman", "A travelling merchant"]
VERBS = ["carried", "painted", "repaired", "sold", "counted", "described", "forgot", "admired", "measured", "ordered"]
OBJECTS = ["the wooden cart", "a basket of apples", "the chapel roof", "three bolts of linen", "the grain ledger",
           "a broken fiddle", "the village well", "an old map", "the school bell", "a crate of candles"]
PLACES = ["near the river", "before the market opened", "in the cold morning", "behind the mill", "after the storm",
          "on the hill road", "during the fair", "beside the orchard", "at the edge of town", "under grey skies"]
PLANTED = "The spare key to the lighthouse is hidden inside the blue teapot in the harbour master's office."
QUESTION = "Where can I find the extra lighthouse key?"


def prose(sentences: int, seed: int) -> str:
    """Varied filler sentences in paragraphs, none about keys or lighthouses."""
    rng = random.Random(seed)
    out = []
    for n in range(sentences):
        out.append(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)}.")
        if n % 6 == 5:
            out.append("\n\n")
    return " ".join(out).replace(" \n\n ", "\n\n")


def paged_document(pages: int = 6, sentences_per_page: int = 40, plant_on: int = 4, source: str = "story.txt") -> Document:
    texts = []
    for number in range(1, pages + 1):
        text = prose(sentences_per_page, seed=number)
        if number == plant_on:
            middle = len(text) // 2
            cut = text.index(". ", middle) + 2
            text = text[:cut] + PLANTED + " " + text[cut:]
        texts.append(text)
    return Document(source=source, pages=tuple(Page(n, t) for n, t in enumerate(texts, start=1)), kind="pdf")


CHINESE_FILLER = ["今天的天气很好，村里的人都去市场买菜。", "老师在教室里给学生讲历史故事。", "河边的磨坊每天早上都会转动。",
                  "商人带着一车布料来到小镇。", "秋天到了，果园里的苹果熟了。", "孩子们在广场上放风筝。"]
CHINESE_PLANTED = "灯塔的备用钥匙藏在港务长办公室的蓝色茶壶里。"


def chinese_document() -> Document:
    rng = random.Random(7)
    sentences = [rng.choice(CHINESE_FILLER) for _ in range(300)]
    sentences.insert(170, CHINESE_PLANTED)
    paragraphs = ["".join(sentences[i : i + 10]) for i in range(0, len(sentences), 10)]
    return Document(source="笔记.txt", pages=(Page(1, "\n\n".join(paragraphs)),))


def entry_dirs(home: Path) -> list[Path]:
    root = home / "memory"
    return sorted(root.iterdir()) if root.exists() else []


# --- lexical -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("The Keys, the LIGHTHOUSE!", ["key", "lighthouse"]),
        ("world's end in 1999", ["world", "end", "1999"]),
        ("灯塔钥匙", ["灯塔", "塔钥", "钥匙"]),
        ("我", ["我"]),
        ("the 灯塔 key。钥匙", ["灯塔", "key", "钥匙"]),
    ],
)
def test_tokenize_words_and_cjk_bigrams(text: str, terms: list[str]) -> None:
    assert tokenize(text) == terms


def test_bm25_finds_chinese_text_without_spaces() -> None:
    document = chinese_document()
    paragraphs = document.text.split("\n\n")
    bm25 = BM25(paragraphs)
    best = int(np.argmax(bm25.scores("备用钥匙在哪里？")))
    assert CHINESE_PLANTED in paragraphs[best]


def test_bm25_scores_nothing_for_absent_words() -> None:
    assert not BM25(["apples and pears", "a cart of linen"]).scores("zeppelin").any()


# --- cache ---------------------------------------------------------------------------------------


def test_second_open_reuses_the_cache_without_embedding(tmp_path: Path) -> None:
    document, embedder = paged_document(), FakeEmbedder()
    first, loaded = open_memory(document, embedder, home=tmp_path)
    assert not loaded and embedder.texts_embedded == len(first.chunks) > 5
    calls = embedder.calls
    second, loaded = open_memory(document, embedder, home=tmp_path)
    assert loaded
    assert embedder.calls == calls  # nothing re-embedded when reopening
    assert second.chunks == first.chunks
    assert np.array_equal(second.vectors, first.vectors)


def test_progress_reports_every_chunk_with_the_total(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    memory, _ = open_memory(paged_document(), FakeEmbedder(), home=tmp_path, on_progress=lambda n, total: seen.append((n, total)))
    assert sum(n for n, _ in seen) == len(memory.chunks)
    assert {total for _, total in seen} == {len(memory.chunks)}


def test_interrupted_build_resumes_from_its_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "CHECKPOINT_CHUNKS", 5)
    document = paged_document()

    with pytest.raises(KeyboardInterrupt):
        open_memory(document, InterruptedEmbedder(), home=tmp_path)
    resumed = FakeEmbedder()
    memory, loaded = open_memory(document, resumed, home=tmp_path)
    assert not loaded
    assert resumed.texts_embedded == len(memory.chunks) - 10  # the two finished slices were kept
    fresh, _ = open_memory(document, FakeEmbedder(), home=tmp_path / "other")
    assert np.array_equal(memory.vectors, fresh.vectors)
    assert not list((tmp_path / "memory").glob("*.partial.*"))  # checkpoint removed once complete


def test_damaged_checkpoint_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "CHECKPOINT_CHUNKS", 5)
    document = paged_document()

    with pytest.raises(KeyboardInterrupt):
        open_memory(document, InterruptedEmbedder(), home=tmp_path)
    for partial in (tmp_path / "memory").glob("*.partial.npy"):
        flip_byte(partial)
    resumed = FakeEmbedder()
    memory, _ = open_memory(document, resumed, home=tmp_path)
    assert resumed.texts_embedded == len(memory.chunks)


def test_rebuild_embeds_again(tmp_path: Path) -> None:
    document, embedder = paged_document(), FakeEmbedder()
    open_memory(document, embedder, home=tmp_path)
    _, loaded = open_memory(document, embedder, home=tmp_path, rebuild=True)
    assert not loaded and embedder.calls == 2
    assert len(entry_dirs(tmp_path)) == 1


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x55
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def delete(path: Path) -> None:
    path.unlink()


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00not json at all{")


def wrong_dimension(path: Path) -> None:
    """A well-formed entry whose vectors have the wrong width, manifest checksums updated to match."""
    directory = path.parent
    vectors = np.load(directory / VECTORS_FILE)
    np.save(directory / VECTORS_FILE, np.ones((vectors.shape[0], 3), dtype=np.float32))
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    manifest["files"][VECTORS_FILE] = hashlib.sha256((directory / VECTORS_FILE).read_bytes()).hexdigest()
    manifest["checksum"] = store_module._manifest_checksum(manifest)
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", [CHUNKS_FILE, VECTORS_FILE, MANIFEST_FILE])
@pytest.mark.parametrize("damage", [flip_byte, truncate, delete, garbage])
def test_damaged_cache_is_rebuilt_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, damage: Callable[[Path], None]
) -> None:
    document, embedder = paged_document(), FakeEmbedder()
    built, _ = open_memory(document, embedder, home=tmp_path)
    expected = [hit.chunk for hit in built.search(PLANTED, k=3)]
    [entry] = entry_dirs(tmp_path)
    damage(entry / name)
    capsys.readouterr()
    embedded = embedder.texts_embedded

    with pytest.warns(LongdocWarning, match="index cache for story.txt was damaged; rebuilding"):
        memory, loaded = open_memory(document, embedder, home=tmp_path)

    assert not loaded and embedder.texts_embedded == embedded + len(built.chunks)
    assert [hit.chunk for hit in memory.search(PLANTED, k=3)] == expected
    again, loaded = open_memory(document, embedder, home=tmp_path)  # the rebuilt entry is good
    assert loaded and len(again.chunks) == len(built.chunks)
    assert [p.name for p in tmp_path.joinpath("memory").iterdir()] == [entry.name]  # no leftovers


def test_vectors_of_the_wrong_dimension_are_not_trusted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document, embedder = paged_document(), FakeEmbedder()
    open_memory(document, embedder, home=tmp_path)
    [entry] = entry_dirs(tmp_path)
    wrong_dimension(entry / VECTORS_FILE)
    with pytest.warns(LongdocWarning, match="damaged"):
        memory, loaded = open_memory(document, embedder, home=tmp_path)
    assert not loaded and memory.vectors.shape[1] == embedder.dimension


def test_interrupted_write_leaves_no_partial_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = store_module._write_file

    def interrupted(path: Path, data: bytes) -> None:
        if path.name == VECTORS_FILE:
            raise KeyboardInterrupt  # Ctrl-C halfway through writing the entry
        real_write(path, data)

    monkeypatch.setattr(store_module, "_write_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        open_memory(paged_document(), FakeEmbedder(), home=tmp_path)
    assert entry_dirs(tmp_path) == []  # neither a half-written entry nor its staging directory

    monkeypatch.setattr(store_module, "_write_file", real_write)
    _, loaded = open_memory(paged_document(), FakeEmbedder(), home=tmp_path)
    assert not loaded and len(entry_dirs(tmp_path)) == 1


def test_unwritable_cache_still_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "_write_file", disk_full)
    with pytest.warns(LongdocWarning, match="could not save the index cache"):
        memory, loaded = open_memory(paged_document(), FakeEmbedder(), home=tmp_path)
    assert not loaded and memory.search(PLANTED, k=1)[0].chunk.text.count(PLANTED) == 1
    assert entry_dirs(tmp_path) == []


def test_concurrent_writer_that_finished_first_is_kept(tmp_path: Path) -> None:
    document, embedder = paged_document(), FakeEmbedder()
    memory, _ = open_memory(document, embedder, home=tmp_path)
    store = MemoryStore(tmp_path)
    [entry] = entry_dirs(tmp_path)
    before = (entry / MANIFEST_FILE).read_bytes()
    stored = store_module.StoredMemory(memory.chunks, memory.vectors)
    store.save(entry.name, stored, source="other.txt", kind="text")  # loses the race: keeps theirs
    assert (entry / MANIFEST_FILE).read_bytes() == before
    store.save(entry.name, stored, source="other.txt", kind="text", replace=True)
    assert json.loads((entry / MANIFEST_FILE).read_text())["source"] == "other.txt"
    assert len(entry_dirs(tmp_path)) == 1


def test_manifest_records_counts_and_checksums(tmp_path: Path) -> None:
    memory, _ = open_memory(paged_document(), FakeEmbedder(), home=tmp_path)
    [entry] = entry_dirs(tmp_path)
    manifest = json.loads((entry / MANIFEST_FILE).read_text())
    assert manifest["key"] == entry.name and manifest["chunks"] == len(memory.chunks)
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((entry / name).read_bytes()).hexdigest() == digest
    first = json.loads((entry / CHUNKS_FILE).read_text(encoding="utf-8").splitlines()[0])
    assert first["source"] == "story.txt" and first["kind"] == "pdf" and first["page_start"] == 1


@pytest.mark.parametrize(
    "other",
    [
        {"embedder": FakeEmbedder(name="another-model")},
        {"embedder": FakeEmbedder(dimension=32)},
        {"config": ChunkConfig(size=60, overlap=10)},
    ],
    ids=["embedder-id", "dimension", "chunk-size"],
)
def test_different_embedder_or_chunking_gets_its_own_entry(tmp_path: Path, other: dict[str, object]) -> None:
    document = paged_document()
    open_memory(document, FakeEmbedder(), home=tmp_path)
    embedder = other.get("embedder", FakeEmbedder())
    memory, loaded = open_memory(document, embedder, home=tmp_path, config=other.get("config"))  # type: ignore[arg-type]
    assert not loaded
    assert len(entry_dirs(tmp_path)) == 2
    assert memory.vectors.shape[1] == embedder.dimension  # type: ignore[attr-defined]


def test_same_text_from_another_source_shares_the_entry(tmp_path: Path) -> None:
    open_memory(paged_document(source="a.pdf"), FakeEmbedder(), home=tmp_path)
    _, loaded = open_memory(paged_document(source="-"), FakeEmbedder(), home=tmp_path)
    assert loaded


def test_default_home_follows_longdoc_home(longdoc_home: Path) -> None:
    assert default_home() == longdoc_home


# --- chunking for the embedder, search -----------------------------------------------------------


def test_chunks_fit_the_embedder_input(tmp_path: Path) -> None:
    embedder = FakeEmbedder(max_tokens=40)
    memory, _ = open_memory(paged_document(), embedder, home=tmp_path, config=ChunkConfig(size=200, overlap=30))
    assert max(embedder.count_tokens(chunk.text) for chunk in memory.chunks) <= 40
    assert max(chunk.tokens for chunk in memory.chunks) > 25  # and they are not needlessly small


def test_search_ranks_and_locates_hits(tmp_path: Path) -> None:
    memory, _ = open_memory(paged_document(plant_on=4), FakeEmbedder(), home=tmp_path)
    hits = memory.search("blue teapot harbour master", k=4)
    assert [hit.rank for hit in hits] == [1, 2, 3, 4]
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert PLANTED in hits[0].chunk.text and hits[0].chunk.page_start == 4
    assert hits[0].lexical > 0 and -1.0 <= hits[0].dense <= 1.0


@pytest.mark.parametrize("method", ["hybrid", "lexical"])
def test_chinese_query_finds_the_chinese_chunk(tmp_path: Path, method: str) -> None:
    memory, _ = open_memory(chinese_document(), FakeEmbedder(), home=tmp_path, config=ChunkConfig(size=60, overlap=10))
    [hit] = memory.search("备用钥匙藏在哪里？", k=1, method=method)  # type: ignore[arg-type]
    assert CHINESE_PLANTED in hit.chunk.text


def test_empty_query_is_refused(tmp_path: Path) -> None:
    memory, _ = open_memory(paged_document(), FakeEmbedder(), home=tmp_path)
    with pytest.raises(ValueError):
        memory.search("  ")


def test_memory_of_no_chunks_finds_nothing() -> None:
    memory = DocumentMemory([], np.zeros((0, 8), dtype=np.float32), FakeEmbedder(dimension=8))
    assert memory.search("anything") == []


# --- the real embedder ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():  # type: ignore[no-untyped-def]
    from longdoc.memory.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


def test_minilm_embeds_in_input_order_with_unit_vectors(minilm) -> None:  # type: ignore[no-untyped-def]
    texts = ["a lighthouse on a cliff", "The harbour master keeps the key. " * 12, "apples", "a lamp by the sea"]
    done: list[int] = []
    together = minilm.embed(texts, on_progress=done.append)
    assert together.shape == (4, 384) and together.dtype == np.float32
    assert sum(done) == 4
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    alone = np.vstack([minilm.embed([text]) for text in texts])
    assert (together * alone).sum(axis=1).min() > 0.999  # sorting into batches does not mix rows up
    assert together[0] @ together[3] > together[0] @ together[2]


def test_minilm_limits_and_identity(minilm) -> None:  # type: ignore[no-untyped-def]
    assert minilm.max_tokens == 254  # 256 minus [CLS] and [SEP]
    assert minilm.count_tokens("lighthouse keeper") == 2  # WordPiece, no [CLS]/[SEP]
    assert minilm.count_tokens("") == 0
    assert minilm.id.startswith("all-MiniLM-L6-v2:384d:")


def test_hybrid_search_finds_a_paraphrased_fact_with_minilm(minilm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    document = paged_document(pages=8, sentences_per_page=60, plant_on=6)
    memory, _ = open_memory(document, minilm, home=tmp_path)
    assert max(minilm.count_tokens(chunk.text) for chunk in memory.chunks) <= minilm.max_tokens
    hits = memory.search(QUESTION, k=3)
    planted = [hit for hit in hits if PLANTED in hit.chunk.text]
    assert planted, [hit.chunk.text[:80] for hit in hits]
    assert planted[0].chunk.page_start == planted[0].chunk.page_end == 6


def test_bf16_embeddings_match_fp32(minilm) -> None:  # type: ignore[no-untyped-def]
    from longdoc.memory.embedder import SentenceTransformerEmbedder

    texts = ["The harbour master keeps the spare key in a teapot.", "灯塔的钥匙", "Rain fell on the pier. " * 30]
    fp32 = SentenceTransformerEmbedder(precision="fp32")
    bf16 = SentenceTransformerEmbedder(precision="bf16")
    assert fp32.id != bf16.id  # vectors of one precision never meet queries of the other in a cache
    assert (fp32.embed(texts) * bf16.embed(texts)).sum(axis=1).min() > 0.999


def test_other_model_layouts_load_through_sentence_transformers(minilm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from longdoc.memory.embedder import SentenceTransformerEmbedder, default_model_path

    model = tmp_path / "minilm-without-normalize"
    model.mkdir()
    for item in default_model_path().iterdir():
        (model / item.name).symlink_to(item)
    (model / "modules.json").unlink()  # a layout the direct encoder does not run: the library does
    modules = json.loads((default_model_path() / "modules.json").read_text())[:2]
    (model / "modules.json").write_text(json.dumps(modules))

    other = SentenceTransformerEmbedder(model)
    texts = ["Where is the spare lighthouse key?", "Rain fell on the pier. " * 30]
    assert (other.embed(texts) * minilm.embed(texts)).sum(axis=1).min() > 0.999
    assert other.max_tokens == minilm.max_tokens and other.count_tokens(texts[1]) == minilm.count_tokens(texts[1])
    assert other.id != minilm.id and other.id.startswith("minilm-without-normalize:384d:")


def test_queries_embedded_in_numpy_match_the_library(minilm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sentence_transformers import SentenceTransformer

    from longdoc.memory.embedder import default_model_path

    queries = ["Where is the spare lighthouse key?", "灯塔的钥匙在哪里", "heating costs " * 200]  # the last one cut to 254 tokens
    library = SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True).encode(queries, normalize_embeddings=True)
    assert (minilm.embed_queries(queries) * library).sum(axis=1).min() > 0.9999


def test_a_cached_search_does_not_import_torch(tmp_path: Path) -> None:
    """`longdoc search` on an indexed document answers without torch (2-4 s to import on a small CPU)."""
    document = tmp_path / "notes.txt"
    document.write_text("The spare key to the lamp room hangs behind the chart cabinet. " * 40 + "Rain fell on the pier. " * 400)
    environment = {**os.environ, "LONGDOC_HOME": str(tmp_path / "home")}
    # `python -m longdoc search ...`, saying on exit whether torch was ever imported.
    probe = [sys.executable, "-c", "import atexit, runpy, sys; sys.argv = ['longdoc', *sys.argv[1:]]; "
             "atexit.register(lambda: print('torch' in sys.modules, file=sys.stderr)); runpy.run_module('longdoc', run_name='__main__')",
             "search", str(document), "where is the spare key", "-k", "1"]
    subprocess.run(probe, env=environment, capture_output=True, check=True)  # builds the index
    done = subprocess.run(probe, env=environment, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "chart cabinet" in done.stdout and done.stderr.strip().splitlines()[-1] == "False"


def test_missing_model_directory_is_a_model_error(tmp_path: Path) -> None:
    from longdoc.memory.embedder import SentenceTransformerEmbedder

    with pytest.raises(ModelError, match="no embedding model directory"):
        SentenceTransformerEmbedder(tmp_path / "nowhere")


def test_broken_model_directory_is_a_one_line_model_error(tmp_path: Path) -> None:
    from longdoc.memory.embedder import SentenceTransformerEmbedder

    (tmp_path / "config.json").write_text('{"model_type": "bert", "hidden_act": "gelu"')
    (tmp_path / "modules.json").write_text("[]")
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError) as raised:
        SentenceTransformerEmbedder(tmp_path)
    assert "\n" not in str(raised.value) and str(tmp_path) in str(raised.value)
