"""``benchmarks/bench_payloads.py --smoke`` runs to its ``RESULT`` lines: a check that it works, no timing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.timeout(120)
def test_the_payload_benchmark_runs_to_its_results():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_payloads.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert results == [
        "payload_1mib_ratio",
        "payload_1mib_agentzero",
        "payload_16mib_ratio",
        "payload_16mib_agentzero",
    ]
