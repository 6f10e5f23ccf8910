"""`OpenAIModel`: a model on an OpenAI-compatible server behind the `Model` protocol.

The local engine decodes the prompts of one `generate()` call together in a batch; a server does
that itself across concurrent requests, so here the prompts of a call fan out as requests over a
thread pool that `concurrency` bounds. The pool belongs to the model, so callers that run several
documents at once (batch mode) share the bound: never more than `concurrency` requests in flight.

Budgets are planned against the server's context window: the one configured, else the one the
server states (asked once, on first use; model/window.py), else `DEFAULT_CONTEXT_WINDOW`. When the
server refuses a prompt as too long anyway, the model plans against a smaller window from then on
(read from the refusal) and raises `PromptTooLong`, so that the task can plan that step again.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from urllib.parse import urlsplit

from longdoc.tokens import count_tokens
from longdoc.model.chat_api import DEFAULT_CONTEXT_WINDOW, ChatClient, Messages, RemoteConfig, as_messages
from longdoc.model.protocol import GenerationOptions, Prompt, cut_at_stop
from longdoc.model.window import discover
from longdoc.errors import PromptTooLong, RemoteModelError
from longdoc.workers import DaemonPool

# The server's tokenizer is unknown, so budgets are counted in cl100k tokens. Other tokenizers
# spend up to ~15% more on the same text (Llama 2 and Mistral on English; more on some Chinese),
# so prompts are planned against 85% of the window and still fit the server's count.
_TOKENIZER_MARGIN = 0.85
# After a refusal the window is planned from the server's own count of the refused prompt; this
# leaves room for the chat template, whose share of a shorter prompt is larger.
_REFUSAL_MARGIN = 0.9
# A refusal that states no numbers: plan against this share of the refused prompt.
_REFUSAL_SHRINK = 0.75


class OpenAIModel:
    """A model served over the chat-completions API; prompts of one call run as concurrent requests."""

    def __init__(self, config: RemoteConfig, client: ChatClient | None = None) -> None:
        self.config = config
        self.client = client or ChatClient(config)
        self._pool = DaemonPool(config.concurrency, "longdoc-request")
        self._calls: set[threading.Event] = set()  # cancel flags of the generate() calls under way
        self._window_lock = threading.Lock()
        # The served window (the server's tokens) and the planned one (cl100k tokens); None until
        # first asked for, when the server has to be asked.
        self._served: int | None = config.context_window
        self._planned: int | None = None if config.context_window is None else int(config.context_window * _TOKENIZER_MARGIN)
        self._source = "configured"
        weakref.finalize(self, self._pool.shutdown)  # idle request threads end with the model

    def __repr__(self) -> str:
        return f"OpenAIModel({self.name!r}, concurrency={self.concurrency})"

    @property
    def name(self) -> str:
        # The served name alone ("default", "model") often says nothing about the weights behind
        # it, so the server's address is part of the name, and of every cache key built from it.
        parts = urlsplit(self.config.base_url)
        host = parts.netloc.rsplit("@", 1)[-1]
        return f"openai:{self.config.model}@{host}"

    @property
    def context_window(self) -> int:
        """cl100k tokens a prompt may take: the served window less a margin for the server's own
        tokenizer, or less once the server has refused a prompt as too long."""
        return self._window()[1]

    @property
    def served_window(self) -> int:
        """Tokens a request may hold as the server counts them: configured, stated by the server,
        the default, or what a refusal showed."""
        return self._window()[0]

    @property
    def context_source(self) -> str:
        """Where `served_window` comes from, for the user: "configured", "llama.cpp's /props (n_ctx of
        one slot)", "the default (the server does not say)", and what a refusal changed."""
        self._window()
        return self._source

    @property
    def concurrency(self) -> int:
        """Requests this model keeps in flight at most."""
        return self.config.concurrency

    def count_tokens(self, text: str) -> int:
        return count_tokens(text)

    def generate(self, prompts: Sequence[Prompt], options: GenerationOptions | None = None) -> list[str]:
        """One reply per prompt, in order; the first failure cancels the prompts not yet sent."""
        options = options or GenerationOptions()
        cancelled = threading.Event()
        self._calls.add(cancelled)
        futures: list[Future[str]] = []
        try:
            futures = [self._pool.submit(self._reply, n, prompt, options, cancelled) for n, prompt in enumerate(prompts)]
            return [future.result() for future in futures]
        except CancelledError:
            raise RemoteModelError(f"{self.name} was closed while requests were pending") from None
        except BaseException:
            # An error or Ctrl-C: nothing more is sent, and requests waiting out a backoff give up.
            cancelled.set()
            for future in futures:
                future.cancel()
            raise
        finally:
            self._calls.discard(cancelled)

    def close(self) -> None:
        """Send nothing more: queued requests are dropped, retries give up, threads end."""
        for cancelled in list(self._calls):
            cancelled.set()
        self._pool.shutdown()

    def _reply(self, number: int, prompt: Prompt, options: GenerationOptions, cancelled: threading.Event) -> str:
        messages = as_messages(prompt)
        try:
            answer = self.client.complete(messages, options, cancelled)
        except PromptTooLong as refusal:
            cancelled.set()
            self._learn(refusal, messages)
            raise
        except BaseException:
            cancelled.set()  # at once, from this thread: a queued request must not go out meanwhile
            raise
        # Servers honour at most four stop strings, and some ignore them: cut here as well.
        reply = cut_at_stop(answer, options.stop)
        if options.on_token is not None:
            options.on_token(self.count_tokens(reply))  # a whole reply at once: nothing streams
        if options.on_reply is not None:
            options.on_reply(number, reply)
        return reply

    def _window(self) -> tuple[int, int]:
        """(served, planned) windows; the first call asks the server when none was configured."""
        with self._window_lock:
            if self._served is None or self._planned is None:
                found = discover(self.client.fetch_json, self.config.base_url, self.config.model)
                if found is None:
                    self._served, self._source = DEFAULT_CONTEXT_WINDOW, "the default (the server does not say)"
                else:
                    self._served, self._source = found.tokens, found.source
                self._planned = int(self._served * _TOKENIZER_MARGIN)
            return self._served, self._planned

    def _learn(self, refusal: PromptTooLong, messages: Messages) -> None:
        """Plan against a smaller window: the server refused `messages` as longer than its context."""
        served, planned = self._window()
        ours = sum(count_tokens(message["content"]) for message in messages)
        if refusal.limit:
            # The server's limit in cl100k tokens: it counted `refusal.tokens` where we count `ours`
            # (its chat template included); a server that does not say is taken to count more.
            ratio = refusal.tokens / ours if refusal.tokens and ours else 1 / _TOKENIZER_MARGIN
            learned = int(refusal.limit / max(ratio, 1.0) * _REFUSAL_MARGIN)
        else:
            learned = int(ours * _REFUSAL_SHRINK)
        with self._window_lock:
            if learned >= (self._planned or planned):
                return  # nothing new: the prompt was longer than the plan allowed
            self._planned = max(learned, 1)
            size = f"a {refusal.tokens}-token prompt" if refusal.tokens else "a prompt"
            if refusal.limit:
                self._served = min(self._served or served, refusal.limit)
                self._source = f"the server's refusal of {size}"
            else:
                self._source += f"; planned at {self._planned} tokens since the server refused {size} as too long"
