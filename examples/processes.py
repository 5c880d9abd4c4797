"""Starting and stopping the examples' worker processes (shared by their command lines)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# the library's own: wait (yielding to other greenlets), then kill what is left
from agentzero.pipeline.processes import stop_workers as stop_processes

__all__ = ["REPO_ROOT", "spawn_module", "stop_processes"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def spawn_module(module: str, *args: str, **popen: Any) -> subprocess.Popen:
    """Start ``python -m module args...`` with this repository importable."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", module, *args], env=dict(os.environ, PYTHONPATH=path), **popen
    )
