"""Answer quality of `longdoc ask` (retrieval mode): four tasks of at least 30 questions each, with
the search-only baseline beside them, and seconds per question.

    python -m bench.answers --model qwen2.5-1.5b --json-out bench/results/answers_new_1.5b.json
    python -m bench.answers --root /tmp/longdoc-main --model qwen2.5-1.5b --json-out .../answers_main_1.5b.json

`--root` imports longdoc from another checkout (the current main in a git worktree), so main and a
change run the same items with the same scoring. Items (development split, ../shared/eval/):

  nq            the 36 questions on the 7 Natural Questions Wikipedia pages (HTML read as
                `longdoc ask page.html` would); right when the answer contains a reference answer
  quality       the first 6 questions on each of the 5 QuALITY stories (30); right when the answer
                names the right option (its letter, else the option sharing most words)
  cmrc          CMRC 2018 dev: articles 0-49 joined into one Chinese document (~50K characters),
                the first question of 30 of them, spread evenly; right when the answer contains the span
  unanswerable  questions the document cannot answer (30): 15 NQ questions asked on the next NQ
                page (another topic), 15 CMRC questions of articles 50-99 asked on the document of
                articles 0-49; right when the answer is "not in the document"
  quality_joined (not run unless named) quality's 30 questions, each asked on its story joined with
                the next two (~11K-18K tokens: past the answering window, which holds any one story
                whole), so that read mode and retrieval must each find the story's passages

--mode read answers through `longdoc ask --mode read` (`ask_by_reading`) instead of retrieval.

search-only baseline: the top 3 hits of `longdoc search` (no model) contain a reference (nq, cmrc),
or the option sharing most words with them (quality); it never refuses (unanswerable: 0).

Indexes are kept in --index-home (built once, shared by runs); answers go to a fresh result cache,
so each run answers every question itself. The JSON is rewritten after each question and a re-run
with the same --json-out skips the questions already there (Ctrl-C loses nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import string
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from itertools import zip_longest
from pathlib import Path

from bench.harness import ROOT, cmrc_articles, cpu_model, leval_rows, script_parser, write_json_atomic

TASKS = ("nq", "quality", "cmrc", "unanswerable")
EXTRA_TASKS = ("quality_joined",)
LETTERED = ("quality", "quality_joined")  # answered by naming an option's letter
_STOPWORDS = frozenset("a an the of and or to in on at for by with is are was were be it its that this as from his her their they he she".split())


@dataclass(frozen=True)
class Item:
    task: str
    document: str  # key into the documents
    question: str
    answers: tuple[str, ...] = ()  # references; none for unanswerable
    options: dict[str, str] = field(default_factory=dict)  # quality: letter -> option text

    @property
    def key(self) -> str:
        return f"{self.task}|{self.document}|{self.question}"


def build_items() -> tuple[dict[str, str], list[Item]]:
    """Document texts by key, and every item of every task."""
    from longdoc.ingest.html import html_to_text

    texts: dict[str, str] = {}
    items: list[Item] = []
    nq = leval_rows("natural_question")
    for n, row in enumerate(nq):
        texts[f"nq{n}"] = html_to_text(row["input"])
        items += [Item("nq", f"nq{n}", q, (a,)) for q, a in zip(row["instructions"], row["outputs"])]
    for n, row in enumerate(leval_rows("quality")):
        texts[f"quality{n}"] = row["input"]
        for question, reference in list(zip(row["instructions"], row["outputs"]))[:6]:
            options = dict(re.findall(r"\(([A-D])\)\s*(.+)", question))
            letter = re.search(r"\(([A-D])\)", reference).group(1)  # type: ignore[union-attr]
            items.append(Item("quality", f"quality{n}", question.strip() + "\nName the letter of the right option.", (letter,), options))
    stories = [key for key in texts if key.startswith("quality")]
    for n, key in enumerate(stories):
        joined = [stories[(n + k) % len(stories)] for k in range(3)]
        texts["+".join(joined)] = "\n\n".join(texts[k] for k in joined)
        items += [replace(i, task="quality_joined", document="+".join(joined)) for i in items if i.task == "quality" and i.document == key]
    paragraphs = [article["paragraphs"][0] for article in cmrc_articles()]
    texts["cmrc0-49"] = "\n\n".join(p["context"] for p in paragraphs[:50])
    for n in (round(i * 50 / 30) for i in range(30)):
        qa = paragraphs[n]["qas"][0]
        items.append(Item("cmrc", "cmrc0-49", qa["question"], tuple(a["text"] for a in qa["answers"])))
    pairs = [(d, q) for q in range(3) for d in range(len(nq))][:15]
    items += [Item("unanswerable", f"nq{(d + 1) % len(nq)}", nq[d]["instructions"][q]) for d, q in pairs]
    items += [Item("unanswerable", "cmrc0-49", paragraphs[50 + 3 * i]["qas"][0]["question"]) for i in range(15)]
    return texts, items


def _normalise(text: str) -> str:
    text = text.lower().translate(str.maketrans("", "", string.punctuation + "，。、“”‘’（）《》：；！？"))
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def contains(answer: str, references: tuple[str, ...]) -> bool:
    flat = _normalise(answer).replace(" ", "")
    return any(_normalise(r).replace(" ", "") in flat for r in references if r.strip())


def chosen_option(answer: str, options: dict[str, str]) -> str | None:
    """The option an answer names: "(B)", "B)" or a leading "B", else the one sharing most words."""
    letter = re.search(r"\(([A-D])\)|\b([A-D])\)|^([A-D])\b|\b(?:option|answer)\s+(?:is\s+)?\(?([A-D])\b", answer.strip(), re.I)
    if letter:
        return next(g for g in letter.groups() if g).upper()
    words = _words(answer)
    overlap = {k: len(words & _words(v)) for k, v in options.items()}
    return max(overlap, key=overlap.get) if overlap and max(overlap.values()) > 0 else None  # type: ignore[arg-type]


def _words(text: str) -> set[str]:
    return set(_normalise(text).split()) - _STOPWORDS


def score(item: Item, text: str, refused: bool) -> bool:
    if item.task == "unanswerable":
        return refused
    if refused:
        return False
    if item.task in LETTERED:
        return chosen_option(text, item.options) == item.answers[0]
    return contains(text, item.answers)


def main() -> None:
    parser = script_parser("bench.answers", __doc__)
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--root", type=Path, default=ROOT, help="the longdoc checkout to import")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"of {', '.join(TASKS + EXTRA_TASKS)}")
    parser.add_argument("--mode", choices=("retrieve", "read"), default="retrieve", help="read: `ask --mode read`")
    parser.add_argument("--weights", default="auto", help="auto (4-bit one-stream decoding), float or int8")
    parser.add_argument("--limit", type=int, default=0, help="questions per task (0: all)")
    parser.add_argument("--search-only", action="store_true", help="the baseline: top 3 hits, no model")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="an AskOptions field for this run, e.g. max_sources=5 (repeatable)")
    parser.add_argument("--index-home", type=Path, default=Path.home() / ".cache" / "longdoc-bench")
    parser.add_argument("--results", type=Path, default=None,
                        help="keep the model's step results here (default: a fresh cache, so every step runs); "
                             "a second run of a change then re-uses the steps it did not change (its seconds are not comparable)")
    parser.add_argument("--json-out", type=Path, required=True)
    args = parser.parse_args()
    # Deliberately another checkout's longdoc (--root), ahead of this one's: nothing has imported
    # longdoc yet (bench.harness does not), so every `from longdoc...` below comes from --root.
    sys.path.insert(0, str(args.root.resolve()))
    _prepare_home(args.index_home)

    texts, items = build_items()
    wanted = args.tasks.split(",")
    per_task = [[i for i in items if i.task == t][: args.limit or None] for t in wanted]
    # Round-robin over the tasks, so a run stopped early has about as many questions of each.
    chosen = [item for row in zip_longest(*per_task) for item in row if item is not None]
    done = json.loads(args.json_out.read_text()) if args.json_out.exists() else {"rows": []}
    seen = {row["key"] for row in done["rows"]}
    model, ask = (None, None) if args.search_only else _load(args.model, args.index_home, args.weights, args.mode)
    model = _ScoreRecorder(model) if model is not None and hasattr(model, "score_next") else model
    options = _ask_options(args.set)
    memories: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-results-") as scratch:
        from longdoc.tasks.results import ResultCache

        results = ResultCache(args.results or Path(scratch))
        for item in chosen:
            if item.key in seen:
                continue
            document, memory = memory_of(item.document, texts, memories, args.index_home)
            started = time.perf_counter()
            if args.search_only:
                hits = memory.search(item.question, k=3)  # type: ignore[attr-defined]
                text, refused, unverified = "\n".join(hit.chunk.text for hit in hits), False, ""
                if item.task in LETTERED:
                    text = _closest_option(text, item.options)
            else:
                if isinstance(model, _ScoreRecorder):
                    model.scores = []
                answer = ask(document, memory, item.question, model, results, options)  # type: ignore[misc]
                text, refused, unverified = answer.text, not answer.supported, getattr(answer, "unverified", "")
            row = {"key": item.key, "task": item.task, "question": item.question, "answer": text[:600],
                   "refused": refused, "ok": score(item, text, refused), "seconds": round(time.perf_counter() - started, 1),
                   # an answer set aside by the support check, and whether it would have counted
                   "unverified": unverified[:300], "unverified_ok": bool(unverified) and score(item, unverified, False),
                   # a checkout that quotes (6cb64a6, not adopted): each passage's reply in rank order, whether it counted, whether it is right
                   "quotes": [{"source": n, "reply": r[:200], "held": h, "ok": score(item, r, False)}
                              for n, r, h in (getattr(answer, "quotes", []) if not args.search_only else [])]}
            # Only a multiple-choice question's scores are its letters' (`ask` may also score passage numbers).
            if isinstance(model, _ScoreRecorder) and model.scores and item.task in LETTERED:
                # The letters' scores per ordering of the options asked (one ordering before
                # 2026-12-06); the first ordering's pick alone is what choosing without rotations gives.
                row["letter_scores"] = [[round(v, 3) for v in scores] for scores in model.scores]
                first = model.scores[0]
                row["first_order_ok"] = "ABCD"[first.index(max(first))] == item.answers[0]
            done["rows"].append(row)
            print(f"{item.task:12} {'OK ' if row['ok'] else 'no '} {row['seconds']:6.1f}s {item.question[:60]!r} -> {text[:90]!r}", flush=True)
            _save(args, done)
    done["summary"] = summarize(done["rows"])
    _save(args, done)
    print(json.dumps(done["summary"], indent=1))


class _ScoreRecorder:
    """The model, keeping the letters' scores it reports for the question being asked."""

    def __init__(self, model) -> None:  # type: ignore[no-untyped-def]
        self._model, self.scores = model, []

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._model, name)

    def score_next(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        scores = self._model.score_next(*args, **kwargs)
        self.scores = scores if scores and isinstance(scores[0], list) else [scores]
        return scores


def memory_of(name: str, texts: dict[str, str], memories: dict[str, object], home: Path):  # type: ignore[no-untyped-def]
    """The document `name` and its memory (its index built in `home` the first time), kept in
    `memories` for the next question; the embedder is the one `longdoc index` would choose."""
    from longdoc.document import Document, Page
    from longdoc.memory.choice import open_embedder
    from longdoc.memory.index import open_memory

    document = Document(source=name, pages=(Page(1, texts[name]),))
    if name not in memories:
        memories[name] = open_memory(document, open_embedder(None, document.text)[0], home=home)[0]
    return document, memories[name]


def shown_passages(model, document, memory, question: str):  # type: ignore[no-untyped-def]
    """The passages `longdoc ask` shows the model for `question`: its retrieval and packing, in
    retrieval's order, numbered 1.. (the probes of bench/rerank.py and bench/passage_pick.py)."""
    from longdoc.tasks.ask import AskOptions, answer_overhead, select_passages

    options = AskOptions()
    hits = memory.search(question, k=options.candidates)
    budget = model.context_window - answer_overhead(question, model) - options.answer_tokens
    return select_passages(document, hits, model, budget, options.max_sources)


class Probe:
    """A passage-ranking probe's run: the questions of `args.tasks` not yet in `args.json_out`,
    each with its document and the passages `ask` shows; rows are written as they come."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        _prepare_home(args.index_home)
        self.texts, items = build_items()
        self.chosen = [i for t in args.tasks.split(",") for i in [i for i in items if i.task == t][: args.limit or None]]
        self.done = json.loads(args.json_out.read_text()) if args.json_out.exists() else {"rows": []}
        self.model, _ = _load(args.model, args.index_home)
        self._memories: dict[str, object] = {}

    def pending(self):  # type: ignore[no-untyped-def]
        """(item, document, passages shown, start time) for each question not yet measured."""
        seen = {row["key"] for row in self.done["rows"]}
        for item in self.chosen:
            if item.key in seen:
                continue
            started = time.perf_counter()
            document, memory = self.memory(item)
            yield item, document, shown_passages(self.model, document, memory, item.question), started

    def memory(self, item):  # type: ignore[no-untyped-def]
        """The document `item` is asked of, and its memory (built the first time)."""
        return memory_of(item.document, self.texts, self._memories, self.args.index_home)

    def keep(self, row: dict) -> None:  # type: ignore[type-arg]
        self.done["rows"].append(row)
        write_json_atomic(self.args.json_out, {**self.done, "model": self.args.model, "cpu": cpu_model()})


def answer_prompt(template, question: str, passages):  # type: ignore[no-untyped-def]
    """`template` (an answer prompt) for `question` over `passages`, numbered as they stand, as
    `ask` renders it; a template from before the reply language was named takes none."""
    from longdoc.tasks.ask import format_sources
    from longdoc.tasks.language import reply_language

    values = {"question": question, "sources": format_sources(passages, "text")}
    if "language" in template.variables:
        values["language"] = reply_language(question)
    return template.render(**values)


def probe_parser(name: str, doc: str | None, tasks: str):  # type: ignore[no-untyped-def]
    """The options the passage-ranking probes share; each adds its own."""
    parser = script_parser(name, doc)
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--tasks", default=tasks)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--index-home", type=Path, default=Path.home() / ".cache" / "longdoc-bench")
    parser.add_argument("--json-out", type=Path, required=True)
    parser.add_argument("--report", action="store_true", help="only print the ranks from --json-out")
    return parser


def _ask_options(settings: list[str]):  # type: ignore[no-untyped-def]
    """AskOptions with FIELD=VALUE overrides, each value read as its field's type."""
    from dataclasses import fields, replace

    from longdoc.tasks.ask import AskOptions

    types = {f.name: type(getattr(AskOptions(), f.name)) for f in fields(AskOptions)}
    pairs = [setting.split("=", 1) for setting in settings]
    def typed(name: str, value: str) -> object:
        return value.lower() in ("1", "true", "yes") if types[name] is bool else types[name](value)

    return replace(AskOptions(), **{name: typed(name, value) for name, value in pairs})


def _closest_option(text: str, options: dict[str, str]) -> str:
    words = _words(text)
    best = max(options, key=lambda k: len(words & _words(options[k]))) if options else "A"
    return f"({best})"


def _prepare_home(home: Path) -> None:
    """The index home, with longdoc's converted models linked in so nothing is converted twice."""
    home.mkdir(parents=True, exist_ok=True)
    models = Path(os.environ.get("LONGDOC_HOME", Path.home() / ".cache" / "longdoc")) / "models"
    link = home / "models"
    if models.is_dir() and not link.exists():
        link.symlink_to(models)


def _load(spec: str, home: Path, weights: str = "auto", mode: str = "retrieve"):  # type: ignore[no-untyped-def]
    import importlib

    from longdoc.engine.loading import load_model
    from longdoc.tasks.ask import ask, ask_by_reading

    def by_reading(document, memory, *rest):  # type: ignore[no-untyped-def]
        return ask_by_reading(document, *rest)  # the memory is not used: the scan reads the whole document

    # The engine's memory sizes `longdoc ask` uses, where the checkout has its own: in
    # engine/cache_config.py since 2026-12-04, engine/segment_cache.py before; the main of
    # 2026-12-02 has none (the default window).
    cache = None
    for name in ("longdoc.engine.cache_config", "longdoc.engine.segment_cache"):
        try:
            cache = importlib.import_module(name).answering_config()
            break
        except (ImportError, AttributeError):
            continue
    # Checkouts before the 4-bit decoding path take no `weights`.
    extra = {"weights": weights} if weights != "auto" else {}
    return load_model(spec, home, cache=cache, **extra), by_reading if mode == "read" else ask


def summarize(rows: list[dict]) -> dict:  # type: ignore[type-arg]
    by_task: dict[str, dict] = {}  # type: ignore[type-arg]
    for task in TASKS + EXTRA_TASKS:
        mine = [r for r in rows if r["task"] == task]
        if mine:
            by_task[task] = {"n": len(mine), "accuracy": round(sum(r["ok"] for r in mine) / len(mine), 3),
                             "refused": round(sum(r["refused"] for r in mine) / len(mine), 3),
                             "seconds_per_question": round(sum(r["seconds"] for r in mine) / len(mine), 1)}
    return by_task


def _save(args: argparse.Namespace, done: dict) -> None:  # type: ignore[type-arg]
    done.update(model="search-only" if args.search_only else args.model, root=str(args.root), cpu=cpu_model(),
                options=args.set, weights=args.weights, mode=args.mode)
    write_json_atomic(args.json_out, done)



if __name__ == "__main__":
    main()
