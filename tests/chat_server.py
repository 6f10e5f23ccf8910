"""A chat-completions server on 127.0.0.1, for tests and benches: scripted replies, delays,
failures and silence, a context size it refuses longer prompts above (as llama.cpp words it),
other endpoints' JSON (/props, /v1/models, ...), and a count of the requests it was serving at the
same moment.

    with ChatServer(delay=0.2) as server:
        OpenAIModel(RemoteConfig(server.url, "test-model"))...
        server.max_in_flight, server.requests
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from longdoc.tokens import count_tokens

# Replies to one request: (messages, the whole request body) -> the assistant's text.
Respond = Callable[[list[dict[str, str]], dict[str, object]], str]


def echo(messages: list[dict[str, str]], body: dict[str, object]) -> str:
    """The default reply: the first words of the last message, tagged."""
    return "echo: " + " ".join(messages[-1]["content"].split()[:8])


class ChatServer:
    """A loopback OpenAI-compatible server; use as a context manager."""

    def __init__(self, respond: Respond = echo, delay: float = 0.0) -> None:
        self.respond = respond
        self.delay = delay  # seconds each reply takes
        # Served first, one per request: (status, headers, body); the body defaults to an error JSON.
        self.failures: list[tuple[int, dict[str, str], bytes | None]] = []
        self.hang = False  # when set, requests get no answer until the server stops
        # When set, a request of more tokens (cl100k, plus the chat template's) is refused with
        # llama.cpp's HTTP 400, as a llama.cpp slot of this many tokens refuses it.
        self.context_size: int | None = None
        self.refused = 0  # requests refused as too long
        # JSON answered at other paths than chat completions (GET, or POST as Ollama's /api/show),
        # e.g. {"/props": {...}}; any other path is a 404.
        self.pages: dict[str, object] = {}
        self.probed: list[str] = []  # the other paths asked for, in order
        self.requests: list[dict[str, object]] = []  # request bodies, in arrival order
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ChatServer:
        threading.Thread(target=self._server.serve_forever, args=(0.02,), name="chat-server", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, status: int, headers: dict[str, str] | None = None, body: bytes | None = None) -> None:
        """Answer the next request (after those already scripted) with this status instead of a reply."""
        self.failures.append((status, headers or {}, body))

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        """A request's size as this server counts it: cl100k tokens, plus ChatML's per message and
        a default system prompt's (as Qwen's template adds)."""
        return sum(count_tokens(m["content"]) + 5 for m in messages) + 20

    def _refusal(self, messages: list[dict[str, str]]) -> tuple[int, dict[str, str], bytes] | None:
        tokens = self.prompt_tokens(messages)
        if self.context_size is None or tokens <= self.context_size:
            return None
        message = f"request ({tokens} tokens) exceeds the available context size ({self.context_size} tokens), try increasing it"
        error = {"code": 400, "message": message, "type": "exceed_context_size_error", "n_prompt_tokens": tokens, "n_ctx": self.context_size}
        return 400, {}, json.dumps({"error": error}).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                path = self.path.split("?")[0]
                server.probed.append(path)
                if server.hang:
                    server._stopping.wait(30)
                    return
                found = path in server.pages
                payload = json.dumps(server.pages[path] if found else {"error": {"message": "File Not Found", "code": 404}}).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                if not self.path.endswith("/chat/completions"):
                    self.rfile.read(int(self.headers.get("Content-Length", 0)))
                    return self.do_GET()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with server._lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    refusal = None if server.failures else server._refusal(body["messages"])
                    failure = server.failures.pop(0) if server.failures else refusal
                    server.refused += refusal is not None
                try:
                    if server.hang:
                        server._stopping.wait(30)  # bounded, and cut short when the server stops
                        return
                    if server.delay:
                        server._stopping.wait(server.delay)
                    status, headers, payload = failure or (200, {}, None)
                    if failure is None:
                        payload = _completion(server.respond(body["messages"], body), str(body.get("model")))
                    elif payload is None:
                        payload = json.dumps({"error": {"message": f"scripted failure {status}", "type": "test"}}).encode()
                finally:
                    # Counted out before the answer is written, so a client that sends its next
                    # request the moment it reads this one is not seen as one too many.
                    with server._lock:
                        server.in_flight -= 1
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                pass

        return Handler


def _completion(text: str, model: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    ).encode()
