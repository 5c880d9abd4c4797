"""``benchmarks/bench_peers.py --smoke`` runs, and agentzero loses no first message where raw pyzmq does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_peers.py"


@pytest.mark.timeout(120)
def test_bench_peers_smoke_ends_with_its_results():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--smoke"], capture_output=True, text=True, timeout=110, check=True
    )
    results = dict(re.findall(r"^RESULT (\S+) (\d+)/\d+$", done.stdout, re.MULTILINE))
    assert set(results) == {
        f"peers_{who}_lost_{where}" for who in ("raw", "agentzero") for where in ("tcp", "ipc")
    }
    assert results["peers_agentzero_lost_tcp"] == results["peers_agentzero_lost_ipc"] == "0"
    assert int(results["peers_raw_lost_tcp"]) > 0, done.stdout  # the slow joiner, for comparison
