"""Shared test setup: every test gets its own longdoc home and no user config, and nothing may reach a model hub."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def longdoc_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the cache at a fresh directory so tests never share or leave indexes, and hide any user config."""
    home = tmp_path / "longdoc-home"
    monkeypatch.setenv("LONGDOC_HOME", str(home))
    # No configuration file or API key of the machine's user may change what a test sees.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-config"))
    monkeypatch.delenv("LONGDOC_CONFIG", raising=False)
    monkeypatch.delenv("LONGDOC_API_KEY", raising=False)
    return home


_TOKEN = re.compile(r"[\u4e00-\u9fff]|[^\s\u4e00-\u9fff]+")  # the fake's tokens: CJK characters and words


class FakeModel:
    """A `Model` that answers instantly and deterministically, and records every prompt it gets.

    Tokens are whitespace words plus CJK characters. A reply is `reply(prompt)` (by default the
    first words of the prompt's last fenced block), cut to the call's max_new_tokens. `fail_after`
    raises KeyboardInterrupt once that many generate() calls have been made, as Ctrl-C would.
    """

    def __init__(self, context_window: int = 400, reply=None, fail_after: int | None = None) -> None:  # type: ignore[no-untyped-def]
        self.name = "fake-model"
        self.context_window = context_window
        self.concurrency = 1
        self.loads = 0  # times the CLI asked for a model (see `open`)
        self.caches: list[object] = []  # the engine memory sizes each of those asked for
        self.reply = reply or _echo_reply
        self.fail_after = fail_after
        self.calls: list[list[str]] = []  # prompts of each generate() call

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN.findall(text))

    def generate(self, prompts, options=None):  # type: ignore[no-untyped-def]
        from longdoc.model.protocol import GenerationOptions

        options = options or GenerationOptions()
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt
        prompts = [_flat(prompt) for prompt in prompts]
        self.calls.append(prompts)
        replies = []
        for prompt in prompts:
            reply = self.reply(prompt)
            tokens = list(_TOKEN.finditer(reply))
            cut = tokens[options.max_new_tokens - 1].end() if len(tokens) > options.max_new_tokens else len(reply)
            replies.append(reply[:cut])
            if options.on_token is not None:  # as the engine reports them, for progress bars
                options.on_token(min(len(tokens), options.max_new_tokens))
        return replies

    def open(self, spec, cache=None):  # type: ignore[no-untyped-def]
        """A `cli.run(..., open_model=)` that hands out this model and counts the loads."""
        self.loads += 1
        self.caches.append(cache)
        return self

    @property
    def prompts(self) -> list[str]:
        return [prompt for call in self.calls for prompt in call]


def _flat(prompt) -> str:  # type: ignore[no-untyped-def]
    """A conversation as one text with '[role]' lines, so replies and asserts can find each turn."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"[{message['role']}]\n{message['content']}" for message in prompt)


def last_turn(prompt: str) -> str:
    """The last message of a flattened conversation (the whole text for a plain prompt)."""
    return re.split(r"\n\n\[(?:user|assistant|system)\]\n|^\[(?:user|system)\]\n", prompt)[-1]


def _echo_reply(prompt: str) -> str:
    blocks = re.findall(r"<(\w+)>\n(.*?)\n</\1>", prompt, re.S)
    body = blocks[-1][1] if blocks else prompt
    return "Summary: " + " ".join(body.split()[:12]) + "."


@pytest.fixture
def fake_model() -> type[FakeModel]:
    """The FakeModel class, to build with the window, replies or interruption a test needs."""
    return FakeModel


class AttendingModel(FakeModel):
    """A FakeModel that also reports "attention" (`PassageScorer`): a passage's share of the words
    it has in common with the prompt's text after the passages. Records each window it scores (and
    its baseline, which it does not use);
    `fail_after_windows` raises KeyboardInterrupt once that many are scored, as Ctrl-C would."""

    def __init__(self, *args, fail_after_windows: int | None = None, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.windows: list[list[str]] = []
        self.baselines: list[str] = []
        self.fail_after_windows = fail_after_windows

    def score_passages(self, prompt, marker, passages, baseline=""):  # type: ignore[no-untyped-def]
        if self.fail_after_windows is not None and len(self.windows) >= self.fail_after_windows:
            raise KeyboardInterrupt
        self.windows.append(list(passages))
        self.baselines.append(baseline)
        question = set(re.findall(r"\w+", _flat(prompt).split(marker)[1].lower()))
        overlap = [len(question & set(re.findall(r"\w+", passage.lower()))) + 0.1 for passage in passages]
        return [value / sum(overlap) for value in overlap]


@pytest.fixture
def attending_model() -> type[AttendingModel]:
    """The AttendingModel class: a fake local engine for read mode."""
    return AttendingModel


class BagOfWords:
    """A hashed bag-of-words `Embedder`: deterministic and instant, and good enough to find shared words."""

    id = "fake-bow"
    max_tokens = 256

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed(self, texts, on_progress=None):  # type: ignore[no-untyped-def]
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                vectors[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
