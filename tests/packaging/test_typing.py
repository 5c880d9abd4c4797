"""agentzero is typed — a user's program type-checks against the installed package.

These run mypy (from the ``test`` extra) in a subprocess; they take a few seconds.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

PROGRAMS = Path(__file__).resolve().parent / "typing_programs"


def _mypy(program: Path, workdir: Path) -> list[str]:
    """mypy --strict's error lines about ``program`` itself, checked from outside the repository."""
    copy = workdir / program.name
    shutil.copy(program, copy)
    # where the installed agentzero lives: an editable install's import hook is
    # invisible to mypy, so point it at the package directory itself (py.typed inside)
    spec = importlib.util.find_spec("agentzero")
    assert spec is not None and spec.origin is not None
    assert (Path(spec.origin).parent / "py.typed").exists()
    environment = {**os.environ, "MYPYPATH": str(Path(spec.origin).parent.parent)}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(workdir / ".mypy_cache"), copy.name],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert "No module named mypy" not in result.stderr
    return [line for line in result.stdout.splitlines() if line.startswith(copy.name) and ": error:" in line]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_typed_user_program_checks_clean_and_a_misspelled_timeout_is_caught(tmp_path):
    assert _mypy(PROGRAMS / "typed_user.py", tmp_path) == []
    errors = _mypy(PROGRAMS / "misspelled_timeout.py", tmp_path)
    assert any('Unexpected keyword argument "timout"' in line for line in errors), errors


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_package_is_clean_under_mypy_strict(tmp_path):
    repository = Path(__file__).resolve().parent.parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / ".mypy_cache"), "agentzero"],
        cwd=repository,  # picks up [tool.mypy] from pyproject.toml
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
