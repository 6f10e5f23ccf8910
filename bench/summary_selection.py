"""What `summarize` chooses before any model writes: the key facts picked from every part, per
chunk size, in seconds and without a model.

    python -m bench.summary_selection [--chunks 200,400,800,1600] [--seeds 1,2,3] [--length 250]

`summarize --style bullets` lists the chosen facts as the document states them, so with a model
that writes nothing (the opening left empty) the summary is the selection itself. Scored like
bench/summary_facts.py: planted facts kept (reports of 8, 12 and 24 sections, English and Chinese,
each seed) and, on gov_report, ROUGE-L and fact recall beside the lead baseline (the first
--length words). This is how the chunk size (`SummaryOptions.chunk_tokens`) was chosen: the chunk
is the unit whose statistics say which figures and phrases are rare.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.harness import script_parser
from bench.planted_reports import make_report
from bench.summary_facts import fact_recall, facts_kept, gov_cases, lead, rouge_l
from longdoc.document import Document, Page
from longdoc.model.protocol import GenerationOptions, Prompt
from longdoc.tasks.results import ResultCache
from longdoc.tasks.summarize import SummaryOptions, summarize


class SilentModel:
    """A `Model` that writes nothing: the summary is then the chosen facts alone."""

    name = "silent"
    context_window = 100_000

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, prompts: list[Prompt], options: GenerationOptions | None = None) -> list[str]:
        return ["" for _ in prompts]


def chosen(text: str, chunk_tokens: int, words: int, scratch: Path) -> str:
    document = Document(source="bench", pages=(Page(1, text),))
    options = SummaryOptions(words=words, style="bullets", chunk_tokens=chunk_tokens)
    return summarize(document, SilentModel(), ResultCache(scratch), options).text


def main() -> None:
    parser = script_parser("bench.summary_selection", __doc__)
    parser.add_argument("--chunks", default="200,400,800,1600", help="chunk sizes in tokens")
    parser.add_argument("--seeds", default="1,2,3", help="planted report seeds")
    parser.add_argument("--length", type=int, default=250)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    gov = gov_cases(5)
    print(f"| chunk tokens | planted facts kept | gov ROUGE-L | gov fact recall |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for size in (int(c) for c in args.chunks.split(",")):
            kept = total = 0
            for lang in ("en", "zh"):
                for sections in (8, 12, 24):
                    for seed in seeds:
                        report = make_report(sections, lang, seed)
                        flags = facts_kept(chosen(report.text, size, args.length, Path(scratch)), report)
                        kept, total = kept + sum(flags), total + len(flags)
            summaries = [chosen(case.text, size, args.length, Path(scratch)) for case in gov]
            rouge = sum(rouge_l(s, c.reference or "") for s, c in zip(summaries, gov)) / len(gov)
            recall = sum(fact_recall(s, c.reference or "") for s, c in zip(summaries, gov)) / len(gov)
            print(f"| {size} | {kept}/{total} ({100 * kept / total:.0f}%) | {rouge:.3f} | {recall:.2f} |", flush=True)
    leads = [lead(case.text, args.length) for case in gov]
    print(f"| lead {args.length} words | | {sum(rouge_l(s, c.reference or '') for s, c in zip(leads, gov)) / len(gov):.3f} "
          f"| {sum(fact_recall(s, c.reference or '') for s, c in zip(leads, gov)) / len(gov):.2f} |")


if __name__ == "__main__":
    main()
