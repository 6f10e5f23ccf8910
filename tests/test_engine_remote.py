"""The openai backend against a real HTTP server on 127.0.0.1: what it sends, how many requests
overlap, what it retries, how it gives up, and that tasks come out as they do with a local model."""

from __future__ import annotations

import json
import time

import pytest
from chat_server import ChatServer
from conftest import FakeModel

from longdoc.chunking import count_tokens
from longdoc.document import Document, Page
from longdoc.model.chat_api import RemoteConfig, as_messages, parse_retry_after, retry_delay
from longdoc.model.protocol import GenerationOptions, Model
from longdoc.model.server import OpenAIModel
from longdoc.errors import RemoteModelError
from longdoc.tasks.results import ResultCache
from longdoc.tasks.summarize import SummaryOptions, summarize
from longdoc.tasks.translate import TranslateOptions, translate

KEY = "sk-test-6f1d2c9a7b"


def _model(server: ChatServer, **settings: object) -> OpenAIModel:
    # Short waits keep the suite fast; the behaviour is the same at the real defaults.
    config = {"timeout": 5.0, "backoff": 0.01, "retries": 2, **settings}
    return OpenAIModel(RemoteConfig(server.url, "test-model", **config))  # type: ignore[arg-type]


def test_the_remote_model_is_a_model_counted_in_cl100k_tokens() -> None:
    model = OpenAIModel(RemoteConfig("http://127.0.0.1:9/v1", "served", context_window=10000))
    assert isinstance(model, Model)
    assert model.count_tokens("The keeper lit the lamp.") == count_tokens("The keeper lit the lamp.")
    assert model.context_window < 10000  # a margin for the server's own, unknown tokenizer
    assert model.name == "openai:served@127.0.0.1:9"


def test_prompts_become_chat_requests_with_the_generation_options() -> None:
    with ChatServer() as server:
        model = _model(server, api_key=KEY)
        conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Translate: 你好"}]
        options = GenerationOptions(max_new_tokens=33, temperature=0.7, top_p=0.9, seed=5, stop=("END",))
        replies = model.generate(["Summarize the ledger please", conversation], options)
    assert replies == ["echo: Summarize the ledger please", "echo: Translate: 你好"]
    first, second = sorted(server.requests, key=lambda body: len(body["messages"]))  # type: ignore[arg-type]
    assert first["messages"] == [{"role": "user", "content": "Summarize the ledger please"}]
    assert second["messages"] == conversation
    assert {k: first[k] for k in ("model", "max_tokens", "temperature", "top_p", "seed", "stop")} == {
        "model": "test-model", "max_tokens": 33, "temperature": 0.7, "top_p": 0.9, "seed": 5, "stop": ["END"],
    }
    assert all(headers["Authorization"] == f"Bearer {KEY}" for headers in server.headers)


def test_without_a_key_no_authorization_header_is_sent() -> None:
    with ChatServer() as server:
        _model(server).generate(["hello"])
    assert "Authorization" not in server.headers[0]


def test_stop_strings_end_the_reply_even_when_the_server_ignores_them() -> None:
    with ChatServer(respond=lambda messages, body: "The answer.\nQuestion: next") as server:
        (reply,) = _model(server).generate(["q"], GenerationOptions(stop=("\nQuestion:",)))
    assert reply == "The answer."


def test_a_call_fans_out_as_concurrent_requests_up_to_the_limit_and_keeps_order() -> None:
    prompts = [f"prompt number {n}" for n in range(16)]
    with ChatServer(delay=0.2) as server:
        started = time.perf_counter()
        replies = _model(server, concurrency=8).generate(prompts)
        seconds = time.perf_counter() - started
    assert replies == [f"echo: {p}" for p in prompts]
    assert server.max_in_flight == 8
    assert seconds < 1.2  # two waves of 0.2 s, not sixteen (3.2 s)


def test_concurrency_one_sends_one_request_at_a_time() -> None:
    with ChatServer(delay=0.05) as server:
        _model(server, concurrency=1).generate([f"p{n}" for n in range(4)])
    assert server.max_in_flight == 1 and len(server.requests) == 4


