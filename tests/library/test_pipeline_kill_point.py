"""``run --kill-manager-at F``: the kill comes part-way whenever F of the jobs is fewer than all of them.

The jobs past the kill point and a margin are submitted only once the manager
was killed (``held_until_the_kill``), so that workers faster than the
submissions cannot finish them all first. With few jobs, the margin (at least
one) reached the last job: nothing was held, the workers finished everything
before the kill was seen, and the run ended "all jobs completed" with the
manager never killed.
"""

from __future__ import annotations

import math
import re

import pytest

from agentzero.pipeline.restarts import held_until_the_kill
from tests.library.pipeline_runs import run_pipeline


@pytest.mark.parametrize(
    ("count", "kill_at"), [(2, 0.5), (3, 0.01), (3, 0.5), (3, 0.66), (10, 0.85), (10, 0.9), (40, 0.5)]
)
def test_a_job_waits_for_the_kill_whenever_the_kill_point_comes_before_the_last_job(count, kill_at):
    jobs = [{"id": str(number)} for number in range(count)]
    kill_point = math.ceil(kill_at * count)  # the run kills once this many completed
    assert kill_point < count
    held = held_until_the_kill(jobs, kill_at)
    assert held, "every job submitted before the kill: fast workers finish them all, and no kill comes"
    assert count - len(held) >= kill_point, "too few submitted before the kill for it ever to come"
    assert held == jobs[count - len(held) :]


@pytest.mark.parametrize(("count", "kill_at"), [(1, 0.5), (10, 0.95), (10, 0.99)])
def test_nothing_waits_when_the_kill_point_is_the_last_job(count, kill_at):
    assert held_until_the_kill([{"id": str(number)} for number in range(count)], kill_at) == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_run_kills_the_manager_with_three_jobs(tmp_path):
    done = run_pipeline(tmp_path, "--jobs", "3", "--workers", "1", "--delay", "0", "--kill-manager-at", "0.5")
    assert done.returncode == 0, done.stdout + done.stderr
    killed = re.search(r"killed the manager process \d+ with SIGKILL at (\d+) jobs", done.stdout)
    assert killed and int(killed.group(1)) == 2, done.stdout
    assert "submitted the other 1 jobs" in done.stdout
    assert "all 3 jobs completed, each exactly once" in done.stdout


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_run_says_so_when_the_manager_was_never_killed(tmp_path):
    """One job: the kill point is the last job, so no kill can come; the run says it, not only its table."""
    done = run_pipeline(tmp_path, "--jobs", "1", "--workers", "1", "--delay", "0", "--kill-manager-at", "0.5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the manager was never killed" in done.stdout and "killed the manager process" not in done.stdout
    assert "all 1 jobs completed, each exactly once" in done.stdout
