"""Summarize many documents through the openai backend: concurrency 1 vs 8 against a server whose
replies take 200 ms.

    python -m bench.remote_concurrency [--docs 20] [--delay 0.2] [--quick] [--json-out FILE]

The server is the test suite's loopback chat-completions server (tests/chat_server.py) in this
process; it answers every request with a short summary after `--delay` seconds, so the
time measured is longdoc's orchestration plus the waits it could not overlap. Each document is
~2,000 cl100k tokens and the served window is set to 2,048 tokens, so every document takes a map
step of two chunks and a final step: three requests, two of them independent. Both runs go
through the command line (`longdoc summarize FILES --out-dir DIR`) with an empty result cache of
their own. --quick: 8 documents, 100 ms replies (a smoke run, no threshold).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from bench.harness import script_parser
from longdoc import cli
from longdoc.chunking import count_tokens
from tests.chat_server import ChatServer  # tests/ has no __init__.py: found as a namespace package from the root


def reply(messages: list[dict[str, str]], body: dict[str, object]) -> str:
    """A short summary that differs with its input (identical replies would make the final
    prompts of all documents identical, and the result cache would answer most of them)."""
    fenced = messages[-1]["content"].split("<document>")[-1]
    return "The council met. " + " ".join(fenced.split()[:16])


TOPICS = ("bridge repairs", "the ferry timetable", "the school roof", "harbour dredging", "the library hours", "street lighting")


def write_documents(folder: Path, count: int, tokens: int = 2000) -> list[str]:
    """`count` distinct meeting minutes of about `tokens` cl100k tokens each."""
    paths = []
    for n in range(count):
        sentences, text = [], ""
        k = 0
        while count_tokens(text) < tokens:
            topic = TOPICS[(n + k) % len(TOPICS)]
            sentences.append(f"At meeting {n}, item {k}, the council discussed {topic} and recorded vote {n * 100 + k} in the ledger.")
            k += 1
            if k % 8 == 0:
                text = " ".join(sentences)
        path = folder / f"minutes{n:02d}.txt"
        path.write_text(" ".join(sentences) + "\n", encoding="utf-8")
        paths.append(str(path))
    return paths


def timed_run(files: list[str], server: ChatServer, concurrency: int, scratch: Path) -> dict[str, float]:
    """Seconds for one batch run through the CLI, and the requests it made and overlapped."""
    os.environ["LONGDOC_HOME"] = str(scratch / f"home-{concurrency}")  # empty cache: nothing reused
    before = len(server.requests)
    server.max_in_flight = 0
    started = time.perf_counter()
    code = cli.run([
        "summarize", *files, "--out-dir", str(scratch / f"out-{concurrency}"), "--backend", "openai",
        "--base-url", server.url, "--api-model", "bench", "--context-window", "2048", "--concurrency", str(concurrency),
    ])
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"longdoc summarize exited {code}")
    written = len(list((scratch / f"out-{concurrency}").iterdir()))
    assert written == len(files), f"{written} summaries for {len(files)} documents"
    return {"seconds": round(seconds, 2), "requests": len(server.requests) - before, "max_in_flight": server.max_in_flight}


def main() -> None:
    parser = script_parser("bench.remote_concurrency", __doc__)
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds each reply takes")
    parser.add_argument("--quick", action="store_true", help="8 documents, 100 ms replies, no threshold")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    docs, delay = (8, 0.1) if args.quick else (args.docs, args.delay)
    with tempfile.TemporaryDirectory() as folder, ChatServer(respond=reply, delay=delay) as server:
        scratch = Path(folder)
        (scratch / "docs").mkdir()
        files = write_documents(scratch / "docs", docs)
        report: dict[str, object] = {"documents": docs, "reply_seconds": delay, "cpus": os.cpu_count()}
        for concurrency in (1, 8):
            report[f"concurrency_{concurrency}"] = timed_run(files, server, concurrency, scratch)
            print(f"concurrency {concurrency}:", json.dumps(report[f"concurrency_{concurrency}"]), flush=True)
    ratio = report["concurrency_1"]["seconds"] / report["concurrency_8"]["seconds"]  # type: ignore[index]
    report["speedup"] = round(ratio, 2)
    report["load"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))
    if not args.quick and ratio < 5:
        raise SystemExit(f"concurrency 8 was only {ratio:.1f}x faster than 1 (expected at least 5x)")


if __name__ == "__main__":
    main()
