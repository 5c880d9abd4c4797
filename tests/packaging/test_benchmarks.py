"""The benchmarks run: each smoke mode, with a tiny count, ends with its RESULT lines (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_streaming_benchmark_runs_and_reports_its_ratios():
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_streaming.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert done.returncode == 0, done.stderr
    results = [line.split() for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert [fields[1] for fields in results] == [
        "streaming_plain_vs_orjson_by_hand",
        "streaming_green_vs_raw_green",
        "streaming_asyncio_vs_raw_asyncio",
    ]
    assert all(float(fields[2]) > 0 for fields in results)
