"""bench/'s scripts as a user runs them: `python -m bench.NAME --help` from the checkout's root, and
the commands bench/README.md gives."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
# Every module of bench/ that runs as a script (the suites run through `python -m bench`).
SCRIPTS = sorted(
    path.stem for path in BENCH.glob("*.py")
    if path.stem != "__main__" and 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")
)


def test_the_scripts_are_found() -> None:
    assert {"answers", "decode", "engine_read", "summary_facts"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_script_prints_its_help_under_its_module_name(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = importlib.import_module(f"bench.{name}")
    monkeypatch.setattr(sys, "argv", [f"bench/{name}.py", "--help"])
    with pytest.raises(SystemExit) as stopped:
        module.main()
    assert stopped.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: python -m bench.{name} ")
    assert "python bench/" not in shown  # the docstring's usage lines name the module too


def test_a_script_runs_as_a_module_from_the_root_with_no_path_set() -> None:
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    done = subprocess.run([sys.executable, "-m", "bench.startup", "--help"], cwd=BENCH.parent, env=environment,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m bench.startup ")


def test_the_readme_runs_every_script_as_a_module() -> None:
    readme = (BENCH / "README.md").read_text(encoding="utf-8")
    assert "python bench/" not in readme
    named = set(re.findall(r"python -m bench\.([a-z_][a-z0-9_]*)", readme))
    assert named and named <= set(SCRIPTS)
