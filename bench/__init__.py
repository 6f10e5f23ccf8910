"""longdoc's benchmarks and evaluations (not run by CI), run from the checkout's root.

`python -m bench --help`: the suites recall (needle in a haystack, length x depth, per method),
quality (the development split in ../shared/eval/, per preset) and speed (time and peak memory per
task and document size). Each writes DIR/results/<suite>.json; `report` turns those into
DIR/REPORT.md and DIR/plots/*.png.

`python -m bench.NAME --help`, one measurement each (bench/README.md has their figures): answers,
bench_engine, bench_index, decode, embedders, engine_read, eval_tasks, gpu_check, llamacpp_decode,
recall_blocks, remote_concurrency, search_needle, startup, summarize_speed, summary_facts,
summary_selection. What they share is in harness.py (machine, fresh case processes, memory, data,
JSON, command line), baselines.py, planted_reports.py and use_embedder.py.
"""
