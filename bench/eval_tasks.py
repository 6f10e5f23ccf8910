"""Quality of summarize / ask / translate on the development split in ../shared/eval/.

    python -m bench.eval_tasks --model qwen2.5-0.5b --tasks summarize,nq,quality,translate \
        --limit 3 --json-out /tmp/eval_0.5b.json

Runs the library functions the CLI commands call (same prompts, budgets, caches), one model per
run, and prints one line per task:
  summarize  ROUGE-L F1 (rouge-score, stemmed) of the summary vs the reference, leval/gov_report_summ
             (shortest reports first)
  nq         answer contains a reference answer (normalised), leval/natural_question (its HTML pages
             turned into text by longdoc's HTML reader, as `longdoc ask page.html` would)
             --ask-mode read: the model reads each whole document instead (`longdoc ask --mode read`)
  quality    multiple-choice accuracy (the option letter the answer names, else the option whose
             words it shares most), leval/quality
  translate  chrF and BLEU (sacrebleu) of zh->en on the first --lines lines of ntrex, one paragraph
             per line, against ntrex/dev.en; --reverse adds en->zh (BLEU with the zh tokenizer)
Needs `pip install rouge-score sacrebleu` (bench only, not a dependency of longdoc).
"""

from __future__ import annotations

import json
import re
import string
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import EVAL, leval_rows, script_parser
from longdoc.document import Document, Page
from longdoc.engine.cache_config import reading_config
from longdoc.engine.loading import load_model
from longdoc.ingest.html import html_to_text
from longdoc.memory.embedder import SentenceTransformerEmbedder
from longdoc.memory.index import open_memory
from longdoc.memory.store import default_home
from longdoc.tasks.ask import Answer, ask, ask_by_reading
from longdoc.tasks.results import ResultCache
from longdoc.tasks.summarize import SummaryOptions, summarize
from longdoc.tasks.translate import TranslateOptions, translate


def _document(text: str, source: str) -> Document:
    return Document(source=source, pages=(Page(1, text),))


Summarizer = Callable[[Document], str]


def eval_summarize(model, results: ResultCache, limit: int, summarizer: Summarizer | None = None) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """ROUGE-L of longdoc's summaries, or of `summarizer`'s (a baseline) when given."""
    from rouge_score import rouge_scorer

    if summarizer is None:
        summarizer = lambda document: summarize(document, model, results, SummaryOptions(words=300)).text  # noqa: E731

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores, seconds = [], []
    rows = sorted(leval_rows("gov_report_summ"), key=lambda row: len(row["input"]))  # --limit takes the shortest
    for n, row in enumerate(rows[:limit]):
        started = time.perf_counter()
        summary = summarizer(_document(row["input"], f"gov{n}"))
        seconds.append(time.perf_counter() - started)
        score = scorer.score(row["outputs"][0], summary)["rougeL"].fmeasure
        scores.append(score)
        print(f"  summarize gov{n}: ROUGE-L {score:.3f}, {len(summary.split())} words, {seconds[-1]:.0f}s", flush=True)
    return {"rougeL": _mean(scores), "n": len(scores), "seconds": seconds}


def _normalise(text: str) -> str:
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


Answerer = Callable[[Document, str], Answer]


def answerer(mode: str, model, results: ResultCache, embedder, home: Path | None = None) -> Answerer:  # type: ignore[no-untyped-def]
    """How `longdoc ask --mode MODE` answers: retrieval from the document's index (kept under
    `home`, default longdoc's), or reading it all."""
    if mode == "read":
        return lambda document, question: ask_by_reading(document, question, model, results)

    def retrieve(document: Document, question: str) -> Answer:
        memory, _ = open_memory(document, embedder, home=home or default_home())
        return ask(document, memory, question, model, results)

    return retrieve


def eval_nq(answer_with: Answerer, limit: int) -> dict:  # type: ignore[type-arg]
    hits, total = 0, 0
    for n, row in enumerate(leval_rows("natural_question")):
        # The pages are Wikipedia HTML; a user would save them as .html, which ingest turns into text.
        document = _document(html_to_text(row["input"]), f"nq{n}")
        for question, reference in zip(row["instructions"], row["outputs"]):
            if total >= limit:
                return {"accuracy": hits / max(total, 1), "n": total}
            answer = answer_with(document, question)
            ok = _normalise(reference) in _normalise(answer.text)
            hits, total = hits + ok, total + 1
            print(f"  nq: {'OK ' if ok else 'no '} {question!r} -> {answer.text[:100]!r} (ref {reference!r})", flush=True)
    return {"accuracy": hits / max(total, 1), "n": total}


