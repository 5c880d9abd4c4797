"""``python -m agentzero.pipeline run ...`` in a process of its own, as the tests of ``run`` start it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_pipeline(directory: Path, *arguments: str, timeout: float = 110) -> subprocess.CompletedProcess[str]:
    """Run ``python -m agentzero.pipeline run *arguments``, its files under ``directory``; output as text."""
    return subprocess.run(
        [sys.executable, "-m", "agentzero.pipeline", "run", *arguments],
        env=dict(os.environ, AGENTZERO_PIPELINE_DIR=str(directory), PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
