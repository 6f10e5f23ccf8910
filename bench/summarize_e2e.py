"""`longdoc summarize` end to end, as a user runs it: wall seconds, peak memory, the summary.

    python -m bench.summarize_e2e --arm main=/tmp/main_wt:auto --arm new=.:auto --arm int8=.:int8 \
        [--tokens 20000] [--rounds 2] [--json-out FILE]

Each arm is LABEL=CHECKOUT:WEIGHTS: a checkout (this one, or the current main in a git worktree)
and the `weights` setting its run gets through a longdoc.toml of its own. Arms alternate within
each round, so a machine that slows down slows every arm alike. Every run starts a fresh process
with an empty result cache (a LONGDOC_HOME of its own whose models/ links to the shared model
cache: nothing is prepared again), so import, model load, reading and writing are all counted.
The document is the first --tokens model tokens of samples/lighthouse.txt unless --text names
another file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import ROOT, script_parser


@dataclass(frozen=True)
class Arm:
    label: str
    checkout: Path
    weights: str


def parse_arm(text: str) -> Arm:
    label, _, rest = text.partition("=")
    checkout, _, weights = rest.rpartition(":")
    if not (label and checkout and weights):
        raise SystemExit(f"--arm {text!r}: expected LABEL=CHECKOUT:WEIGHTS")
    return Arm(label, Path(checkout).resolve(), weights)


def first_tokens(path: Path, tokens: int, models: Path) -> str:
    """The text of the first `tokens` tokens of `path`, cut where the default model's tokenizer says."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(models / "qwen2.5-1.5b" / "tokenizer.json"))
    text = path.read_text(encoding="utf-8")
    encoding = tokenizer.encode(text)
    if len(encoding.ids) <= tokens:
        return text
    return text[: encoding.offsets[tokens][0]]


def run_once(arm: Arm, document: Path, models: Path, scratch: Path) -> dict[str, object]:
    """One `longdoc summarize` of `document` in a fresh process; seconds, peak RSS and the summary."""
    home = scratch / f"home-{arm.label}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "models").symlink_to(models, target_is_directory=True)
    (home / "longdoc.toml").write_text(f'weights = "{arm.weights}"\n', encoding="utf-8")
    env = {**os.environ, "LONGDOC_HOME": str(home), "LONGDOC_CONFIG": str(home / "longdoc.toml")}
    out_path, err_path = scratch / f"{arm.label}.out", scratch / f"{arm.label}.err"
    started = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "longdoc", "summarize", str(document)],
            cwd=arm.checkout, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
        )
        # wait4, not wait: it hands back this child's own peak memory.
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{arm.label}: exit {code}: {err_path.read_text(errors='replace')[-400:]}")
    summary = out_path.read_text(encoding="utf-8")
    return {
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(usage.ru_maxrss / 1e6, 2),  # Linux: KiB
        "summary_sha1": hashlib.sha1(summary.encode()).hexdigest()[:12],
        "summary": summary,
    }


def main() -> None:
    parser = script_parser("bench.summarize_e2e", __doc__)
    parser.add_argument("--arm", action="append", type=parse_arm, required=True, help="LABEL=CHECKOUT:WEIGHTS")
    parser.add_argument("--tokens", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--text", type=Path, default=ROOT / "samples" / "lighthouse.txt")
    parser.add_argument("--models", type=Path, help="the shared model cache (default: $LONGDOC_HOME/models)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    from longdoc.memory.store import default_home

    models = (args.models or default_home() / "models").resolve()
    scratch = Path(tempfile.mkdtemp(prefix="longdoc-e2e-"))
    document = scratch / "document.txt"
    document.write_text(first_tokens(args.text, args.tokens, models), encoding="utf-8")
    runs: dict[str, list[dict[str, object]]] = {arm.label: [] for arm in args.arm}
    for round_number in range(args.rounds):
        for arm in args.arm:
            result = run_once(arm, document, models, scratch)
            runs[arm.label].append(result)
            print(f"round {round_number + 1} {arm.label}: {result['seconds']} s, {result['peak_rss_gb']} GB, "
                  f"summary {result['summary_sha1']}", flush=True)
    report = {
        "document": f"first {args.tokens} tokens of {args.text.name}",
        "arms": {arm.label: {"checkout": str(arm.checkout), "weights": arm.weights} for arm in args.arm},
        "seconds": {label: [r["seconds"] for r in results] for label, results in runs.items()},
        "peak_rss_gb": {label: [r["peak_rss_gb"] for r in results] for label, results in runs.items()},
        "summaries": {label: sorted({str(r["summary_sha1"]) for r in results}) for label, results in runs.items()},
        "runs": runs,
    }
    text = json.dumps(report, indent=1, ensure_ascii=False)
    if args.json_out:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("seconds", "peak_rss_gb", "summaries")}, indent=1))
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
