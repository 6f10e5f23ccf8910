"""DIR/results/*.json -> DIR/REPORT.md and DIR/plots/*.png. Every figure comes from the JSON.

Imports no torch and no longdoc, so `python -m bench report DIR` is quick and testable; without
matplotlib the report is still written, saying the plots need it.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from bench.harness import Row, load_results, ratio, tokens_label
from bench.quality import FULL as FULL_SIZES

# Cell states of a heat map; GIVEN = missed although retrieval handed the model the needle's passage.
FOUND, GIVEN, MISSED, NOT_RUN = 3, 2, 1, 0
LABELS = {FOUND: "found", GIVEN: "passage given,\nnot answered", MISSED: "missed", NOT_RUN: "not run"}
COLOURS = ["#c8c8c8", "#d9534f", "#f0ad4e", "#5cb85c"]  # by state value: grey, red, orange, green
RECALL_BASELINE = "full attention"
REGENERATE = "python -m bench report {out}"


# -- data ----------------------------------------------------------------------------------------


def recall_grid(rows: list[Row], method: str) -> tuple[list[int], list[float], list[list[int]]]:
    """Lengths (columns), depths (rows) and a depth x length grid of cell states for `method`."""
    mine = [row for row in rows if row["method"] == method]
    lengths = sorted({row["tokens"] for row in rows})
    depths = sorted({row["depth"] for row in rows})
    grid = [[NOT_RUN] * len(lengths) for _ in depths]
    for row in mine:
        if "not_run" not in row:
            state = FOUND if row["found"] else GIVEN if row.get("retrieved") else MISSED
            grid[depths.index(row["depth"])][lengths.index(row["tokens"])] = state
    return lengths, depths, grid


def not_run_reasons(rows: list[Row], key: str) -> dict[str, dict[str, list[int]]]:
    """For each value of `key` (a method), each reason a cell was not run -> the lengths it covers."""
    reasons: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if "not_run" in row and row["tokens"] not in reasons[row[key]][row["not_run"]]:
            reasons[row[key]][row["not_run"]].append(row["tokens"])
    return reasons


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


# -- report --------------------------------------------------------------------------------------


def write_report(out: Path) -> Path:
    """Write out/REPORT.md (and out/plots/) from out/results/*.json; returns the report's path."""
    results = load_results(out)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    lines = _header(results, out)
    if "recall" in results:
        lines += _recall_section(results["recall"], plots)
    if "quality" in results:
        lines += _quality_section(results["quality"])
    if "speed" in results:
        lines += _speed_section(results["speed"], plots)
    path = out / "REPORT.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


def _header(results: dict[str, Row], out: Path) -> list[str]:
    suites = [results[name] for name in ("recall", "quality", "speed") if name in results]
    lines = ["# longdoc benchmarks", ""]
    if not suites:
        return lines + ["No results yet: run `python -m bench all --quick --out DIR`."]
    machine = suites[0]["machine"]
    gpu = machine["gpu"] or "none"
    lines += [
        "Generated from the JSON under `results/` beside this file. Every figure below was measured in",
        "the run that wrote it; ratios divide by a baseline measured in the same run.",
        "",
        "| suite | run at | command | sizes |",
        "|---|---|---|---|",
        *(f"| {s['suite']} | {s['started']} | `{s['command']}` | {'--quick' if s['quick'] else 'full'} |" for s in suites),
        "",
        f"Rewrite this page from the saved results: `{REGENERATE.format(out=out.as_posix())}`.",
        "",
        "## Machine",
        "",
        "| cores | CPU | RAM | GPU | device, dtype | torch | load average at start |",
        "|---|---|---|---|---|---|---|",
        f"| {machine['cores']} | {machine['cpu']} | {machine['ram_gb']} GB | {gpu} | {machine['device']}, "
        f"{machine['dtype']} | {machine['torch']} | {machine['load_average']:.2f} |",
        "",
        *[f"- {note}" for note in results.get("notes", {}).get("lines", [])],
        "",
    ]
    return lines


# -- recall --------------------------------------------------------------------------------------


def _recall_section(recall: Row, plots: Path) -> list[str]:
    rows, methods = recall["rows"], recall["methods"]
    lengths = sorted({row["tokens"] for row in rows})
    base = RECALL_BASELINE
    lines = [
        "## Long-context recall (needle in a haystack)",
        "",
        f"Model `{recall['model']}`. Haystack: Paul Graham essays cut to N model tokens; needle: "
        f"\"{recall['needle']}\" at depths {', '.join(f'{d:.0%}' for d in recall['depths'])}; question: "
        f"\"{recall['question']}\". Found = the answer contains the combination. Each cell: found / run.",
        "",
        "| method | " + " | ".join(tokens_label(n) for n in lengths)
        + f" | found | s a cell | on the cells {base} ran: found | s a cell | found / {base} | s / {base} |",
        "|---|" + "---|" * (len(lengths) + 6),
    ]
    base_cells = _cells(rows, base)
    for method, label in methods.items():
        cells = _cells(rows, method)
        counts = []
        for n in lengths:
            ran = [row for (tokens, _), row in cells.items() if tokens == n]
            counts.append(f"{sum(r['found'] for r in ran)}/{len(ran)}" if ran else "not run")
        shared = [cell for cell in cells if cell in base_cells]
        rate, seconds = _found_and_seconds([cells[c] for c in shared])
        base_rate, base_seconds = _found_and_seconds([base_cells[c] for c in shared])
        lines.append(f"| {method} ({label}) | " + " | ".join(counts)
                     + " | {} | {} | ".format(*_fmt(*_found_and_seconds(list(cells.values()))))
                     + "{} | {} | ".format(*_fmt(rate, seconds))
                     + f"{ratio(rate, base_rate)} | {ratio(seconds, base_seconds)} |")
    lines += ["", "Seconds a cell: reading the prompt and answering (retrieval: indexing, search and answering), "
              f"mean over the cells. The last four columns compare like with like: only the (length, depth) cells "
              f"{base} also ran.", ""]
    for method in methods:
        image = _plot_heatmap(rows, method, plots)
        lines += [f"![{method}](plots/{image})" if image else f"(heat map of {method}: needs matplotlib)"]
    lines += ["", "**What it shows.**", ""]
    for method in methods:
        ran = list(_cells(rows, method).values())
        if ran:
            longest = max(r["tokens"] for r in ran)
            retrieved = [r for r in ran if "retrieved" in r]
            lines.append(f"- {method}: found the needle in {sum(r['found'] for r in ran)} of {len(ran)} cells run, "
                         f"up to {tokens_label(longest)} tokens."
                         + (f" The search put the needle's passage before the model in {sum(r['retrieved'] for r in retrieved)} "
                            f"of {len(retrieved)}: a miss with the passage given is the model's, not the search's."
                            if retrieved else ""))
    lines += ["", "**Not run, and why.**", "", *_reasons(not_run_reasons(rows, "method")), ""]
    return lines


def _cells(rows: list[Row], method: str) -> dict[tuple[int, float], Row]:
    """The cells `method` ran, by (length, depth)."""
    return {(r["tokens"], r["depth"]): r for r in rows if r["method"] == method and "not_run" not in r}


def _found_and_seconds(cells: list[Row]) -> tuple[float | None, float | None]:
    """Share of `cells` that found the needle, and their mean seconds."""
    if not cells:
        return None, None
    return sum(c["found"] for c in cells) / len(cells), _mean([c["seconds"] for c in cells])


def _fmt(rate: float | None, seconds: float | None) -> tuple[str, str]:
    return _percent(rate), _seconds(seconds)


def _plot_heatmap(rows: list[Row], method: str, plots: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
    except ImportError:
        return None
    lengths, depths, grid = recall_grid(rows, method)
    figure, axes = plt.subplots(figsize=(1.1 * len(lengths) + 2.2, 0.5 * len(depths) + 1.6))
    axes.imshow(grid, cmap=ListedColormap(COLOURS), vmin=0, vmax=len(COLOURS) - 1, aspect="auto")
    for y, line in enumerate(grid):
        for x, cell in enumerate(line):
            axes.text(x, y, LABELS[cell], ha="center", va="center", fontsize=7)
    axes.set_xticks([x - 0.5 for x in range(1, len(lengths))], minor=True)
    axes.set_yticks([y - 0.5 for y in range(1, len(depths))], minor=True)
    axes.grid(which="minor", color="white", linewidth=2)
    axes.tick_params(which="minor", length=0)
    axes.set_xticks(range(len(lengths)), [tokens_label(n) for n in lengths])
    axes.set_yticks(range(len(depths)), [f"{d:.0%}" for d in depths])
    axes.set_xlabel("haystack length (model tokens)")
    axes.set_ylabel("needle depth")
    axes.set_title(f"recall: {method}")
    figure.tight_layout()
    name = f"recall_{method.replace(' ', '_').replace('+', '_')}.png"
    figure.savefig(plots / name, dpi=100)
    plt.close(figure)
    return name


# -- quality -------------------------------------------------------------------------------------


def _quality_section(quality: Row) -> list[str]:
    rows = quality["rows"]
    lines = [
        "## Quality (development split, ../shared/eval/)",
        "",
        f"Sizes: {', '.join(f'{k} {v}' for k, v in quality['sizes'].items())} (questions, reports or lines). "
        "Each metric beside a baseline measured in the same run; small samples, so one answer more or less "
        "right moves accuracy by 1/n.",
        "",
        "| model | task | metric | n | longdoc | baseline | baseline value | longdoc / baseline | seconds | baseline seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['task']} | {r['metric']} | {r['n']} | {r['value']:.3f} | {r['baseline']} | "
                     f"{r['baseline_value']:.3f} | {ratio(r['value'], r['baseline_value'])} | {r['seconds']} | "
                     f"{r.get('baseline_seconds', '-')} |")
    better = [r for r in rows if r["value"] > r["baseline_value"]]
    lines += ["", "**What it shows.**", "",
              f"- longdoc beat its baseline on {len(better)} of {len(rows)} metrics: "
              + (", ".join(f"{r['model']} {r['task']} {r['metric']}" for r in better) or "none") + ".",
              f"- Not run: {'the full sizes' if quality['quick'] else 'nothing'}"
              + (f" ({', '.join(f'{k} {v}' for k, v in FULL_SIZES.items())}, for each preset: "
                 "`python -m bench quality --out DIR`), left for a GPU or a long CPU run." if quality["quick"] else "."),
              ""]
    return lines


# -- speed ---------------------------------------------------------------------------------------


def _speed_section(speed: Row, plots: Path) -> list[str]:
    rows = speed["rows"]
    lines = [
        "## Speed and peak memory",
        "",
        f"Model `{speed['model']}`. Seconds = the task from a loaded model to its output (fresh result cache and "
        "index, fresh process per case). Peak = the process's peak RSS during the task, model weights included; "
        "task MB = that peak minus the RSS with the model loaded, the memory the task itself needed (what grows "
        "with the document), and the memory ratio is of task MB. Ratios divide by the baseline named in the "
        f"column, measured at the same size. Summaries: {speed.get('summary_words', '?')} words asked of every "
        f"method; answers: at most {speed.get('answer_tokens', '?')} tokens for the baselines. Documents: the "
        "essays (summarize; ask, with the recall needle at half depth), CMRC 2018 Chinese articles (translate zh->en). "
        "Sizes planned: " + "; ".join(f"{task} {', '.join(tokens_label(n) for n in sizes)}"
                                      for task, sizes in speed.get("sizes", {}).items()) + " tokens.",
        "",
    ]
    images = _plot_speed(rows, speed["methods"], plots)
    for task, methods in speed["methods"].items():
        if not any(r["task"] == task and "not_run" not in r for r in rows):
            continue
        baselines = [b for b in speed["baselines"][task] if any(_ran(r, task, b) for r in rows)]
        lines += [f"### {task}", "",
                  "| tokens | method | seconds | " + "".join(f"time / {b} | " for b in baselines)
                  + "peak MB | task MB | " + (f"task MB / {baselines[0]} | " if baselines else "") + "note |",
                  "|---|---|---|" + "---|" * len(baselines) + "---|---|" + ("---|" if baselines else "") + "---|"]
        for tokens in sorted({r["tokens"] for r in rows if r["task"] == task}):
            same = {r["method"]: r for r in rows if r["task"] == task and r["tokens"] == tokens}
            for method in methods:
                row = same.get(method)
                if row is None or "not_run" in row:
                    continue
                base_rows = [same.get(b) if same.get(b) and "not_run" not in same[b] else None for b in baselines]
                times = [ratio(row["seconds"], b["seconds"]) if b else "-" for b in base_rows]
                memory = [ratio(row["extra_mb"], base_rows[0]["extra_mb"]) if base_rows[0] else "-"] if baselines else []
                note = ("found the needle" if row.get("found") else "missed the needle") if "found" in row else ""
                lines.append(f"| {tokens_label(tokens)} | {method} | {row['seconds']:.1f} | " + "".join(f"{t} | " for t in times)
                             + f"{row['peak_mb']:.0f} | {row['extra_mb']:.0f} | " + "".join(f"{m} | " for m in memory) + f"{note} |")
        lines += [""]
    lines += [f"![{name}](plots/{name})" for name in images] or ["(plots need matplotlib)"]
    lines += ["", "**What it shows.**", "", *_speed_summary(rows, speed), "",
              "**Not run, and why.**", "", *_reasons(not_run_reasons([{**r, "key": f"{r['task']} / {r['method']}"} for r in rows], "key")), ""]
    return lines


def _ran(row: Row, task: str, method: str) -> bool:
    return row["task"] == task and row["method"] == method and "not_run" not in row


def _speed_summary(rows: list[Row], speed: Row) -> list[str]:
    """One sentence per task: longdoc's first method against the first baseline at the largest size both ran."""
    lines = []
    for task, methods in speed["methods"].items():
        ours, base = methods[0], speed["baselines"][task][0]
        pairs = [(a, b) for a in rows if _ran(a, task, ours) for b in rows if _ran(b, task, base) and b["tokens"] == a["tokens"]]
        if not pairs:
            continue
        a, b = max(pairs, key=lambda pair: pair[0]["tokens"])
        lines.append(f"- {task}, {tokens_label(a['tokens'])} tokens: {ours} {a['seconds']:.1f} s and {a['extra_mb']:.0f} MB "
                     f"for the task ({a['peak_mb']:.0f} MB peak) vs {base} {b['seconds']:.1f} s and {b['extra_mb']:.0f} MB "
                     f"({b['peak_mb']:.0f} MB): time {ratio(a['seconds'], b['seconds'])}, task memory "
                     f"{ratio(a['extra_mb'], b['extra_mb'])}.")
    return lines


def _plot_speed(rows: list[Row], methods: dict[str, list[str]], plots: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    names = []
    for field, label, name in (("seconds", "seconds (task, model loaded)", "speed_time.png"),
                               ("extra_mb", "task MB (peak RSS over the loaded model)", "speed_memory.png")):
        figure, axes = plt.subplots(1, len(methods), figsize=(5 * len(methods), 4), squeeze=False)
        for axis, (task, task_methods) in zip(axes[0], methods.items()):
            for method in task_methods:
                points = sorted((r["tokens"], r[field]) for r in rows if _ran(r, task, method))
                if points:
                    axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
            axis.set_xscale("log", base=2)
            sizes = sorted({r["tokens"] for r in rows if r["task"] == task and "not_run" not in r})
            axis.set_xticks(sizes, [tokens_label(n) for n in sizes])
            axis.minorticks_off()
            axis.set_ylim(bottom=0)
            axis.set_title(task)
            axis.set_xlabel("document tokens")
            axis.set_ylabel(label)
            axis.grid(alpha=0.3)
            if axis.get_legend_handles_labels()[0]:
                axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(plots / name, dpi=100)
        plt.close(figure)
        names.append(name)
    return names


# -- shared --------------------------------------------------------------------------------------


def _reasons(reasons: dict[str, dict[str, list[int]]]) -> list[str]:
    lines = [f"- {key}, {', '.join(tokens_label(n) for n in sorted(lengths))}: {why}"
             for key, by_reason in reasons.items() for why, lengths in by_reason.items()]
    return lines or ["- Everything planned ran."]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
