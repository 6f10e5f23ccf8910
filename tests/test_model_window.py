"""A server's context window: read from what the server says about itself, learned from its
refusal of a prompt as too long, and the tasks planning that step again within it (all against
the fake server on 127.0.0.1; tests/test_llamacpp_server.py runs llama.cpp's own)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from conftest import BagOfWords
from chat_server import ChatServer

from longdoc.chunking import ChunkConfig, chunk_document
from longdoc.document import Document, Page
from longdoc.errors import PromptTooLong
from longdoc.memory.index import DocumentMemory
from longdoc.model.chat_api import DEFAULT_CONTEXT_WINDOW, RemoteConfig
from longdoc.model.server import OpenAIModel
from longdoc.model.window import OLLAMA_DEFAULT, Refusal, discover, too_long
from longdoc.tasks.ask import ask
from longdoc.tasks.results import ResultCache
from longdoc.tasks.summarize import SummaryOptions, summarize
from longdoc.tasks.translate import TranslateOptions, translate

LLAMA_CPP = "request (2623 tokens) exceeds the available context size (2048 tokens), try increasing it"


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (400, LLAMA_CPP, Refusal(2048, 2623)),
        (400, "This model's maximum context length is 4096 tokens. However, you requested 4200 tokens "
              "(3000 in the messages, 1200 in the completion). Please reduce the length of the messages or completion.", Refusal(4096, 3000)),
        (400, "This model's maximum context length is 1536 tokens. However, your request has 4176 input tokens. "
              "Please reduce the length of the input messages.", Refusal(1536, 4176)),
        (400, "'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context length is 4096 "
              "tokens and your request has 2778 input tokens (8000 > 4096 - 2778).", Refusal(4096, 2778)),
        (400, "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. "
              "Please reduce the length of the messages.", Refusal(8192, 9000)),
        (422, "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens "
              "and 500 `max_new_tokens`", Refusal(4096, 4000)),
        (400, "The prompt is too long for this model.", Refusal(None, None)),
        (400, "Invalid value for 'temperature': must be between 0 and 2.", None),
        (404, "The model 'm' does not exist.", None),
        (503, "This model's maximum context length is 4096 tokens.", None),  # a busy server is retried, not re-planned
    ],
)
def test_refusals_are_read_in_each_servers_wording(status: int, message: str, expected: Refusal | None) -> None:
    assert too_long(status, message) == expected


def test_llama_cpps_refusal_fields_are_read_too() -> None:
    payload = {"error": {"code": 400, "message": "too big", "type": "exceed_context_size_error", "n_prompt_tokens": 5000, "n_ctx": 4096}}
    assert too_long(400, "too big", payload) == Refusal(4096, 5000)


PROPS = {"default_generation_settings": {"n_ctx": 2048, "params": {}}, "total_slots": 4}


@pytest.mark.parametrize(
    ("pages", "tokens", "source"),
    [
        ({"/props": PROPS}, 2048, "llama.cpp's /props"),
        ({"/v1/models": {"object": "list", "data": [{"id": "other", "max_model_len": 1}, {"id": "served", "max_model_len": 16384}]}},
         16384, "max_model_len"),
        ({"/api/ps": {"models": [{"name": "served:latest", "model": "served:latest", "context_length": 8192}]}}, 8192, "Ollama's /api/ps"),
        ({"/api/show": {"parameters": "temperature 0.7\nnum_ctx 12288", "model_info": {"qwen2.context_length": 32768}}}, 12288, "num_ctx"),
        ({"/api/show": {"parameters": "", "model_info": {"qwen2.context_length": 32768}}}, OLLAMA_DEFAULT, "Ollama's default"),
        ({"/info": {"max_total_tokens": 6000, "max_input_tokens": 5000}}, 6000, "TGI"),
    ],
)
def test_the_window_is_read_from_what_each_server_says(pages: dict[str, object], tokens: int, source: str) -> None:
    with ChatServer() as server:
        server.pages = pages
        model = OpenAIModel(RemoteConfig(server.url, "served"))
        assert model.served_window == tokens
        assert source in model.context_source
        assert model.context_window == int(tokens * 0.85)  # the margin for the server's own tokenizer


def test_a_server_that_says_nothing_gets_the_default_and_is_asked_once() -> None:
    with ChatServer() as server:
        model = OpenAIModel(RemoteConfig(server.url, "served"))
        assert model.served_window == DEFAULT_CONTEXT_WINDOW and "default" in model.context_source
        asked = len(server.probed)
        for _ in range(3):
            model.context_window  # noqa: B018 - read again: not asked again
    assert asked == 5 and len(server.probed) == asked  # /props, /v1/models, /api/ps, /api/show, /info
    assert not server.requests  # no chat request was spent on it


def test_a_silent_server_is_probed_once_not_once_per_endpoint() -> None:
    with ChatServer() as server:
        server.hang = True
        model = OpenAIModel(RemoteConfig(server.url, "served", timeout=0.3))
        started = time.perf_counter()
        assert model.served_window == DEFAULT_CONTEXT_WINDOW
        seconds = time.perf_counter() - started
    assert server.probed == ["/props"] and seconds < 1.2


def test_a_configured_window_is_not_asked_for() -> None:
    with ChatServer() as server:
        server.pages = {"/props": PROPS}
        model = OpenAIModel(RemoteConfig(server.url, "served", context_window=4096))
        assert (model.served_window, model.context_source) == (4096, "configured")
    assert server.probed == []


def test_discovery_finds_the_server_root_behind_the_api_path() -> None:
    asked: list[str] = []

    def fetch(url: str, body: object) -> object:
        asked.append(url)
        return PROPS if url == "http://gpu-box:8080/llm/props" else None

    found = discover(fetch, "http://gpu-box:8080/llm/v1/chat/completions", "m")
    assert found is not None and found.tokens == 2048 and asked == ["http://gpu-box:8080/llm/props"]


def _model(server: ChatServer, **settings: object) -> OpenAIModel:
    config = {"timeout": 5.0, "backoff": 0.01, "retries": 1, **settings}
    return OpenAIModel(RemoteConfig(server.url, "test-model", **config))  # type: ignore[arg-type]


def test_a_refused_prompt_teaches_the_model_the_servers_window() -> None:
    prompt = " ".join(f"word{n}" for n in range(3000))
    with ChatServer() as server:
        server.context_size = 2048
        model = _model(server)  # the server does not say: the default, 8192
        assert model.context_window == int(8192 * 0.85)
        with pytest.raises(PromptTooLong, match=r"HTTP 400: request \(\d+ tokens\) exceeds the available context size \(2048 tokens\)") as caught:
            model.generate([prompt])
        assert (caught.value.limit, caught.value.exit_code) == (2048, 17)
        assert model.served_window == 2048 and "refusal" in model.context_source
        # Planned in the model's own tokens, so that what the server counts stays within 2048.
        assert model.context_window < 2048 * server.prompt_tokens([{"role": "user", "content": prompt}]) // model.count_tokens(prompt)
    assert len(server.requests) == 1  # a refusal is not retried as such


def test_a_refusal_without_numbers_shrinks_the_window_below_the_prompt() -> None:
    prompt = " ".join(f"word{n}" for n in range(1000))
    with ChatServer() as server:
        server.fail_next(400, body=json.dumps({"error": {"message": "The prompt is too long."}}).encode())
        model = _model(server, context_window=8192)
        with pytest.raises(PromptTooLong):
            model.generate([prompt])
    assert model.context_window == int(model.count_tokens(prompt) * 0.75)
    assert model.served_window == 8192  # what the server accepts was not said


def _manual() -> tuple[Document, DocumentMemory]:
    pages = [" ".join(f"Page {p} lists pump part {p}-{n} and its torque." for n in range(80)) for p in range(1, 9)]
    pages[5] += " The brass key to the lamp room hangs behind the chart cabinet in the north office."
    document = Document(source="manual.pdf", pages=tuple(Page(i + 1, t) for i, t in enumerate(pages)), kind="pdf")
    chunks = chunk_document(document, ChunkConfig(size=200, overlap=10), counter=BagOfWords().count_tokens)
    return document, DocumentMemory(chunks, BagOfWords().embed([c.text for c in chunks]), BagOfWords())


def _cites_the_key(messages: list[dict[str, str]], body: dict[str, object]) -> str:
    found = re.search(r"\[(\d+)\] \([^)]*\)\n[^\[]*brass key", messages[-1]["content"])
    return f"It hangs behind the chart cabinet in the north office [{found.group(1)}]." if found else "NOT IN DOCUMENT"


def test_ask_packs_again_within_the_window_a_refusal_taught(tmp_path: Path) -> None:
    """Regression: llama.cpp with 4 slots of 2,048 tokens refused ask's 2,623-token prompt (HTTP 400)
    because longdoc assumed 8,192 tokens; now the passages are packed again and the answer comes."""
    document, memory = _manual()
    with ChatServer(respond=_cites_the_key) as server:
        server.context_size = 2048
        model = _model(server)
        answer = ask(document, memory, "Where is the brass key to the lamp room?", model, ResultCache(tmp_path))
    assert answer.supported and "chart cabinet" in answer.text and answer.cited
    assert server.refused == 1 and len(server.requests) == 2  # one refusal, then the prompt that fit
    assert server.prompt_tokens(server.requests[-1]["messages"]) <= 2048  # type: ignore[arg-type]


def test_a_prompt_that_never_fits_fails_with_one_clear_line_after_bounded_replans(tmp_path: Path) -> None:
    document, memory = _manual()
    with ChatServer(respond=_cites_the_key) as server:
        for _ in range(5):  # a server that keeps refusing, and never says its limit
            server.fail_next(400, body=json.dumps({"error": {"message": "The prompt is too long."}}).encode())
        with pytest.raises(PromptTooLong) as caught:
            ask(document, memory, "Where is the brass key to the lamp room?", _model(server), ResultCache(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"the model server at {server.url}/chat/completions answered HTTP 400: The prompt is too long.")
    assert "still too long after planning it 2 more times" in message and "--context-window" in message and "\n" not in message
    assert caught.value.exit_code == 17
    assert len(server.requests) == 3  # the first plan and two re-plans, each smaller than the one before
    sizes = [server.prompt_tokens(body["messages"]) for body in server.requests]  # type: ignore[arg-type]
    assert sizes[0] > sizes[1] > sizes[2]


def test_summarize_writes_again_within_the_window_a_refusal_taught(tmp_path: Path) -> None:
    opening = " ".join(f"The harbour board met on day {n} and reviewed pier {n}." for n in range(60))  # ~700 tokens
    rest = "\n\n".join(f"Section {n}. The ferry to island {n} ran {n * 3} times in March." for n in range(12))
    document = Document(source="minutes.txt", pages=(Page(1, opening + "\n\n" + rest),))
    with ChatServer(respond=lambda messages, body: "The board reviewed the piers.") as server:
        server.context_size = 400
        summary = summarize(document, _model(server, concurrency=2), ResultCache(tmp_path), SummaryOptions(words=60, chunk_tokens=120))
    assert summary.text and server.refused >= 1
    answered = [body for body in server.requests if server.prompt_tokens(body["messages"]) <= 400]  # type: ignore[arg-type]
    assert len(answered) == len(server.requests) - server.refused


def test_translate_cuts_a_refused_piece_smaller_and_keeps_every_paragraph(tmp_path: Path) -> None:
    long_paragraph = " ".join(f"The keeper logged storm {n} at the north light." for n in range(40))  # ~400 tokens
    document = Document(source="log.txt", pages=(Page(1, f"Short opening line.\n\n{long_paragraph}\n\nShort closing line."),))
    echo = lambda messages, body: "ZH " + messages[-1]["content"].rsplit("<text>", 1)[-1].split("</text>")[0].strip()[:40]  # noqa: E731
    with ChatServer(respond=echo) as server:
        server.context_size = 450
        paragraphs = list(translate(document, _model(server, concurrency=1), ResultCache(tmp_path), TranslateOptions(source="en", target="zh")))
    assert [p.index for p in paragraphs] == [0, 1, 2] and all(p.text.startswith("ZH") for p in paragraphs)
    assert server.refused >= 1 and paragraphs[1].text.count("ZH") >= 2  # the long paragraph went in pieces
