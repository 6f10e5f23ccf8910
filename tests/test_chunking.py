"""Chunk boundaries, sizes, overlap, page and line spans, on English, Chinese and unspaced text."""

from __future__ import annotations

import pytest

from longdoc.chunking import Chunk, ChunkConfig, chunk_document, count_tokens
from longdoc.document import Document, Page


def _doc(*pages: str, kind: str = "text") -> Document:
    return Document("test", tuple(Page(number, text) for number, text in enumerate(pages, start=1)), kind=kind)


ENGLISH = " ".join(
    f"Sentence number {n} talks about the harbour, the weather and ledger entry {n * 7}." for n in range(120)
)
CHINESE = "".join(f"第{n}句话讲的是港口、天气和账本的第{n * 7}条记录。" for n in range(120))


def test_every_chunk_fits_the_size_and_the_text_is_covered() -> None:
    document = _doc(ENGLISH)
    config = ChunkConfig(size=60, overlap=12)
    chunks = chunk_document(document, config)
    assert len(chunks) > 5
    assert all(chunk.tokens <= config.size for chunk in chunks)
    assert all(chunk.tokens == count_tokens(chunk.text) for chunk in chunks)
    # No text is dropped: consecutive chunks touch or overlap.
    assert chunks[0].start == 0 and chunks[-1].end == len(document.text)
    assert all(later.start <= earlier.end + 1 for earlier, later in zip(chunks, chunks[1:]))


def test_english_chunks_end_at_sentence_ends() -> None:
    chunks = chunk_document(_doc(ENGLISH), ChunkConfig(size=60, overlap=0))
    assert all(chunk.text.endswith(".") for chunk in chunks)
    assert all(chunk.text[0].isupper() for chunk in chunks)


def test_no_chunk_starts_after_an_initial_or_an_abbreviation() -> None:
    # "In the FY2003 NDAA (P.L." ended one chunk and "107-314), Congress created..." began the next.
    sentence = "In the FY2003 NDAA (P.L. 107-314), Robert T. Stafford of the U.S. Army and Dr. Lee agreed on it."
    chunks = chunk_document(_doc(" ".join([sentence] * 12)), ChunkConfig(size=50, overlap=0))  # 34 tokens each
    assert len(chunks) == 12 and all(chunk.text == sentence for chunk in chunks)


def test_chinese_chunks_end_at_chinese_full_stops() -> None:
    chunks = chunk_document(_doc(CHINESE), ChunkConfig(size=50, overlap=10))
    assert len(chunks) > 5
    assert all(chunk.text.endswith("。") for chunk in chunks)
    assert all(chunk.text.startswith("第") for chunk in chunks)


@pytest.mark.parametrize("mark", ["！", "？", "；"])
def test_other_chinese_sentence_marks_are_boundaries(mark: str) -> None:
    text = mark.join(f"这是第{n}个没有句号的分句" for n in range(80)) + mark
    chunks = chunk_document(_doc(text), ChunkConfig(size=40, overlap=0))
    assert len(chunks) > 3
    assert all(chunk.text.endswith(mark) for chunk in chunks)


def test_text_without_spaces_or_punctuation_is_cut_within_the_budget() -> None:
    text = "无空格也无标点的文本" * 400
    chunks = chunk_document(_doc(text), ChunkConfig(size=50, overlap=0))
    assert all(chunk.tokens <= 50 for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks) == text


def test_a_long_sentence_is_cut_at_commas_or_spaces_not_inside_words() -> None:
    text = ", ".join(f"clause{n} with several words" for n in range(200)) + "."
    chunks = chunk_document(_doc(text), ChunkConfig(size=40, overlap=0))
    assert len(chunks) > 5
    words = set(text.replace(",", " ").replace(".", " ").split())
    for chunk in chunks:
        assert set(chunk.text.replace(",", " ").replace(".", " ").split()) <= words


def test_overlap_repeats_the_tail_of_the_previous_chunk() -> None:
    chunks = chunk_document(_doc(ENGLISH), ChunkConfig(size=60, overlap=20))
    for earlier, later in zip(chunks, chunks[1:]):
        assert later.start < earlier.end
        assert earlier.text.endswith(later.text[: earlier.end - later.start])


def test_paragraph_breaks_are_boundaries() -> None:
    text = "\n\n".join(f"Paragraph {n} has no full stop at its end" for n in range(40))
    chunks = chunk_document(_doc(text), ChunkConfig(size=30, overlap=0))
    for chunk in chunks:
        assert chunk.text.startswith("Paragraph ")
        assert chunk.text.rstrip()[-1].isdigit() or chunk.text.endswith("end")


def test_page_spans_follow_the_pages() -> None:
    pages = [f"Page {n} text. " + "Filler sentence here. " * 30 for n in range(1, 5)]
    document = _doc(*pages, kind="pdf")
    chunks = chunk_document(document, ChunkConfig(size=50, overlap=0))
    for chunk in chunks:
        first, last = chunk.page_start, chunk.page_end
        assert first <= last
        assert document.text[chunk.start : chunk.end] == chunk.text
        assert all(f"Page {n} text" not in chunk.text for n in range(1, 5) if not first <= n <= last)
    assert chunks[0].page_start == 1 and chunks[-1].page_end == 4
    spanning = [chunk for chunk in chunks if chunk.page_start != chunk.page_end]
    assert all(chunk.location("pdf").startswith("pp. ") for chunk in spanning)


def test_text_locations_are_line_numbers() -> None:
    text = "\n".join(f"Line {n} is a sentence." for n in range(1, 101))
    chunks = chunk_document(_doc(text), ChunkConfig(size=30, overlap=0))
    for chunk in chunks:
        first_line = int(chunk.text.split()[1])
        assert chunk.line_start == first_line
        expected = f"lines {chunk.line_start}-{chunk.line_end}"
        assert chunk.location("text") == (expected if chunk.line_end > chunk.line_start else f"line {first_line}")


def test_ids_are_stable_and_differ_between_documents() -> None:
    first = chunk_document(_doc(ENGLISH), ChunkConfig(size=60))
    again = chunk_document(_doc(ENGLISH), ChunkConfig(size=60))
    other = chunk_document(_doc(ENGLISH + " One more."), ChunkConfig(size=60))
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    assert first[0].id != other[0].id


def test_a_custom_counter_sets_the_budget() -> None:
    def words(text: str) -> int:
        return len(text.split())

    chunks = chunk_document(_doc(ENGLISH), ChunkConfig(size=25, overlap=5), counter=words)
    assert all(words(chunk.text) <= 25 for chunk in chunks)
    assert all(isinstance(chunk, Chunk) and chunk.tokens == words(chunk.text) for chunk in chunks)


@pytest.mark.parametrize("size, overlap", [(4, 0), (100, 100), (100, -1)])
def test_bad_configs_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        ChunkConfig(size=size, overlap=overlap)
