"""Finished task steps (a chunk summary, a reduce node, a translated paragraph) kept on disk.

Each result is one small JSON file named by the sha256 of everything that determines it: the
model, the prompt template's hash, the generation parameters and the input text. A re-run after
Ctrl-C or a crash finds every finished step and only computes the rest; a changed prompt or model
simply misses. Writes are atomic (temp file + rename), so an interrupt never leaves half a result.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from longdoc.progress import warn
from longdoc.files import atomic_write_text

FORMAT_VERSION = 1


def result_key(*parts: object) -> str:
    """A stable key for a step from JSON-serialisable parts (model name, prompt hash, params, input)."""
    payload = json.dumps([FORMAT_VERSION, *parts], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResultCache:
    """Step results under `<home>/results/`, one file per key; unreadable entries count as missing."""

    def __init__(self, home: Path) -> None:
        self.root = home / "results"
        self._warned = False

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        """The cached text for `key`, or None."""
        try:
            entry = json.loads(self.path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # damaged or unreadable: recompute it, and the new write replaces it
        text = entry.get("text") if isinstance(entry, dict) else None
        return text if isinstance(text, str) and entry.get("key") == key else None

    def put(self, key: str, text: str) -> None:
        """Store `text` under `key` atomically; a full or read-only disk costs resumability, not the run."""
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps({"key": key, "text": text}, ensure_ascii=False))
        except OSError as error:
            if not self._warned:
                warn(f"cannot save results to {self.root} ({error.strerror or error}); an interrupted run will start over")
                self._warned = True
