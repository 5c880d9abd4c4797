"""Starting and stopping the examples' worker processes (shared by their command lines)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gevent

REPO_ROOT = Path(__file__).resolve().parent.parent


def spawn_module(module: str, *args: str, **popen: Any) -> subprocess.Popen:
    """Start ``python -m module args...`` with this repository importable."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", module, *args], env=dict(os.environ, PYTHONPATH=path), **popen
    )


def stop_processes(processes: list[subprocess.Popen], timeout: float = 5.0, terminate: bool = True) -> None:
    """SIGTERM the processes still running (unless ``terminate`` is false), wait, then kill the rest.

    The wait yields to other greenlets, so a green server keeps serving while its workers leave.
    """
    if terminate:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        while process.poll() is None and time.monotonic() < deadline:
            gevent.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait()
