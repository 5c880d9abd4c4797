"""The processes of ``run``: spawning a pipeline command, starting workers and stopping them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import gevent


def spawn_pipeline(*args: str, **popen: Any) -> subprocess.Popen[Any]:
    """Start ``python -m agentzero.pipeline args...`` with this agentzero importable first."""
    import sys

    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [package_root, os.getcwd(), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "agentzero.pipeline", *args], env=dict(os.environ, PYTHONPATH=path), **popen
    )


def start_worker(
    job_type: str, manager_address: str, concurrency: int, log_dir: str, *options: str
) -> subprocess.Popen[Any]:
    """Start a step worker process for ``job_type`` (a built-in step or ``module:StepClass``).

    Its output goes to a file in ``log_dir``; ``options`` are more ``step`` arguments.
    """
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in job_type)
    with open(os.path.join(log_dir, f"{safe_name}-{time.monotonic_ns()}.log"), "wb") as log_file:
        process = spawn_pipeline(
            "step",
            job_type,
            "--manager",
            manager_address,
            "--concurrency",
            str(concurrency),
            *options,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    process.job_type = job_type  # type: ignore[attr-defined]
    return process


def stop_workers(
    processes: list[subprocess.Popen[Any]], timeout: float = 5.0, terminate: bool = True
) -> None:
    """SIGTERM the processes still running (unless ``terminate`` is false), wait, then kill the rest.

    The wait yields to other greenlets, so a green manager keeps serving while its workers leave.
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
