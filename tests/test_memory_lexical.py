"""BM25 postings saved with the index: restored, they score exactly as a fresh index; a cached open
tokenizes no chunk; entries without them (older longdoc, another tokenizer, damaged) still open."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_memory import PLANTED, FakeEmbedder, chinese_document, entry_dirs, paged_document

from longdoc.memory import lexical as lexical_module
from longdoc.memory import store as store_module
from longdoc.memory.index import DocumentMemory, open_memory
from longdoc.memory.lexical import BM25, Postings
from longdoc.memory.store import CHUNKS_FILE, MANIFEST_FILE, POSTINGS_FILE, TERMS_FILE, VECTORS_FILE

QUERIES = [PLANTED, "Where can I find the extra lighthouse key?", "the miller's wooden carts", "灯塔的钥匙", "zeppelin"]


def counting_tokenize(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make BM25 record every text it tokenizes from now on; returns that record."""
    seen: list[str] = []
    real = lexical_module.tokenize

    def tokenize(text: str) -> list[str]:
        seen.append(text)
        return real(text)

    monkeypatch.setattr(lexical_module, "tokenize", tokenize)
    return seen


def manifest_of(entry: Path) -> dict[str, object]:
    return json.loads((entry / MANIFEST_FILE).read_text())


def rewrite_manifest(entry: Path, change: Callable[[dict[str, object]], None]) -> None:
    manifest = manifest_of(entry)
    change(manifest)
    manifest["checksum"] = store_module._manifest_checksum(manifest)
    (entry / MANIFEST_FILE).write_text(json.dumps(manifest))


def assert_same_lexical(memory: DocumentMemory, texts: list[str]) -> None:
    """`memory` scores and knows the words exactly as a BM25 index built fresh over `texts`."""
    fresh = BM25(texts)
    for query in QUERIES:
        assert np.array_equal(memory._lexical.scores(query), fresh.scores(query)), query
    vocabulary, expected = memory.vocabulary, fresh.vocabulary()
    assert vocabulary._terms == expected._terms and vocabulary._prefixes == expected._prefixes


def test_restored_postings_score_and_name_terms_as_a_fresh_index() -> None:
    texts = [*paged_document().pages[0].text.split("\n\n"), *chinese_document().text.split("\n\n")[:5], "", "Keys! keys."]
    fresh = BM25(texts)
    restored = BM25.from_postings(fresh.postings())
    for query in QUERIES:
        assert np.allclose(restored.scores(query), fresh.scores(query))
        assert np.array_equal(restored.scores(query), fresh.scores(query))  # identical, so rankings cannot move
    assert restored.idf("key") == fresh.idf("key") and restored.vocabulary().mentions("lighthouse") is False
    assert restored.vocabulary()._terms == fresh.vocabulary()._terms


@pytest.mark.parametrize("document", [paged_document, chinese_document], ids=["english", "chinese"])
def test_a_cached_open_restores_the_saved_postings(tmp_path: Path, document: Callable[[], object]) -> None:
    built, _ = open_memory(document(), FakeEmbedder(), home=tmp_path)  # type: ignore[arg-type]
    memory, loaded = open_memory(document(), FakeEmbedder(), home=tmp_path)  # type: ignore[arg-type]
    assert loaded
    assert_same_lexical(memory, [chunk.text for chunk in built.chunks])
    for query in QUERIES:  # hybrid ranking and every score unchanged
        assert memory.search(query, k=8) == built.search(query, k=8)