def _chosen_option(answer: str, question: str) -> str | None:
    letter = re.search(r"\(([A-D])\)|\b([A-D])\)|^([A-D])\b", answer.strip())
    if letter:
        return next(g for g in letter.groups() if g)
    options = dict(re.findall(r"\(([A-D])\)\s*(.+)", question))
    words = set(_normalise(answer).split())
    overlap = {k: len(words & set(_normalise(v).split())) for k, v in options.items()}
    return max(overlap, key=overlap.get) if overlap and max(overlap.values()) > 0 else None  # type: ignore[arg-type]


def eval_quality(answer_with: Answerer, limit: int) -> dict:  # type: ignore[type-arg]
    hits, total = 0, 0
    for n, row in enumerate(leval_rows("quality")):
        document = _document(row["input"], f"quality{n}")
        for question, reference in zip(row["instructions"], row["outputs"]):
            if total >= limit:
                return {"accuracy": hits / max(total, 1), "n": total}
            answer = answer_with(document, question.strip() + "\nName the letter of the right option.")
            expected = re.search(r"\(([A-D])\)", reference).group(1)  # type: ignore[union-attr]
            chosen = _chosen_option(answer.text, question)
            hits, total = hits + (chosen == expected), total + 1
            print(f"  quality: chose {chosen} expected {expected}: {answer.text[:80]!r}", flush=True)
    return {"accuracy": hits / max(total, 1), "n": total}


def _translate_lines(model, results: ResultCache, lines: list[str], source: str, target: str) -> list[str]:  # type: ignore[no-untyped-def]
    document = _document("\n".join(lines), f"ntrex-{source}")
    return [p.text for p in translate(document, model, results, TranslateOptions(source=source, target=target))]


Translator = Callable[[list[str], str, str], list[str]]


def eval_translate(model, results: ResultCache, lines: int, reverse: bool, translator: Translator | None = None) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """chrF/BLEU of longdoc's translations, or of `translator(lines, source, target)`'s (a baseline)."""
    import sacrebleu

    if translator is None:
        translator = lambda lines_, source, target: _translate_lines(model, results, lines_, source, target)  # noqa: E731

    zh = (EVAL / "ntrex" / "dev.zh").read_text(encoding="utf-8").splitlines()[:lines]
    en = (EVAL / "ntrex" / "dev.en").read_text(encoding="utf-8").splitlines()[:lines]
    started = time.perf_counter()
    hypotheses = translator(zh, "zh", "en")
    assert len(hypotheses) == len(en), f"{len(hypotheses)} paragraphs out for {len(en)} in"
    report = {
        "zh-en": {
            "chrF": sacrebleu.corpus_chrf(hypotheses, [en]).score,
            "BLEU": sacrebleu.corpus_bleu(hypotheses, [en]).score,
            "lines": len(en),
            "seconds": time.perf_counter() - started,
        }
    }
    if reverse:
        started = time.perf_counter()
        back = translator(en, "en", "zh")
        report["en-zh"] = {
            "chrF": sacrebleu.corpus_chrf(back, [zh]).score,
            "BLEU": sacrebleu.corpus_bleu(back, [zh], tokenize="zh").score,
            "lines": len(zh),
            "seconds": time.perf_counter() - started,
        }
    return report


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def main() -> None:
    parser = script_parser("bench.eval_tasks", __doc__)
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--tasks", default="summarize,nq,quality,translate")
    parser.add_argument("--limit", type=int, default=5, help="documents (summarize) or questions (nq, quality)")
    parser.add_argument("--lines", type=int, default=40, help="ntrex lines to translate")
    parser.add_argument("--reverse", action="store_true", help="also translate en->zh")
    parser.add_argument("--ask-mode", choices=("retrieve", "read"), default="retrieve", help="as `longdoc ask --mode`")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    # Read mode reads with block memory, as `longdoc ask --mode read` does.
    model = load_model(args.model, default_home(), cache=reading_config() if args.ask_mode == "read" else None)
    results = ResultCache(default_home())
    answer_with = answerer(args.ask_mode, model, results, SentenceTransformerEmbedder(None))
    report: dict[str, object] = {"model": args.model, "limit": args.limit, "ask_mode": args.ask_mode}
    for task in args.tasks.split(","):
        started = time.perf_counter()
        if task == "summarize":
            report[task] = eval_summarize(model, results, args.limit)
        elif task == "nq":
            report[task] = eval_nq(answer_with, args.limit)
        elif task == "quality":
            report[task] = eval_quality(answer_with, args.limit)
        elif task == "translate":
            report[task] = eval_translate(model, results, args.lines, args.reverse)
        else:
            raise SystemExit(f"unknown task {task}")
        print(f"{args.model} {task}: {json.dumps(report[task])} ({time.perf_counter() - started:.0f}s)", flush=True)
        if args.json_out:
            args.json_out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
