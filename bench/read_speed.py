"""Read mode's scan against the engine's plain read: tokens/s and peak memory, same text, same run.

    python -m bench.read_speed --essays DIR [--model qwen2.5-1.5b] [--lengths 32768,131072]
        [--methods engine,scan] --json-out F

engine: `SegmentReader.read` of the text's tokens with the default memory (64 sinks + 1,536
window, 512-token segments), all layers: what any long prompt costs. scan: `tasks.scan.scan` over
the text's 300-token passages as `ask --mode read` cuts them (windows of 2,048 tokens, the question
around each, layers up to half the depth). Each (method, length) runs in a fresh process; peak is
VmHWM during the read minus the RSS before it (weights excluded).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.harness import Row, essays_dir, log, measured, run_header, run_module, script_parser, text_of, write_json_atomic

QUESTION = "What is the combination of the observatory safe on Harrow Hill?"


def case(method: str, model_spec: str, tokens: int, essays: str) -> Row:
    """One measurement in this process."""
    import torch

    from bench.harness import cut_to_tokens, load_local
    from longdoc.chunking import ChunkConfig, chunk_document
    from longdoc.document import Document, Page
    from longdoc.tasks.ask import format_sources, _source, _Span
    from longdoc.tasks.results import ResultCache
    from longdoc.tasks.scan import scan

    model, _ = load_local(model_spec)
    text = cut_to_tokens(model.tokenizer, text_of(Path(essays)), tokens)
    row: Row = {"method": method, "model": model_spec, "tokens": tokens, "threads": torch.get_num_threads()}
    if method == "engine":
        ids = torch.tensor([model.tokenizer.encode(text, add_special_tokens=False)])
        with measured(row):
            model.reader.read(model.reader.new_cache(), ids)
    else:
        document = Document(source="essays.txt", pages=(Page(1, text),), kind="text")
        chunks = chunk_document(document, ChunkConfig(size=300, overlap=0), counter=model.count_tokens)
        passages = [format_sources([_source(document, n, _Span(c.start, c.end, 0.0, [c.index], c.tokens))], "text")
                    for n, c in enumerate(chunks, 1)]
        with tempfile.TemporaryDirectory() as scratch, measured(row):
            scan(QUESTION, passages, model, ResultCache(Path(scratch)))
    row["tokens_per_s"] = round(tokens / row["seconds"], 1)
    return row


def main() -> None:
    parser = script_parser("bench.read_speed", __doc__)
    parser.add_argument("--essays")
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--lengths", default="32768,131072")
    parser.add_argument("--methods", default="engine,scan")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json-out", type=Path, required=True)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one measurement, in the process run_module starts
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(*json.loads(args.case))))
        return
    essays = str(essays_dir(args.essays))
    payload: Row = {**run_header("read_speed", args), "rows": []}
    for tokens in (int(x) for x in args.lengths.split(",")):
        for method in args.methods.split(","):
            try:
                row = run_module(["bench.read_speed", "--json-out", "-", "--case",
                                  json.dumps([method, args.model, tokens, essays])], args.timeout)
            except Exception as failed:  # a case that runs out of time or memory fails alone
                row = {"method": method, "tokens": tokens, "error": str(failed)}
            payload["rows"].append(row)
            log(json.dumps(row))
            write_json_atomic(args.json_out, payload)
    print(json.dumps(payload["rows"], indent=1), file=sys.stdout)


if __name__ == "__main__":
    main()