def test_a_cached_open_tokenizes_no_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: every cached `longdoc search` re-tokenized all chunks to rebuild BM25 (~1 s at 400K tokens)."""
    open_memory(paged_document(), FakeEmbedder(), home=tmp_path)
    tokenized = counting_tokenize(monkeypatch)
    memory, loaded = open_memory(paged_document(), FakeEmbedder(), home=tmp_path)
    assert loaded and tokenized == []
    assert memory.vocabulary.mentions("lighthouse") and tokenized == []
    assert PLANTED in memory.search("extra lighthouse key", k=1)[0].chunk.text
    assert tokenized == ["extra lighthouse key"]  # the query, nothing else


def drop_postings(entry: Path) -> None:
    """What an entry written before postings were saved looks like."""
    rewrite_manifest(entry, lambda manifest: manifest.pop("lexical"))
    (entry / TERMS_FILE).unlink()
    (entry / POSTINGS_FILE).unlink()


def other_tokenizer(entry: Path) -> None:
    rewrite_manifest(entry, lambda manifest: manifest["lexical"].update(tokenizer="0" * 64))  # type: ignore[attr-defined]


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "change",
    [
        drop_postings,
        other_tokenizer,
        lambda entry: flip_byte(entry / POSTINGS_FILE),
        lambda entry: flip_byte(entry / TERMS_FILE),
        lambda entry: (entry / POSTINGS_FILE).unlink(),
        lambda entry: (entry / TERMS_FILE).write_text("{}"),
    ],
    ids=["saved-without-postings", "other-tokenizer", "postings-damaged", "terms-damaged", "postings-missing", "terms-garbage"],
)
def test_an_entry_without_usable_postings_opens_and_gets_them_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], change: Callable[[Path], None]
) -> None:
    document, embedder = paged_document(), FakeEmbedder()
    built, _ = open_memory(document, embedder, home=tmp_path)
    [entry] = entry_dirs(tmp_path)
    change(entry)
    capsys.readouterr()
    embedded = embedder.texts_embedded

    memory, loaded = open_memory(document, embedder, home=tmp_path)

    assert loaded and embedder.texts_embedded == embedded  # the chunks and vectors are still trusted
    assert capsys.readouterr().err == ""  # derived data, rebuilt quietly
    assert_same_lexical(memory, [chunk.text for chunk in built.chunks])
    tokenized = counting_tokenize(monkeypatch)
    again, loaded = open_memory(document, embedder, home=tmp_path)  # the postings were attached
    assert loaded and tokenized == []
    assert again.search(PLANTED, k=3) == built.search(PLANTED, k=3)
    assert sorted(p.name for p in entry.iterdir()) == sorted([CHUNKS_FILE, VECTORS_FILE, MANIFEST_FILE, TERMS_FILE, POSTINGS_FILE])


def test_entries_stay_readable_by_longdoc_before_saved_postings(tmp_path: Path) -> None:
    """Older readers demand exactly these two files in "files" (and share a home with this one in
    bench/startup.py): the postings are listed apart, so they never take an entry for damaged."""
    open_memory(paged_document(), FakeEmbedder(), home=tmp_path)
    [entry] = entry_dirs(tmp_path)
    manifest = manifest_of(entry)
    assert set(manifest["files"]) == {CHUNKS_FILE, VECTORS_FILE}  # type: ignore[arg-type]
    assert set(manifest["lexical"]["files"]) == {TERMS_FILE, POSTINGS_FILE}  # type: ignore[index]


def test_unreadable_tokenizer_source_saves_no_postings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Postings that cannot be matched to the tokenizer that made them are neither saved nor trusted."""
    monkeypatch.setattr(store_module, "tokenizer_id", lambda: None)
    open_memory(paged_document(), FakeEmbedder(), home=tmp_path)
    memory, loaded = open_memory(paged_document(), FakeEmbedder(), home=tmp_path)
    [entry] = entry_dirs(tmp_path)
    assert loaded and "lexical" not in manifest_of(entry) and not (entry / POSTINGS_FILE).exists()
    assert PLANTED in memory.search(PLANTED, k=1)[0].chunk.text


def test_postings_attach_fails_quietly_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_memory(paged_document(), FakeEmbedder(), home=tmp_path)
    [entry] = entry_dirs(tmp_path)
    drop_postings(entry)
    before = (entry / MANIFEST_FILE).read_bytes()

    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "atomic_write_bytes", disk_full)
    memory, loaded = open_memory(paged_document(), FakeEmbedder(), home=tmp_path)
    assert loaded and PLANTED in memory.search(PLANTED, k=1)[0].chunk.text
    assert (entry / MANIFEST_FILE).read_bytes() == before
    assert sorted(p.name for p in entry.iterdir()) == sorted([CHUNKS_FILE, VECTORS_FILE, MANIFEST_FILE])  # no temporary left


def good_postings() -> Postings:
    return BM25(["the lamp keeper", "a lamp and a ledger"]).postings()


@pytest.mark.parametrize(
    "broken",
    [
        lambda p: Postings(p.terms, p.offsets, p.docs.astype(np.int64), p.freqs, p.lengths),
        lambda p: Postings(p.terms[:-1], p.offsets, p.docs, p.freqs, p.lengths),
        lambda p: Postings(p.terms, p.offsets[::-1].copy(), p.docs, p.freqs, p.lengths),
        lambda p: Postings(p.terms, p.offsets, p.docs + 5, p.freqs, p.lengths),
        lambda p: Postings(p.terms, p.offsets, p.docs, p.freqs * np.float32("nan"), p.lengths),
        lambda p: Postings([p.terms[0]] * len(p.terms), p.offsets, p.docs, p.freqs, p.lengths),
        lambda p: Postings(p.terms, p.offsets, p.docs, p.freqs, p.lengths[:1]),
    ],
    ids=["docs-dtype", "terms-short", "offsets-decreasing", "docs-out-of-range", "freqs-nan", "terms-repeated", "lengths-short"],
)
def test_malformed_postings_are_refused(broken: Callable[[Postings], Postings]) -> None:
    good_postings().check(2)
    with pytest.raises(ValueError):
        broken(good_postings()).check(2)
