"""The context window of a served model: asked of the server, or read from its refusal of a prompt.

Servers say how long a request may be in their own ways, none of them part of the OpenAI API:

- llama.cpp: GET /props, `default_generation_settings.n_ctx`, the context of one slot (the
  server's --ctx-size shared among its --parallel slots, so 8192 over 4 slots is 2048);
- vLLM (and SGLang): GET /v1/models, `max_model_len` of the served model;
- Ollama: GET /api/ps, `context_length` of the loaded model; else POST /api/show, `num_ctx` among
  its parameters; else its smallest default, 4096 (Ollama cuts a longer prompt without a word);
- TGI: GET /info, `max_total_tokens`.

A server that refuses a prompt as too long names its limit and the prompt's size in one of a few
wordings (`too_long`). Everything here reads payloads; the HTTP is the caller's (`fetch`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

# GET (body None) or POST (a JSON body) of a URL: its JSON, or None for any failure or non-JSON.
Fetch = Callable[[str, Mapping[str, object] | None], object]

# Ollama's context when neither the model nor the request sets one, on machines with under 24 GiB
# of VRAM (larger GPUs get more); the server's OLLAMA_CONTEXT_LENGTH cannot be read from outside.
OLLAMA_DEFAULT = 4096


@dataclass(frozen=True)
class ServedWindow:
    """Tokens a request may hold, as the server counts them, and where that was read."""

    tokens: int
    source: str  # where it was read, for the user: "llama.cpp's /props (n_ctx of one slot)"


def discover(fetch: Fetch, base_url: str, model: str) -> ServedWindow | None:
    """The served window of `model`, asked of the server at `base_url` (the API root); None when
    no endpoint of a known server answers."""
    root, api = _roots(base_url)
    for probe in (_llama_cpp, _vllm, _ollama, _tgi):
        found = probe(fetch, root, api, model)
        if found is not None and found.tokens > 0:
            return found
    return None


def _roots(base_url: str) -> tuple[str, str]:
    """(the server's root URL, the API root that /models hangs from)."""
    api = base_url.rstrip("/").removesuffix("/chat/completions")
    parts = urlsplit(api)
    root_path = parts.path.removesuffix("/v1") if parts.path.endswith("/v1") else ""
    return urlunsplit((parts.scheme, parts.netloc, root_path, "", "")), api


def _llama_cpp(fetch: Fetch, root: str, api: str, model: str) -> ServedWindow | None:
    props = fetch(f"{root}/props", None)
    n_ctx = _path(props, "default_generation_settings", "n_ctx")
    return ServedWindow(n_ctx, "llama.cpp's /props (n_ctx of one slot)") if isinstance(n_ctx, int) else None


def _vllm(fetch: Fetch, root: str, api: str, model: str) -> ServedWindow | None:
    listed = _path(fetch(f"{api}/models", None), "data")
    if not isinstance(listed, list):
        return None
    entries = [entry for entry in listed if isinstance(entry, Mapping)]
    chosen = [entry for entry in entries if entry.get("id") == model] or (entries if len(entries) == 1 else [])
    for entry in chosen:
        length = entry.get("max_model_len")
        if isinstance(length, int):
            return ServedWindow(length, "/v1/models (max_model_len)")
        n_ctx = _path(entry, "meta", "n_ctx")  # llama.cpp lists its per-slot context here too
        if isinstance(n_ctx, int):
            return ServedWindow(n_ctx, "/v1/models (n_ctx of one slot)")
    return None


def _ollama(fetch: Fetch, root: str, api: str, model: str) -> ServedWindow | None:
    names = {model, f"{model}:latest"}
    running = _path(fetch(f"{root}/api/ps", None), "models")
    for entry in running if isinstance(running, list) else []:
        if isinstance(entry, Mapping) and names & {entry.get("name"), entry.get("model")}:
            if isinstance(entry.get("context_length"), int):
                return ServedWindow(entry["context_length"], "Ollama's /api/ps (context_length of the loaded model)")
    shown = fetch(f"{root}/api/show", {"model": model, "name": model})  # "name" for older Ollama
    if not isinstance(shown, Mapping):
        return None
    parameters = shown.get("parameters")
    found = re.search(r"^\s*num_ctx\s+(\d+)", parameters, re.M) if isinstance(parameters, str) else None
    if found:
        return ServedWindow(int(found.group(1)), "Ollama's /api/show (num_ctx)")
    info = shown.get("model_info")
    trained = [v for k, v in info.items() if k.endswith(".context_length") and isinstance(v, int)] if isinstance(info, Mapping) else []
    return ServedWindow(min([OLLAMA_DEFAULT, *trained]), f"Ollama's default context ({OLLAMA_DEFAULT} tokens unless OLLAMA_CONTEXT_LENGTH raises it)")


def _tgi(fetch: Fetch, root: str, api: str, model: str) -> ServedWindow | None:
    total = _path(fetch(f"{root}/info", None), "max_total_tokens")
    return ServedWindow(total, "TGI's /info (max_total_tokens)") if isinstance(total, int) else None


def _path(payload: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(payload, Mapping):
            return None
        payload = payload.get(key)
    return payload


# How servers word "this prompt is longer than my context", and where the numbers are:
#   llama.cpp  request (2623 tokens) exceeds the available context size (2048 tokens), try increasing it
#   vLLM       This model's maximum context length is 4096 tokens. However, you requested 4200 tokens
#              (3000 in the messages, 1200 in the completion). ...
#   vLLM       This model's maximum context length is 1536 tokens. However, your request has 4176 input tokens. ...
#   vLLM       'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context
#              length is 4096 tokens and your request has 2778 input tokens (8000 > 4096 - 2778).
#   OpenAI     This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. ...
#   TGI        Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens ...
_LIMIT = re.compile(r"available context size \((\d+) tokens?\)|maximum context length is (\d+)|must be <= (\d+)", re.I)
_PROMPT = re.compile(
    r"request \((\d+) tokens?\) exceeds|(\d+) in the messages|has (\d+) input tokens|resulted in (\d+) tokens|Given: (\d+) `inputs` tokens",
    re.I,
)
_SAYS_TOO_LONG = re.compile(r"context (?:length|size|window)|(?:prompt|input|request) is too long|too many tokens", re.I)
_TOO_LONG_TYPES = frozenset({"exceed_context_size_error", "context_length_exceeded"})
TOO_LONG_STATUSES = frozenset({400, 413, 422})


@dataclass(frozen=True)
class Refusal:
    """A server's refusal of a prompt as too long: its window and the prompt's size, where it said them."""

    limit: int | None
    tokens: int | None


def too_long(status: int, message: str, payload: object = None) -> Refusal | None:
    """The refusal in an error answer (status, the server's message, its JSON), or None when the
    answer is about something else."""
    if status not in TOO_LONG_STATUSES:
        return None
    error = _path(payload, "error")
    kind = {_path(error, "type"), _path(error, "code")} if isinstance(error, Mapping) else set()
    limit, tokens = _first_number(_LIMIT, message), _first_number(_PROMPT, message)
    if isinstance(error, Mapping):  # llama.cpp also sends the numbers as fields
        limit = error["n_ctx"] if isinstance(error.get("n_ctx"), int) else limit
        tokens = error["n_prompt_tokens"] if isinstance(error.get("n_prompt_tokens"), int) else tokens
    if not (kind & _TOO_LONG_TYPES or limit is not None or _SAYS_TOO_LONG.search(message)):
        return None
    return Refusal(limit, tokens)


def _first_number(pattern: re.Pattern[str], text: str) -> int | None:
    found = pattern.search(text)
    return int(next(group for group in found.groups() if group)) if found else None
