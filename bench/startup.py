"""How long the commands that need no language model take from the shell: `--help`, `chunk`, and
`search` on an indexed ~400K-token document, for this checkout and another (the current main).

    python -m bench.startup --baseline /tmp/longdoc-main [--runs 7] [--json-out FILE]

Each command runs --runs times in a fresh process (`python -c` importing longdoc from the checkout
named), alternating between the two checkouts so that both see the same machine load; the median
is reported, with the ratio baseline / this. The document is a fixed pseudo-random text of English
words (no model needed to make it); it has none of the commonest English words, so longdoc does not
take it for English prose and indexes it with multilingual-e5 (minutes, once). Its index is built
once per checkout before timing, so every timed search is a cached one. Both checkouts share one index (same chunks, same embedder id), kept in
--home when given, so a second run of the bench indexes nothing.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, cpu_model, script_parser

WORDS = ("harbour lamp keeper ledger tide storm beacon cliff rope signal fog vessel cargo pier lantern "
         "survey budget council report winter repair supply engine chart record").split()


def make_document(path: Path, tokens: int = 400_000) -> None:
    """Sentences of common words with numbered facts, about `tokens` cl100k tokens in all."""
    rng = random.Random(7)
    sentences = []
    for n in range(tokens // 12):
        words = " ".join(rng.choice(WORDS) for _ in range(9))
        sentences.append(f"{words.capitalize()} number {n}.")
    text = "\n\n".join(" ".join(sentences[i : i + 8]) for i in range(0, len(sentences), 8))
    path.write_text(text + "\n\nThe spare key to the lamp room hangs behind the chart cabinet.\n", encoding="utf-8")


def command(root: Path, *args: str) -> list[str]:
    """`longdoc ARGS` with longdoc imported from `root`."""
    # Deliberately the checkout at `root` (this one or the baseline), ahead of any installed longdoc.
    program = f"import sys; sys.path.insert(0, {str(root)!r}); sys.argv = ['longdoc', *sys.argv[1:]]; from longdoc.cli import main; main()"
    return [sys.executable, "-c", program, *args]


def timed(argv: list[str], environment: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=environment, capture_output=True, check=True)
    return time.perf_counter() - started


def revision(root: Path) -> str:
    """The checkout's commit, marked dirty when it has uncommitted changes."""
    done = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = script_parser("bench.startup", __doc__)
    parser.add_argument("--baseline", type=Path, required=True, help="another longdoc checkout (e.g. main in a git worktree)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--home", type=Path, help="longdoc home for the index (default: a temporary one)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    roots = {"this": ROOT, "baseline": args.baseline.resolve()}
    # Another job on the machine slows multi-threaded code most (see bench/README.md, Start-up).
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        document = Path(scratch) / "long.txt"
        make_document(document)
        home = args.home or Path(scratch) / "home"
        environment = {name: {**os.environ, "LONGDOC_HOME": str(home)} for name in roots}
        cases = {
            "--help": ("--help",),
            "chunk (400K tokens)": ("chunk", str(document), "--json"),
            "search, cached index (400K tokens)": ("search", str(document), "where is the spare key", "-k", "3"),
        }
        for name, root in roots.items():
            print(f"indexing with {name}...", file=sys.stderr, flush=True)
            subprocess.run(command(root, *cases["search, cached index (400K tokens)"]), env=environment[name], capture_output=True, check=True)
        rows = []
        for case, case_args in cases.items():
            times: dict[str, list[float]] = {name: [] for name in roots}
            for _ in range(args.runs):
                for name, root in roots.items():
                    times[name].append(timed(command(root, *case_args), environment[name]))
            this, baseline = (statistics.median(times[name]) for name in ("this", "baseline"))
            rows.append({"case": case, "this_s": round(this, 2), "baseline_s": round(baseline, 2),
                         "speedup": round(baseline / this, 2), "runs": args.runs})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| command | this checkout, median s | baseline, median s | baseline / this |\n|---|---|---|---|")
    for row in rows:
        print(f"| `{row['case']}` | {row['this_s']} | {row['baseline_s']} | {row['speedup']}x |")
    if args.json_out:
        record = {
            "cpu": cpu_model(),
            "date": time.strftime("%Y-%m-%d"),
            "baseline": str(args.baseline),
            "revisions": {name: revision(root) for name, root in roots.items()},
            "load_average_1min": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
            "rows": rows,
        }
        args.json_out.write_text(json.dumps(record, indent=1))



if __name__ == "__main__":
    main()
