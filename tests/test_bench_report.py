"""The bench report writer, on synthetic results: no model, no run (bench/ is not part of the wheel)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bench.harness import ratio, save_results, tokens_label
from bench.report import FOUND, GIVEN, MISSED, NOT_RUN, recall_grid, write_report

MACHINE = {"cores": 2, "cpu": "Test CPU", "ram_gb": 24.0, "gpu": None, "device": "cpu", "dtype": "bfloat16",
           "torch": "2.13.0", "python": "3.11", "load_average": 1.5}


def _header(suite: str) -> dict:  # type: ignore[type-arg]
    return {"suite": suite, "started": "2026-11-23 10:00 UTC", "command": f"python -m bench {suite} --quick --out X",
            "quick": True, "machine": MACHINE}


def _recall_rows() -> list[dict]:  # type: ignore[type-arg]
    rows = []
    for tokens in (2048, 8192):
        for depth in (0.1, 0.9):
            rows.append({"method": "full attention", "tokens": tokens, "depth": depth, "found": True, "seconds": 10.0})
            rows.append({"method": "engine window", "tokens": tokens, "depth": depth, "found": depth > 0.5, "seconds": 8.0})
    rows += [{"method": m, "tokens": 1048576, "depth": d, "not_run": "outside the --quick sizes"}
             for m in ("full attention", "engine window") for d in (0.1, 0.9)]
    return rows


def _write_results(out: Path) -> None:
    save_results(out, "recall", {**_header("recall"), "model": "qwen2.5-0.5b", "depths": [0.1, 0.9], "needle": "N.",
                                 "question": "Q?", "methods": {"engine window": "window", "full attention": "plain"},
                                 "rows": _recall_rows()})
    save_results(out, "quality", {**_header("quality"), "models": ["qwen2.5-0.5b"], "sizes": {"nq": 2}, "rows": [
        {"model": "qwen2.5-0.5b", "task": "ask (QuALITY)", "metric": "4-way accuracy", "value": 0.5, "n": 2,
         "seconds": 30.0, "baseline": "chance", "baseline_value": 0.25}]})
    speed_rows = [
        {"task": "summarize", "method": "longdoc", "tokens": 1024, "seconds": 30.0, "peak_mb": 1500.0, "extra_mb": 100.0},
        {"task": "summarize", "method": "full attention", "tokens": 1024, "seconds": 60.0, "peak_mb": 3000.0, "extra_mb": 400.0},
        {"task": "summarize", "method": "llama.cpp", "tokens": 1024, "not_run": "llama-cpp-python is not installed"},
    ]
    save_results(out, "speed", {**_header("speed"), "model": "qwen2.5-0.5b", "rows": speed_rows,
                                "methods": {"summarize": ["longdoc", "full attention", "llama.cpp"]},
                                "baselines": {"summarize": ["full attention", "llama.cpp"]}})


def test_recall_grid_marks_found_missed_and_not_run() -> None:
    lengths, depths, grid = recall_grid(_recall_rows(), "engine window")
    assert lengths == [2048, 8192, 1048576]
    assert depths == [0.1, 0.9]
    assert grid == [[MISSED, MISSED, NOT_RUN], [FOUND, FOUND, NOT_RUN]]


def test_recall_grid_tells_a_model_miss_from_a_search_miss() -> None:
    rows = [{"method": "retrieval", "tokens": 4096, "depth": d, "found": False, "retrieved": d < 0.5} for d in (0.1, 0.9)]
    assert recall_grid(rows, "retrieval")[2] == [[GIVEN], [MISSED]]


def test_report_shows_ratios_against_the_baseline_and_what_was_not_run(tmp_path: Path) -> None:
    _write_results(tmp_path)
    text = write_report(tmp_path).read_text()
    assert "| 2 | Test CPU | 24.0 GB | none | cpu, bfloat16 |" in text
    assert "| 1K | longdoc | 30.0 | 0.50x | 1500 | 100 | 0.25x |" in text  # half the time, a quarter of the memory
    assert "time / llama.cpp" not in text  # a baseline that did not run gets no column
    assert "llama-cpp-python is not installed" in text
    assert "| 0.500 | chance | 0.250 | 2.00x | 30.0 | - |" in text
    # Recall: 2 of 4 cells vs full attention's 4 of 4; the 1M cells are not run, not missed.
    assert "| engine window (window) | 1/2 | 1/2 | not run | 50% | 8.0 | 50% | 8.0 | 0.50x | 0.80x |" in text
    assert "1M: outside the --quick sizes" in text
    assert "python -m bench report" in text


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="plots need matplotlib (bench extra)")
def test_report_draws_one_heat_map_per_method_and_the_speed_plots(tmp_path: Path) -> None:
    _write_results(tmp_path)
    text = write_report(tmp_path).read_text()
    for name in ("recall_engine_window.png", "recall_full_attention.png", "speed_time.png", "speed_memory.png"):
        assert (tmp_path / "plots" / name).read_bytes().startswith(b"\x89PNG")
        assert f"(plots/{name})" in text


@pytest.mark.parametrize(("value", "baseline", "expected"), [(1.0, 2.0, "0.50x"), (3.0, 1.0, "3.00x"), (1.0, None, "-"), (1.0, 0.0, "-")])
def test_ratio(value: float, baseline: float | None, expected: str) -> None:
    assert ratio(value, baseline) == expected


@pytest.mark.parametrize(("tokens", "label"), [(8192, "8K"), (1048576, "1M"), (1000, "1000"), (131072, "128K")])
def test_tokens_label(tokens: int, label: str) -> None:
    assert tokens_label(tokens) == label


def test_the_command_shown_leaves_out_note_texts() -> None:
    from bench.harness import _without_notes

    assert _without_notes(["all", "--note", "no GPU lent", "--out", "bench"]) == ["all", "--note ...", "--out", "bench"]


def test_sizes_flag_replaces_one_tasks_sizes_and_rejects_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.__main__ import _parser

    args = _parser().parse_args(["speed", "--out", "X", "--quick", "--sizes", "ask=1024,4096", "--sizes", "translate=16"])
    assert dict(args.sizes) == {"ask": (1024, 4096), "translate": (16,)}
    for bad in ("summarise=512", "ask=1k", "ask="):
        with pytest.raises(SystemExit) as stop:
            _parser().parse_args(["speed", "--out", "X", "--sizes", bad])
        assert stop.value.code == 2
    assert "argument --sizes" in capsys.readouterr().err
