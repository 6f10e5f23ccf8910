"""Time to summarize a ~20K-token document: writing prompts batched (8 per call) vs one prompt per call.

    python -m bench.summarize_speed --model qwen2.5-0.5b --tokens 20000 [--text FILE]

Both runs use the same model, document and prompts, each with an empty result cache of its own,
in this one process (the model is loaded once, before timing). The document is the first
--tokens model tokens of samples/lighthouse.txt unless --text names another file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, script_parser
from longdoc.document import Document, Page
from longdoc.engine.loading import load_model
from longdoc.memory.store import default_home
from longdoc.tasks.results import ResultCache
from longdoc.tasks.summarize import SummaryOptions, summarize


def _document(model, path: Path, tokens: int) -> Document:  # type: ignore[no-untyped-def]
    ids = model.tokenizer.encode(path.read_text(encoding="utf-8"), add_special_tokens=False)[:tokens]
    return Document(source=path.name, pages=(Page(1, model.tokenizer.decode(ids)),))


def main() -> None:
    parser = script_parser("bench.summarize_speed", __doc__)
    parser.add_argument("--model", default="qwen2.5-0.5b")
    parser.add_argument("--tokens", type=int, default=20000)
    parser.add_argument("--text", type=Path, default=ROOT / "samples" / "lighthouse.txt")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    model = load_model(args.model, default_home())
    document = _document(model, args.text, args.tokens)
    report: dict[str, object] = {"model": args.model, "tokens": model.count_tokens(document.text), "cpus": os.cpu_count()}
    for label, batch in (("batched", 8), ("unbatched", 1)):
        with tempfile.TemporaryDirectory() as scratch:
            started = time.perf_counter()
            result = summarize(document, model, ResultCache(Path(scratch)), SummaryOptions(batch_size=batch))
            seconds = time.perf_counter() - started
        report[label] = {"seconds": round(seconds, 1), "chunks": result.chunks, "levels": [len(l) for l in result.levels],
                         "load": os.getloadavg()[0], "words": len(result.text.split())}
        print(label, json.dumps(report[label]), flush=True)
    report["speedup"] = round(report["unbatched"]["seconds"] / report["batched"]["seconds"], 2)  # type: ignore[index]
    print(json.dumps(report))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
