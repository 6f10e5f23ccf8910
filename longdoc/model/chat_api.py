"""One chat-completions request to an OpenAI-compatible server (vLLM, TGI, llama.cpp, Ollama).

`GenerationOptions` map onto the API's fields; transient failures (429, 408, 5xx, a refused or
dropped connection, no answer in time) are retried with exponential backoff and jitter, honouring
a server's Retry-After, a bounded number of times; when the last attempt fails too, that is a
`ServerUnavailable`. A rejected request is a `RemoteModelError` at once, and a prompt rejected as
longer than the server's context a `PromptTooLong` carrying the numbers the server gave. No
message holds the API key.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from longdoc import __version__
from longdoc.model.protocol import GenerationOptions, Prompt
from longdoc.errors import ModelChoiceError, PromptTooLong, RemoteModelError, ServerUnavailable
from longdoc.model.window import too_long

# Statuses a server uses for "busy or briefly broken, try again": rate limited, request timeout,
# and the gateway/overload family. Other 4xx mean the request itself is wrong: retrying repeats it.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# The API accepts at most this many stop strings; the rest are still cut client-side.
_MAX_API_STOPS = 4
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

# The window planned against when it is not set and the server does not say: what most served
# instruction models accept.
DEFAULT_CONTEXT_WINDOW = 8192
# Seconds to wait for a server to describe itself; a server that says nothing quickly is not asked again.
_PROBE_TIMEOUT = 10.0

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class RemoteConfig:
    """Where the server is, which model it serves, and how patiently to talk to it."""

    base_url: str  # the API root, usually ending in /v1; a full .../chat/completions URL also works
    model: str  # the name the server serves the model under
    # Tokens a request may hold, as the server counts them; what budgets are planned against.
    # None: asked of the server (llama.cpp, vLLM, Ollama and TGI say it; see model/window.py), and
    # DEFAULT_CONTEXT_WINDOW where it does not say.
    context_window: int | None = None
    # Requests in flight at once. 8 makes one summarize map batch a single wave; vLLM and TGI
    # batch concurrent requests on the GPU, while a one-slot llama.cpp server simply queues them.
    concurrency: int = 8
    # Seconds to wait for a reply: a 1,000-token answer at 20 tokens/s takes about 50 s.
    timeout: float = 120.0
    # Further attempts after a transient failure; with the backoff below they span ~8 s.
    retries: int = 4
    # The first wait before a retry, in seconds; it doubles each attempt, with jitter.
    backoff: float = 0.5
    # The longest wait between attempts, also for a server's Retry-After.
    max_backoff: float = 30.0
    api_key: str | None = field(default=None, repr=False)  # from LONGDOC_API_KEY; never shown

    def __post_init__(self) -> None:
        scheme = urlsplit(self.base_url).scheme
        if scheme not in ("http", "https") or not urlsplit(self.base_url).hostname:
            raise ModelChoiceError(f"{self.base_url!r} is not an http:// or https:// URL", "--base-url")
        assert self.model, "the served model's name is required"
        assert self.context_window is None or self.context_window >= 256, "context_window must be >= 256"
        assert self.concurrency >= 1, "concurrency must be >= 1"
        assert self.timeout > 0, "timeout must be > 0"
        assert self.retries >= 0, "retries must be >= 0"

    @property
    def endpoint(self) -> str:
        """The chat-completions URL."""
        url = self.base_url.rstrip("/")
        return url if url.endswith("/chat/completions") else url + "/chat/completions"


def as_messages(prompt: Prompt) -> Messages:
    """The conversation a prompt stands for: a string is one user turn, as the local engine reads it."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": message["role"], "content": message["content"]} for message in prompt]


def request_body(model: str, messages: Messages, options: GenerationOptions) -> dict[str, object]:
    """The JSON body of one request."""
    body: dict[str, object] = {
        "model": model,
        "messages": messages,
        "max_tokens": options.max_new_tokens,
        "temperature": options.temperature,
        "top_p": options.top_p,
        "seed": options.seed,
        "stream": False,
    }
    if options.stop:
        body["stop"] = list(options.stop[:_MAX_API_STOPS])
    return body