def test_calls_from_several_threads_share_one_limit() -> None:
    import threading

    with ChatServer(delay=0.1) as server:
        model = _model(server, concurrency=3)
        threads = [threading.Thread(target=model.generate, args=([f"t{t} p{n}" for n in range(3)],)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert len(server.requests) == 12 and server.max_in_flight == 3


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_busy_or_failing_server_is_retried(status: int) -> None:
    with ChatServer() as server:
        server.fail_next(status)
        server.fail_next(status)
        assert _model(server, retries=2).generate(["hello there"]) == ["echo: hello there"]
    assert len(server.requests) == 3


def test_a_429_then_a_500_are_both_retried_and_retry_after_is_honoured() -> None:
    with ChatServer() as server:
        server.fail_next(429, {"Retry-After": "0.3"})
        server.fail_next(500)
        started = time.perf_counter()
        assert _model(server).generate(["x"]) == ["echo: x"]
        assert time.perf_counter() - started >= 0.3
    assert len(server.requests) == 3


def test_retries_are_bounded_and_the_last_failure_is_reported() -> None:
    with ChatServer() as server:
        for _ in range(5):
            server.fail_next(503)
        with pytest.raises(RemoteModelError, match=r"HTTP 503: scripted failure 503 \(3 attempts\)"):
            _model(server, retries=2).generate(["x"])
    assert len(server.requests) == 3


def test_a_request_the_server_rejects_is_not_retried() -> None:
    with ChatServer() as server:
        server.fail_next(400, body=b'{"error": {"message": "This model\'s maximum context length is 4096 tokens"}}')
        with pytest.raises(RemoteModelError, match="HTTP 400: This model's maximum context length is 4096 tokens"):
            _model(server).generate(["x"])
    assert len(server.requests) == 1


def test_a_server_that_never_answers_times_out_with_a_clear_error() -> None:
    with ChatServer() as server:
        server.hang = True
        started = time.perf_counter()
        with pytest.raises(RemoteModelError) as caught:
            _model(server, timeout=0.3, retries=1).generate(["anyone there?"])
        seconds = time.perf_counter() - started
    assert str(caught.value).startswith(f"the model server at {server.url}/chat/completions gave no answer within 0.3 s (2 attempts)")
    assert 0.6 <= seconds < 3
    assert caught.value.exit_code == 13


def test_a_server_that_is_not_there_is_reported() -> None:
    with ChatServer() as server:
        url = server.url
    model = OpenAIModel(RemoteConfig(url, "m", retries=1, backoff=0.01, timeout=2))
    with pytest.raises(RemoteModelError, match="refused the connection"):
        model.generate(["x"])


def test_the_api_key_never_appears_in_an_error_message() -> None:
    echoed = f'{{"error": {{"message": "Incorrect API key provided: {KEY}"}}}}'.encode()
    with ChatServer() as server:
        server.fail_next(401, body=echoed)
        with pytest.raises(RemoteModelError) as caught:
            _model(server, api_key=KEY).generate(["x"])
    assert KEY not in str(caught.value) and "Incorrect API key provided: ***" in str(caught.value)
    assert "LONGDOC_API_KEY" in str(caught.value)
    assert KEY not in repr(_model(server, api_key=KEY).config) and KEY not in repr(_model(server, api_key=KEY))


def test_a_reply_that_is_not_a_chat_completion_is_an_error() -> None:
    with ChatServer() as server:
        server.fail_next(200, body=b'{"object": "list", "data": []}')
        with pytest.raises(RemoteModelError, match="no chat completion"):
            _model(server).generate(["x"])


@pytest.mark.parametrize(
    ("attempt", "header", "expected"),
    [(0, None, (0.25, 0.5)), (3, None, (2.0, 4.0)), (10, None, (15.0, 30.0)), (0, "7", (7, 7)), (0, "600", (30, 30)), (2, "soon", (1.0, 2.0))],
)
def test_backoff_doubles_with_jitter_and_follows_retry_after(attempt: int, header: str | None, expected: tuple[float, float]) -> None:
    low, high = expected
    for jitter in (0.0, 0.5, 1.0):
        assert low <= retry_delay(attempt, header, backoff=0.5, max_backoff=30.0, jitter=lambda: jitter) <= high


def test_retry_after_as_an_http_date() -> None:
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 20))
    assert 15 < parse_retry_after(later) <= 20  # type: ignore[operator]


