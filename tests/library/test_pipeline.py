"""The worker pipeline of the guide, with real worker processes on loopback."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import zmq.green

from agentzero.core import SocketManager
from agentzero.pipeline.builtin_steps import file_content
from agentzero.pipeline.manager import PipelineManager
from agentzero.pipeline.processes import start_worker, stop_workers
from agentzero.pipeline.protocol import COMPLETED, FAILED, new_job
from agentzero.pipeline.worker import ask_manager
from agentzero.zero import context as green_context
from examples.processes import REPO_ROOT

pytestmark = pytest.mark.timeout(120)


class Pipeline:
    """A manager in this process (green) and worker processes it can start and kill."""

    def __init__(self, **options):
        self.manager = PipelineManager(**options)
        self.addresses = self.manager.start()
        self.log_dir = tempfile.mkdtemp(prefix="az-pipeline-test-")
        self.processes: list[subprocess.Popen] = []
        self.client = SocketManager(zmq.green, green_context)
        self.client.ensure_and_connect("jobs", zmq.green.PUSH, self.addresses["jobs"], 0)

    def spawn(self, job_type: str, count: int = 1, concurrency: int = 4) -> list[subprocess.Popen]:
        started = [
            start_worker(job_type, self.addresses["status"], concurrency, self.log_dir) for _ in range(count)
        ]
        self.processes += started
        return started

    def wait_for_workers(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.manager.workers) < count:
            assert time.monotonic() < deadline, f"only {len(self.manager.workers)} of {count} workers joined"
            gevent_sleep(0.05)

    def push(self, job) -> None:
        assert self.client.send_safe("jobs", job, timeout=5)

    def raw_push(self, frame: bytes) -> None:
        self.client.sockets["jobs"].send(frame)

    def run(self, jobs, timeout: float = 60) -> None:
        for job in jobs:
            self.push(job)
        assert self.manager.wait(len(jobs), timeout=timeout), self.manager.stats()

    def close(self) -> None:
        stop_workers(self.processes)
        self.client.close_all(linger=0)
        self.manager.stop()


def gevent_sleep(seconds: float) -> None:
    import gevent

    gevent.sleep(seconds)


@pytest.fixture
def pipeline():
    instances = []

    def make(**options):
        options.setdefault("heartbeat_timeout", 1.5)
        instance = Pipeline(**options)
        instances.append(instance)
        return instance

    yield make
    for instance in instances:
        instance.close()


def file_jobs(count: int, delay: float = 0.0):
    return [
        new_job("file-hash", {"size": 2048, "seed": f"s{n}", "delay": delay}, job_id=f"job-{n}")
        for n in range(count)
    ]


def assert_hashes(manager: PipelineManager, jobs) -> None:
    for job in jobs:
        record = manager.jobs[job["id"]]
        seed, size = job["instructions"]["seed"], job["instructions"]["size"]
        assert record.result["sha256"] == hashlib.sha256(file_content(seed, size)).hexdigest()


def test_three_step_pipeline_completes_every_job_with_two_workers_per_step(pipeline):
    line = pipeline()
    for job_type in ("generate-file", "calculate-hash", "delete-file"):
        line.spawn(job_type, 2)
    line.wait_for_workers(6)
    jobs = file_jobs(90, delay=0.005)
    line.run(jobs)
    stats = line.manager.stats()
    assert stats["completed"] == 90 and stats["failed"] == 0
    assert stats["completed_per_step"] == {"generate-file": 90, "calculate-hash": 90, "delete-file": 90}
    assert_hashes(line.manager, jobs)
    # the work was shared: both workers of a step took jobs
    done_by = [worker.done for worker in line.manager.workers.values() if worker.job_type == "calculate-hash"]
    deadline = time.monotonic() + 5
    while sum(done_by) < 90 and time.monotonic() < deadline:  # metrics arrive with the heartbeat
        gevent_sleep(0.1)
        done_by = [w.done for w in line.manager.workers.values() if w.job_type == "calculate-hash"]
    assert len(done_by) == 2 and all(count > 0 for count in done_by)


def test_a_failing_step_is_retried_then_failed_with_the_remote_traceback(pipeline):
    line = pipeline(max_attempts=3)
    line.spawn("flaky", 1)
    always = new_job("flaky", {"always": True}, job_id="always-fails")
    twice = new_job("flaky", {"fail_times": 2}, job_id="fails-twice")
    line.run([always, twice])
    failed = line.manager.jobs["always-fails"]
    assert failed.state == FAILED
    assert failed.attempts == 3 and failed.retries == 2
    assert failed.error["name"] == "RuntimeError" and failed.error["module"] == "builtins"
    assert "Traceback (most recent call last)" in failed.error["traceback"]
    assert "flaky step failed on purpose (attempt 3)" in failed.error["traceback"]
    recovered = line.manager.jobs["fails-twice"]
    assert recovered.state == COMPLETED and recovered.result["succeeded_on_attempt"] == 3
    assert recovered.retries == 2


def test_sigkill_of_a_worker_mid_run_still_completes_every_job(pipeline):
    line = pipeline(heartbeat_timeout=1.0)
    line.spawn("generate-file", 2)
    hashers = line.spawn("calculate-hash", 2, concurrency=4)
    line.spawn("delete-file", 2)
    line.wait_for_workers(6)
    jobs = file_jobs(150, delay=0.02)
    for job in jobs:
        line.push(job)
    victim = hashers[0]
    record = None
    deadline = time.monotonic() + 30
    while record is None or not record.held:  # kill it while it holds jobs
        assert time.monotonic() < deadline, "the victim never ran a job"
        gevent_sleep(0.01)
        record = next((w for w in line.manager.workers.values() if w.pid == victim.pid), None)
    os.kill(victim.pid, signal.SIGKILL)
    assert line.manager.wait(len(jobs), timeout=60), line.manager.stats()
    stats = line.manager.stats()
    assert stats["completed"] == 150 and stats["failed"] == 0
    # every job the victim held and did not finish was sent again, to another worker
    lost = [
        job
        for job in line.manager.jobs.values()
        if ("calculate-hash", record.id) in job.dispatches and ("calculate-hash", record.id) not in job.passed
    ]
    assert lost and stats["redispatches"] >= len(lost)
    assert all(job.redispatches >= 1 and job.passed[1][1] != record.id for job in lost)
    assert victim.pid not in {w.pid for w in line.manager.workers.values()}
    assert_hashes(line.manager, jobs)
    assert sorted(line.manager.jobs) == sorted(job["id"] for job in jobs)  # each job once


def test_status_socket_answers_for_known_and_unknown_jobs(pipeline):
    line = pipeline()
    line.spawn("noop", 1)
    line.run([new_job("noop", {"x": 1}, job_id="known")])
    with SocketManager(zmq.green, green_context) as client:
        status = line.addresses["status"]
        known = ask_manager(client, status, {"command": "status", "job_id": "known"}, timeout=5)
        assert known["state"] == "completed" and known["result"] == {"x": 1} and known["attempts"] == 1
        unknown = ask_manager(client, status, {"command": "status", "job_id": "nope"}, timeout=5)
        assert unknown == {"job_id": "nope", "state": "unknown", "error": "no such job"}
        stats = ask_manager(client, status, {"command": "stats"}, timeout=5)
        assert stats["completed"] == 1
        confused = ask_manager(client, status, ["not", "a", "request"], timeout=5)
        assert "unknown request" in confused["error"]
        client.sockets["manager"].send(b"\xff not json")
        unreadable = client.recv_safe("manager", timeout=5)
        assert "unreadable request" in unreadable["error"]
        assert ask_manager(client, status, {"command": "addresses"}, timeout=5) == line.addresses
        client.close("manager", linger=0)


def test_bad_jobs_are_reported_and_do_not_stop_the_manager(pipeline):
    line = pipeline()
    line.spawn("noop", 1)
    line.raw_push(b"{garbage")
    line.push(["not", "a", "job"])
    line.push({"pipeline": "noop"})
    line.push(new_job("no-such-pipeline", job_id="lost"))
    line.run([new_job("noop", {"ok": True}, job_id="fine")])
    line.push(new_job("noop", job_id="fine"))  # duplicate id
    deadline = time.monotonic() + 5
    while len(line.manager.rejected) < 5 and time.monotonic() < deadline:
        gevent_sleep(0.05)
    reasons = [entry["reason"] for entry in line.manager.rejected]
    assert len(reasons) == 5, reasons
    assert "unreadable job" in reasons[0]
    assert "a job must be an object, got list" in reasons[1]
    assert "needs a non-empty string 'id'" in reasons[2]
    assert "unknown pipeline 'no-such-pipeline'" in reasons[3]
    assert "duplicate job id 'fine'" in reasons[4]
    assert line.manager.jobs["fine"].state == COMPLETED
    with SocketManager(zmq.green, green_context) as client:
        lost = ask_manager(
            client, line.addresses["status"], {"command": "status", "job_id": "lost"}, timeout=5
        )
        client.close("manager", linger=0)
    assert lost["state"] == "rejected" and "unknown pipeline" in lost["reason"]


def _cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "agentzero.pipeline", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_command_completes_and_prints_a_summary():
    done = _cli("run", "--jobs", "30", "--workers", "1", "--concurrency", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all 30 jobs completed" in done.stdout
    assert "pipeline summary" in done.stdout and "hashes verified" in done.stdout


def test_separate_manager_step_submit_and_status_commands():
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    manager = subprocess.Popen(
        [sys.executable, "-m", "agentzero.pipeline", "manager", "--bind", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    step = None
    try:
        status_line = manager.stdout.readline()
        assert status_line.startswith("status "), status_line
        status = status_line.split()[1]
        assert status.startswith("tcp://127.0.0.1:")
        step = subprocess.Popen(
            [sys.executable, "-m", "agentzero.pipeline", "step", "noop", "--manager", status],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        submitted = _cli("submit", "--manager", status, "--pipeline", "noop", "--count", "3")
        assert submitted.returncode == 0, submitted.stderr
        job_ids = submitted.stdout.split()
        assert len(job_ids) == 3
        deadline = time.monotonic() + 30
        while True:
            answer = _cli("status", "--manager", status, job_ids[-1])
            if '"state": "completed"' in answer.stdout:
                break
            assert time.monotonic() < deadline, answer.stdout
            time.sleep(0.2)
        unknown = _cli("status", "--manager", status, "no-such-job")
        assert unknown.returncode == 1 and '"state": "unknown"' in unknown.stdout
        rejected = _cli("submit", "--manager", status, "--pipeline", "nope")
        assert rejected.returncode == 2 and "unknown pipeline 'nope'" in rejected.stderr
    finally:
        for process in (step, manager):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def test_bad_arguments_exit_with_code_2_and_one_line():
    bad_address = _cli("step", "noop", "--manager", "not-an-address", "--connect-timeout", "1")
    assert bad_address.returncode == 2
    assert bad_address.stderr.strip().count("\n") == 0
    assert "not-an-address" in bad_address.stderr
    nobody = _cli("status", "--manager", "tcp://127.0.0.1:1", "x", "--timeout", "1")
    assert nobody.returncode == 2 and "did not answer" in nobody.stderr
    bad_count = _cli("run", "--jobs", "0")
    assert bad_count.returncode == 2 and "must be >= 1" in bad_count.stderr