def retry_delay(attempt: int, retry_after: str | None, backoff: float, max_backoff: float, jitter: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number `attempt` (0-based): the server's Retry-After when it
    gives one, else backoff * 2**attempt scaled by a random 50-100%, so that requests which failed
    together do not all come back at the same instant; never more than `max_backoff`."""
    asked = parse_retry_after(retry_after) if retry_after else None
    if asked is not None:
        return min(max(asked, 0.0), max_backoff)
    return min(max_backoff, backoff * 2**attempt) * (0.5 + 0.5 * jitter())


def parse_retry_after(value: str) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date; None if neither."""
    try:
        return float(value.strip())
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


class _Transient(Exception):
    """A failure worth another attempt; `retry_after` is the server's header, if it sent one."""

    def __init__(self, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class ChatClient:
    """Sends chat-completions requests to one server; safe to share between threads."""

    def __init__(self, config: RemoteConfig) -> None:
        self.config = config
        host = urlsplit(config.base_url).hostname or ""
        # Proxies from the environment apply to remote servers, never to one on this machine.
        handlers = [urllib.request.ProxyHandler({})] if host in _LOOPBACK else []
        self._opener = urllib.request.build_opener(*handlers)
        self._silent = False  # a probe got no answer at all: the others would wait as long

    @property
    def where(self) -> str:
        """The endpoint as shown in messages: without any user:password part."""
        parts = urlsplit(self.config.endpoint)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        return f"{parts.scheme}://{netloc}{parts.path}"

    def complete(self, messages: Messages, options: GenerationOptions, cancelled: threading.Event | None = None) -> str:
        """The assistant's reply to `messages`; retries transient failures, raises RemoteModelError."""
        data = json.dumps(request_body(self.config.model, messages, options), ensure_ascii=False).encode("utf-8")
        attempts = self.config.retries + 1
        cancelled = cancelled or threading.Event()
        for attempt in range(attempts):
            if cancelled.is_set():
                raise RemoteModelError("request cancelled")
            try:
                return _reply_text(self._post(data), self.where)
            except _Transient as failure:
                if attempt + 1 == attempts:
                    raise ServerUnavailable(self._redacted(
                        f"the model server at {self.where} {failure.reason} ({attempts} attempt{'s' * (attempts > 1)}); "
                        f"check that it is running, or raise --timeout / --retries"
                    )) from None
                delay = retry_delay(attempt, failure.retry_after, self.config.backoff, self.config.max_backoff)
                if cancelled.wait(delay):
                    raise RemoteModelError("request cancelled") from None
        raise AssertionError("unreachable: the loop returns or raises")

    def fetch_json(self, url: str, body: Mapping[str, object] | None = None) -> object:
        """The JSON at `url` on the server (GET, or POST of `body`), or None for any failure: once,
        without retries, for the optional endpoints that describe a server. After one that got no
        answer at all (refused, timed out), the rest are not sent."""
        if self._silent:
            return None
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET", headers=self._headers())
        try:
            with self._opener.open(request, timeout=min(self.config.timeout, _PROBE_TIMEOUT)) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError:
            return None  # it answered: it has no such endpoint, or will not say
        except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException):
            self._silent = True
            return None
        except ValueError:
            return None

    def _post(self, data: bytes) -> object:
        request = urllib.request.Request(self.config.endpoint, data=data, method="POST", headers=self._headers())
        try:
            with self._opener.open(request, timeout=self.config.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise self._http_failure(error) from None
        except urllib.error.URLError as error:
            raise self._connection_failure(error.reason) from None
        except (TimeoutError, OSError, http.client.HTTPException) as error:
            raise self._connection_failure(error) from None
        try:
            return json.loads(raw)
        except ValueError:
            raise RemoteModelError(f"the model server at {self.where} sent a reply that is not JSON") from None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": f"longdoc/{__version__}"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def _http_failure(self, error: urllib.error.HTTPError) -> Exception:
        raw = _read_quietly(error)
        detail = _server_message(raw)
        said = f"answered HTTP {error.code}" + (f": {detail}" if detail else "")
        refusal = too_long(error.code, _server_message(raw, width=2000), _json_or_none(raw))
        if refusal is not None:
            return PromptTooLong(self._redacted(f"the model server at {self.where} {said}"), refusal.limit, refusal.tokens)
        if error.code in RETRY_STATUSES:
            return _Transient(said, error.headers.get("Retry-After") if error.headers else None)
        hint = "; check LONGDOC_API_KEY" if error.code in (401, 403) else "; check --api-model" if error.code == 404 else ""
        return RemoteModelError(self._redacted(f"the model server at {self.where} {said}{hint}"))

    def _connection_failure(self, reason: object) -> Exception:
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return _Transient(f"gave no answer within {self.config.timeout:g} s")
        if isinstance(reason, socket.gaierror):
            return ServerUnavailable(f"cannot resolve the host of {self.where}")
        if isinstance(reason, ConnectionRefusedError):
            return _Transient("refused the connection")
        name = getattr(reason, "strerror", None) or type(reason).__name__
        return _Transient(f"could not be reached ({name})")

    def _redacted(self, text: str) -> str:
        key = self.config.api_key
        return text.replace(key, "***") if key else text


def _reply_text(payload: object, where: str) -> str:
    try:
        message = payload["choices"][0]["message"]  # type: ignore[index]
        content = message.get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise RemoteModelError(f"the model server at {where} sent no chat completion (no choices[0].message)") from None
    return content if isinstance(content, str) else ""


def _read_quietly(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read()
    except (OSError, http.client.HTTPException):
        return b""


def _json_or_none(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _server_message(raw: bytes, width: int = 200) -> str:
    """The server's explanation of an error, on one line of at most `width` characters: OpenAI's
    {"error": {"message"}}, TGI's {"error": "..."}, FastAPI's {"detail": ...}, or the start of the body."""
    text = raw.decode("utf-8", "replace")
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, Mapping):
        found = payload.get("error", payload.get("detail", payload.get("message")))
        if isinstance(found, Mapping):
            found = found.get("message", found)
        text = found if isinstance(found, str) else json.dumps(found, ensure_ascii=False)
    line = " ".join(text.split())
    return line[:width] + ("..." if len(line) > width else "")
