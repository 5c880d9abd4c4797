"""The examples' rich output piped (issue 20): no wrapping at 80 columns, in lines or tables."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest
from rich.table import Table

from examples.output import PIPED_WIDTH, make_console
from examples.processes import REPO_ROOT

pytestmark = pytest.mark.timeout(120)

LONG_LINE = "started 3 worker processes (1 per step: " + ", ".join(f"step-{n}" for n in range(30)) + ")"


def piped(*command: str) -> subprocess.CompletedProcess:
    """Run ``python -m command...`` with stdout a pipe and no ``COLUMNS``: what a script or CI sees."""
    env = {name: value for name, value in os.environ.items() if name not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", *command], capture_output=True, text=True, timeout=90, env=env, cwd=REPO_ROOT
    )


def wide_table() -> Table:
    table = Table(title="summary")
    for column in ("worker", "agent", "jobs run", "completed", "failed", "peak concurrency", "limit"):
        table.add_column(column)
    table.add_row("0123abcd", "agent-0", "2", "2", "0", "2", "4 x 0.75")
    return table


def test_a_console_writing_to_a_pipe_wraps_neither_lines_nor_tables(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    out = io.StringIO()
    console = make_console(file=out)
    console.print(LONG_LINE)
    console.print("x" * (PIPED_WIDTH + 500))
    console.print(wide_table())
    lines = out.getvalue().splitlines()
    assert lines[0] == LONG_LINE and lines[1] == "x" * (PIPED_WIDTH + 500)
    assert any(
        re.search(r"┃ worker +┃ agent +┃ jobs run ┃ completed ┃ failed ┃ peak concurrency ┃", line)
        for line in lines
    )


def test_columns_still_sets_the_width_of_piped_output(monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    out = io.StringIO()
    make_console(file=out).print(LONG_LINE)
    assert max(len(line) for line in out.getvalue().splitlines()) <= 50


@pytest.mark.slow
def test_the_registry_demo_prints_its_table_unwrapped_into_a_pipe():
    done = piped("examples.registry", "--workers", "2", "--jobs", "4", "--seconds", "0.01", "--no-kill")
    assert done.returncode == 0, done.stdout + done.stderr
    header = r"┃ worker +┃ agent +┃ jobs run ┃ completed ┃ failed ┃ peak concurrency ┃ +limit ┃"
    assert re.search(header, done.stdout), done.stdout
    assert re.search(r"^jobs: 4, completed 4, failed 0, re-queued 0, wall time [0-9.]+ s$", done.stdout, re.M)


@pytest.mark.slow
def test_the_pipeline_demo_prints_whole_lines_into_a_pipe():
    done = piped("agentzero.pipeline", "run", "--jobs", "6", "--workers", "1", "--concurrency", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "started 3 worker processes (1 per step: generate-file, calculate-hash, delete-file)" in lines
    assert any(
        re.fullmatch(r"manager up: status tcp://127\.0\.0\.1:\d+, events tcp://127\.0\.0\.1:\d+", x)
        for x in lines
    )
    assert any(re.fullmatch(r"│ calculate-hash throughput +│ +[0-9.]+ jobs/s │", line) for line in lines), (
        lines
    )