class _RecordingFake(FakeModel):
    """The fake local model, counting tokens as the remote model does and keeping each prompt
    as the conversation the local engine would read (a string is one user turn)."""

    def __init__(self, context_window: int) -> None:
        super().__init__(context_window=context_window)
        self.conversations: list[list[dict[str, str]]] = []

    def count_tokens(self, text: str) -> int:
        return count_tokens(text)

    def generate(self, prompts, options=None):  # type: ignore[no-untyped-def]
        self.conversations += [as_messages(prompt) for prompt in prompts]
        return super().generate(prompts, options)


def _long_report() -> Document:
    pages = [" ".join(f"On page {p} the board noted fact{p}x{n} about the new water works." for n in range(25)) for p in range(1, 9)]
    return Document(source="report.pdf", pages=tuple(Page(i + 1, t) for i, t in enumerate(pages)), kind="pdf")


def test_summarize_through_the_server_equals_the_local_orchestration(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same replies give the same summary and tree, whichever backend carries the prompts."""
    replier = FakeModel()  # its replies, served over HTTP, cut to max_tokens as the fake does
    served = lambda messages, body: replier.generate([messages], GenerationOptions(max_new_tokens=body["max_tokens"]))[0]  # noqa: E731
    options = SummaryOptions(words=400, chunk_tokens=64)  # an opening and 4 paragraphs
    with ChatServer(respond=served, delay=0.02) as server:
        remote = _model(server, context_window=900, concurrency=4)
        over_http = summarize(_long_report(), remote, ResultCache(tmp_path / "remote"), options)

    local = _RecordingFake(context_window=remote.context_window)
    in_process = summarize(_long_report(), local, ResultCache(tmp_path / "local"), options)

    assert len(over_http.levels[1]) == 4 and server.max_in_flight > 1
    assert over_http.text == in_process.text
    assert [[n.text for n in level] for level in over_http.levels] == [[n.text for n in level] for level in in_process.levels]
    # The same conversations went out (in another order: requests overlap).
    assert sorted(map(json.dumps, (body["messages"] for body in server.requests))) == sorted(map(json.dumps, local.conversations))


def test_translate_runs_side_by_side_and_matches_the_one_by_one_result(tmp_path) -> None:  # type: ignore[no-untyped-def]
    paragraphs = [f"Paragraph {n}: the ferry left the harbour at {n} o'clock with Captain Alder aboard." for n in range(12)]
    document = Document(source="log.txt", pages=(Page(1, "\n\n".join(paragraphs)),))
    last_user = lambda messages, body: "ZH " + messages[-1]["content"].rsplit("<text>", 1)[-1].split("</text>")[0].strip()  # noqa: E731
    with ChatServer(respond=last_user, delay=0.03) as server:
        model = _model(server, concurrency=4)
        side_by_side = list(translate(document, model, ResultCache(tmp_path / "a"), TranslateOptions(source="en", target="zh")))
        sent = list(server.requests)
        overlapped = server.max_in_flight
        one_at_a_time = _model(server, concurrency=1)  # runs side by side follow the model's concurrency
        one_by_one = list(translate(document, one_at_a_time, ResultCache(tmp_path / "b"), TranslateOptions(source="en", target="zh")))
    assert [p.text for p in side_by_side] == [p.text for p in one_by_one]
    assert [p.index for p in side_by_side] == list(range(12))
    assert overlapped == 4
    # Every paragraph but the first was translated with the paragraph before it as context, also
    # where a run begins: the runs' seams cost an extra request each, not context.
    with_context = {
        paragraphs.index(body["messages"][-1]["content"]): body["messages"][1]["content"]  # type: ignore[index]
        for body in sent if body["messages"][-1]["content"] in paragraphs and len(body["messages"]) == 4  # type: ignore[index, arg-type]
    }
    assert sorted(with_context) == list(range(1, 12))
    assert all(context == paragraphs[n - 1] for n, context in with_context.items())
