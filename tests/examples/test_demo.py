"""The small tour in examples/demo.py runs to its result."""

import os
import subprocess
import sys

from examples.processes import REPO_ROOT


def test_demo_tour_runs():
    done = subprocess.run(
        [sys.executable, "-m", "examples.demo"],
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sum of squares 0..9 = 285" in done.stdout
    assert "received 10 log events" in done.stdout
    assert "demo OK" in done.stdout
