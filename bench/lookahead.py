"""Copy lookahead (engine/lookahead.py) on and off, on tasks as a user runs them, same run.

    python -m bench.lookahead [--model qwen2.5-1.5b] [--settings 0,6] [--weights auto] [--chars 1500] [--questions 10] [--json-out FILE]

Tasks, each run once per setting with a fresh result cache, settings alternating:
  translate   the first --chars characters of samples/tea_road.zh.txt into English (one piece at
              a time: the single-stream decoding lookahead serves)
  ask         the first --questions NQ dev questions (retrieval mode, default options)
Reported per task and setting: seconds, tokens generated, and whether every output is the same
as with the first setting (greedy decoding: it should be, up to the rounding of a many-row
product). Figures are for this CPU only: name it. The settings run one after the other, once, and
the first also pays the process's first calls (weight packing, warm-up): on 2026-12-06 it made
setting 0 look 1.75x slower on translate than bench/decode_task.py, which alternates settings on
the same prompts and times decoding alone, found it (lookahead 0.92-0.96x). Read its figures
beside that bench's.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bench.answers import build_items, memory_of
from bench.harness import ROOT, cpu_model, script_parser, write_json_atomic
from longdoc.document import Document, Page
from longdoc.engine.cache_config import answering_config
from longdoc.engine.loading import load_model
from longdoc.model.protocol import GenerationOptions
from longdoc.tasks.ask import AskOptions, ask
from longdoc.tasks.results import ResultCache
from longdoc.tasks.translate import translate


class _WithLookahead:
    """The local model with every generation's lookahead set, counting the tokens it generates."""

    def __init__(self, model: Any, lookahead: int) -> None:
        self._model, self.lookahead, self.generated = model, lookahead, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, prompts: Any, options: GenerationOptions | None = None, **kwargs: Any) -> list[str]:
        replies = self._model.generate(prompts, replace(options or GenerationOptions(), lookahead=self.lookahead), **kwargs)
        self.generated += sum(self._model.count_tokens(reply) for reply in replies)
        return replies


def run_translate(model: Any, chars: int) -> list[str]:
    text = (ROOT / "samples" / "tea_road.zh.txt").read_text(encoding="utf-8")[:chars]
    document = Document(source="tea_road.zh.txt", pages=(Page(1, text),))
    with tempfile.TemporaryDirectory() as scratch:
        return [paragraph.text for paragraph in translate(document, model, ResultCache(Path(scratch)))]


def run_ask(model: Any, questions: int, home: Path) -> list[str]:
    texts, items = build_items()
    memories: dict[str, object] = {}
    answers = []
    with tempfile.TemporaryDirectory() as scratch:
        results = ResultCache(Path(scratch))
        for item in [i for i in items if i.task == "nq"][:questions]:
            document, memory = memory_of(item.document, texts, memories, home)
            answers.append(ask(document, memory, item.question, model, results, AskOptions()).text)
    return answers


def measure(local: Any, task: str, settings: list[int], args: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"task": task}
    outputs: dict[int, list[str]] = {}
    for setting in settings:
        model = _WithLookahead(local, setting)
        started = time.perf_counter()
        outputs[setting] = run_translate(model, args.chars) if task == "translate" else run_ask(model, args.questions, args.index_home)
        row[f"seconds_{setting}"] = round(time.perf_counter() - started, 1)
        row[f"tokens_{setting}"] = model.generated
    first = settings[0]
    for setting in settings[1:]:
        row[f"speedup_{setting}"] = round(row[f"seconds_{first}"] / row[f"seconds_{setting}"], 2)
        row[f"same_outputs_{setting}"] = sum(a == b for a, b in zip(outputs[first], outputs[setting]))
    row["outputs"] = len(outputs[first])
    row["texts"] = {str(s): outputs[s] for s in settings}
    return row


def main() -> None:
    parser = script_parser("bench.lookahead", __doc__)
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--settings", default="0,6", help="lookahead settings; the first is the baseline")
    parser.add_argument("--weights", default="auto")
    parser.add_argument("--tasks", default="translate,ask")
    parser.add_argument("--chars", type=int, default=1500)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--index-home", type=Path, default=Path.home() / ".cache" / "longdoc-bench")
    parser.add_argument("--home", type=Path, default=Path.home() / ".cache" / "longdoc")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    settings = [int(s) for s in args.settings.split(",")]
    local = load_model(args.model, args.home, cache=answering_config(), weights=args.weights)
    rows = []
    for task in args.tasks.split(","):
        rows.append(measure(local, task, settings, args))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "texts"}), flush=True)
        if args.json_out:
            write_json_atomic(args.json_out, {"cpu": cpu_model(), "model": args.model, "weights": args.weights, "rows": rows})


if __name__ == "__main__":
    main()
