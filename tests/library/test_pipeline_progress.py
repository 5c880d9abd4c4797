"""The pipeline manager says how its jobs go: progress lines, job events for ``agentzero tail`` (issue 21)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import gevent
import pytest

from agentzero.pipeline import PipelineManager, StepWorker, load_step
from agentzero.pipeline.protocol import new_job
from tests.library.pipeline_fakes import wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def line():
    manager = PipelineManager(heartbeat_timeout=2, progress_interval=0.2, farewell=0)
    manager.start()
    worker = StepWorker(load_step("noop"), manager.addresses["status"], concurrency=4, probe_interval=0.2)
    worker.connect(timeout=5)
    running = gevent.spawn(worker.run)
    wait_until(lambda: worker.worker_id in manager.workers, what="the worker joining")
    yield manager
    worker.stop()
    running.join(timeout=5)
    running.kill()
    worker.close()
    manager.stop()


def test_the_manager_logs_a_progress_line_while_jobs_run(line, caplog):
    with caplog.at_level(logging.INFO, logger="pipeline.manager"):
        for number in range(40):
            line.submit(new_job("noop", {"delay": 0.05}, job_id=f"job-{number}"))
        assert line.wait(40, timeout=20)
        gevent.sleep(0.5)
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    shape = re.compile(r"^progress: (\d+) done, (\d+) failed, (\d+) running, (\d+) queued, [0-9.]+ jobs/s$")
    assert progress and all(shape.match(text) for text in progress), progress
    assert any(int(shape.match(text).group(3)) > 0 for text in progress), "a line while jobs ran"
    assert shape.match(progress[-1]).group(1) == "40", progress
    idle = len(progress)
    gevent.sleep(0.6)
    assert len([r for r in caplog.records if r.getMessage().startswith("progress:")]) == idle, (
        "quiet when idle"
    )


def test_agentzero_tail_prints_the_managers_job_events(line):
    tail = subprocess.Popen(
        [sys.executable, "-m", "agentzero", "tail", "--json", "--count", "2", "--topic", "job.completed"]
        + [line.addresses["watch"]],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        number = 0
        deadline = time.monotonic() + 20
        while tail.poll() is None:  # the subscription takes a moment: submit until tail saw two
            assert time.monotonic() < deadline, "agentzero tail saw no job event"
            line.submit(new_job("noop", job_id=f"watched-{number}"))
            number += 1
            gevent.sleep(0.1)
        out, err = tail.communicate(timeout=5)
        assert tail.returncode == 0, err
        events = [json.loads(text) for text in out.splitlines()]
        assert len(events) == 2, out
        assert all(
            "job.completed" in json.dumps(event) and "watched-" in json.dumps(event) for event in events
        )
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.communicate()
