"""A pipeline worker stays with its manager, follows it through a restart, and never outlives it (issue 21).

A manager and its workers in this process (green), then as processes: a
manager stopped with SIGTERM tells its workers, which exit; one killed with
SIGKILL leaves orphans, which exit after ``--orphan-timeout``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gevent
import pytest

from agentzero.pipeline import PipelineManager, StepWorker, load_step
from agentzero.pipeline.protocol import COMPLETED, new_job
from agentzero.util import get_free_tcp_port
from tests.library.pipeline_fakes import wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


def _worker(manager: PipelineManager, **options) -> tuple[StepWorker, gevent.Greenlet]:
    options.setdefault("probe_interval", 0.1)
    worker = StepWorker(load_step("noop"), manager.addresses["status"], concurrency=2, **options)
    worker.connect(timeout=5)
    running = gevent.spawn(worker.run)
    wait_until(lambda: worker.worker_id in manager.workers, what="the worker joining")
    return worker, running


def test_a_manager_that_stops_tells_its_workers_and_they_leave(caplog):
    manager = PipelineManager(heartbeat_timeout=2, farewell=3)
    manager.start()
    worker, running = _worker(manager)
    try:
        with caplog.at_level(logging.INFO, logger="pipeline"):
            began = time.monotonic()
            manager.stop()
            told = time.monotonic() - began
            running.join(timeout=5)
        assert running.dead
        assert worker.left_because == "manager stopping"
        assert told < 2, "the manager waits only until every worker heard it"
        lines = [record.getMessage() for record in caplog.records if record.name == "pipeline.worker"]
        assert len(lines) == 1 and "is stopping: this worker leaves" in lines[0], lines
    finally:
        running.kill()
        worker.close()


def test_an_orphan_exits_after_its_orphan_timeout_with_one_line(caplog):
    manager = PipelineManager(heartbeat_timeout=2, farewell=0)  # it leaves without a word, as if killed
    manager.start()
    worker, running = _worker(manager, orphan_timeout=1.0)
    try:
        with caplog.at_level(logging.INFO, logger="pipeline"):
            manager.stop()
            gone = time.monotonic()
            running.join(timeout=10)
            waited = time.monotonic() - gone
        assert running.dead and worker.left_because == "orphan"
        assert 0.9 <= waited <= 1.0 + 2, waited
        lines = [record.getMessage() for record in caplog.records if record.name == "pipeline.worker"]
        assert len(lines) == 1 and "did not answer for" in lines[0] and "orphan timeout 1s" in lines[0], lines
    finally:
        running.kill()
        worker.close()


def test_a_worker_follows_a_manager_restarted_on_the_same_port():
    port = get_free_tcp_port("127.0.0.1")
    first = PipelineManager(status_port=port, heartbeat_timeout=2, farewell=0)
    first.start()
    worker, running = _worker(first, orphan_timeout=20)
    second = None
    try:
        first.stop()
        gevent.sleep(0.3)
        second = PipelineManager(status_port=port, heartbeat_timeout=2)
        second.start()
        assert second.addresses["events"] != first.addresses["events"]
        wait_until(lambda: worker.worker_id in second.workers, what="the worker rejoining")
        for number in range(5):
            second.submit(new_job("noop", {"n": number}, job_id=f"after-{number}"))
        assert second.wait(5, timeout=10), second.stats()
        assert all(job.state == COMPLETED for job in second.jobs.values())
        assert worker.left_because is None and not running.dead
    finally:
        worker.stop()
        running.join(timeout=5)
        running.kill()
        worker.close()
        if second is not None:
            second.stop()


def _spawn(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "agentzero.pipeline", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _manager_and_workers(count: int, *step_options: str) -> tuple[subprocess.Popen, list[subprocess.Popen]]:
    manager = _spawn("manager", "--bind", "127.0.0.1", "--farewell", "3")
    status = manager.stdout.readline().split()[1]
    workers = [_spawn("step", "noop", "--manager", status, *step_options) for _ in range(count)]
    for worker in workers:
        assert " pulling noop jobs on " in worker.stdout.readline()
    return manager, workers


def _reap(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@pytest.mark.timeout(90)
def test_worker_processes_exit_when_their_manager_gets_sigterm():
    manager, workers = _manager_and_workers(2)
    try:
        time.sleep(1.0)  # the manager took them in
        manager.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for worker in workers:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        assert manager.wait(timeout=10) == 0
        for worker in workers:
            err = worker.communicate(timeout=5)[1]
            assert worker.returncode == 0 and "is stopping: this worker leaves" in err, err
    finally:
        _reap([manager, *workers])


@pytest.mark.timeout(90)
def test_worker_processes_exit_within_orphan_timeout_after_their_manager_is_killed():
    manager, workers = _manager_and_workers(2, "--orphan-timeout", "2")
    try:
        time.sleep(1.0)
        manager.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        for worker in workers:
            worker.wait(timeout=max(0.1, killed + 2 + 2 - time.monotonic()))
        for worker in workers:
            err = worker.communicate(timeout=5)[1]
            assert "(orphan timeout 2s): this worker exits" in err, err
            assert err.count("this worker exits") == 1
    finally:
        _reap([manager, *workers])
