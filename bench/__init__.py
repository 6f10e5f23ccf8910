"""longdoc's benchmarks and evaluations (not run by CI): `python -m bench --help`.

Suites: recall (needle in a haystack, length x depth, per method), quality (the development split
in ../shared/eval/, per preset), speed (time and peak memory per task and document size). Each
writes DIR/results/<suite>.json; `report` turns those into DIR/REPORT.md and DIR/plots/*.png.
The standalone scripts beside this file (eval_tasks.py, recall_blocks.py, ...) still run as before.
"""
