"""`OpenAIModel`: a model on an OpenAI-compatible server behind the `Model` protocol.

The local engine decodes the prompts of one `generate()` call together in a batch; a server does
that itself across concurrent requests, so here the prompts of a call fan out as requests over a
thread pool that `concurrency` bounds. The pool belongs to the model, so callers that run several
documents at once (batch mode) share the bound: never more than `concurrency` requests in flight.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from urllib.parse import urlsplit

from longdoc.tokens import count_tokens
from longdoc.model.chat_api import ChatClient, RemoteConfig, as_messages
from longdoc.model.protocol import GenerationOptions, Prompt, cut_at_stop
from longdoc.errors import RemoteModelError
from longdoc.workers import DaemonPool

# The server's tokenizer is unknown, so budgets are counted in cl100k tokens. Other tokenizers
# spend up to ~15% more on the same text (Llama 2 and Mistral on English; more on some Chinese),
# so prompts are planned against 85% of the window and still fit the server's count.
_TOKENIZER_MARGIN = 0.85


class OpenAIModel:
    """A model served over the chat-completions API; prompts of one call run as concurrent requests."""

    def __init__(self, config: RemoteConfig, client: ChatClient | None = None) -> None:
        self.config = config
        self.client = client or ChatClient(config)
        self._pool = DaemonPool(config.concurrency, "longdoc-request")
        self._calls: set[threading.Event] = set()  # cancel flags of the generate() calls under way
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
        return int(self.config.context_window * _TOKENIZER_MARGIN)

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
            futures = [self._pool.submit(self._reply, prompt, options, cancelled) for prompt in prompts]
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

    def _reply(self, prompt: Prompt, options: GenerationOptions, cancelled: threading.Event) -> str:
        # Servers honour at most four stop strings, and some ignore them: cut here as well.
        return cut_at_stop(self.client.complete(as_messages(prompt), options, cancelled), options.stop)
