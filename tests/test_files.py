"""Atomic file writes: a reader finds the old file or the new one, never part of one, and no leftovers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from longdoc.files import atomic_path, atomic_write_bytes, atomic_write_text


def test_a_write_replaces_the_file_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "out.md"
    target.write_text("old", encoding="utf-8")
    atomic_write_text(target, "新的 summary\n")
    assert target.read_text(encoding="utf-8") == "新的 summary\n"
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.md"]


def test_an_interrupted_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "weights.safetensors"
    target.write_bytes(b"finished")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as staging:
        staging.write_bytes(b"half")
        raise KeyboardInterrupt  # Ctrl-C halfway through
    assert target.read_bytes() == b"finished"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.safetensors"]


def test_a_missing_directory_is_an_os_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "absent" / "out.md", "text")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_the_file_gets_the_mode_a_plain_write_would_give(tmp_path: Path) -> None:
    plain, atomic = tmp_path / "plain.txt", tmp_path / "atomic.txt"
    plain.write_text("x", encoding="utf-8")
    atomic_write_text(atomic, "x")
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
