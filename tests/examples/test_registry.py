"""The worker registry and its agent workers, over loopback tcp (greenlets, and real processes)."""

from __future__ import annotations

import os
import signal
import time
import uuid

import gevent
import pytest

from agentzero.core import SocketManager
from agentzero.util import get_free_tcp_port
from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.registry.__main__ import start_worker, stop_workers
from examples.registry.connection import BackendConnection
from examples.registry.registry import Registry
from examples.registry.worker import WorkerRuntime
from tests.examples.registry_helpers import registries

pytestmark = pytest.mark.timeout(90)
TOKEN = "test-token"


@pytest.fixture
def registry():
    yield from registries(TOKEN, heartbeat_timeout=1.5, availability_timeout=0.3)


@pytest.fixture
def workers():
    made = []

    def make(
        address: str, token: str = TOKEN, agent: str | None = None, runtime: dict | None = None, **options
    ):
        options.setdefault("ping_interval", 0.2)
        options.setdefault("pong_timeout", 1.0)
        options.setdefault("register_timeout", 1.0)
        connection = BackendConnection(
            token, agent_id=agent or f"agent-{uuid.uuid4().hex[:6]}", backend_url=address, **options
        )
        made.append(connection)
        worker = WorkerRuntime(connection, **(runtime or {}))
        connection.connect()
        return connection, worker

    yield make
    for connection in made:
        connection.disconnect()


def completed(registry: Registry) -> int:
    return sum(job.status == "completed" for job in registry.jobs.values())


def test_a_bad_token_is_refused_and_that_peer_gets_no_jobs(registry, workers):
    hub = registry()
    good, _ = workers(hub.address, max_processes=4)
    bad, _ = workers(hub.address, token="wrong", max_retry=0, sleep=lambda seconds: None)
    assert good.wait_registered(5)
    gevent.sleep(0.5)
    assert not bad.is_connected and "Failed to connect" in str(bad.error)
    assert hub.refusals == 1 and len(hub.workers) == 1
    with SocketManager(zmq, green_context) as intruder:  # refused, then pretending to be a worker
        intruder.ensure_and_connect("dealer", zmq.DEALER, hub.address, zmq.POLLIN)
        intruder.send_safe("dealer", {"type": "register", "token": "nope", "agent_name": "x"})
        assert intruder.recv_safe("dealer", timeout=2) == {
            "type": "register",
            "success": False,
            "message": "invalid auth token",
        }
        intruder.send_safe("dealer", {"type": "status_update", "status": "idle", "load": 0})
        intruder.send_safe("dealer", {"type": "availability_response", "job_id": "x", "available": True})
        for _ in range(10):
            hub.submit(metadata={"seconds": 0.01})
        assert hub.wait(lambda: completed(hub) == 10, 20)
        assert intruder.recv_safe("dealer", timeout=0.2) is None  # never asked for anything
        intruder.close("dealer", linger=0)
    assert hub.ignored >= 2
    assert {worker_id for job in hub.jobs.values() for worker_id in job.history} == {good.worker_id}


def test_a_new_worker_gets_an_id_and_a_reconnecting_one_keeps_it(registry, workers):
    port = get_free_tcp_port()
    hub = registry(address=f"tcp://127.0.0.1:{port}")
    agent = f"keeper-{uuid.uuid4().hex[:6]}"
    first, _ = workers(hub.address, agent=agent, sleep=lambda seconds: gevent.sleep(seconds / 20))
    assert first.wait_registered(5)
    assigned = first.worker_id
    assert assigned in hub.workers and assigned != "unregistered"
    assert os.environ[first._get_worker_id_env_key()] == assigned
    # the registry goes away and comes back on the same address: the worker reconnects, same id
    hub.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            back = registry(address=f"tcp://127.0.0.1:{port}")
            break
        except Exception:
            assert time.monotonic() < deadline
            gevent.sleep(0.1)
    assert back.wait(lambda: assigned in back.workers, 15)
    assert first.wait_registered(5) and first.worker_id == assigned
    # a second process of the same agent presents the stored id too, while the first is live:
    # the id is not handed over (anti-hijack), the newcomer gets one of its own
    again, _ = workers(back.address, agent=agent)
    assert again.wait_registered(5) and again.worker_id not in (assigned, None)
    assert back.workers[assigned].identity != back.workers[again.worker_id].identity
    assert first.worker_id == assigned and back.workers[assigned].online


@pytest.mark.parametrize("threshold, most", [(0.5, 2), (1.0, 4)])
def test_no_worker_exceeds_max_processes_or_its_load_threshold(registry, workers, threshold, most):
    hub = registry()
    runtimes = [workers(hub.address, max_processes=4, load_threshold=threshold)[1] for _ in range(2)]
    assert all(runtime.connection.wait_registered(5) for runtime in runtimes)
    for _ in range(24):
        hub.submit(metadata={"seconds": 0.1})
    assert hub.wait(lambda: completed(hub) == 24, 30)
    assert max(runtime.peak for runtime in runtimes) == most
    assert all(worker.peak <= most for worker in hub.workers.values())


def test_refusal_and_time_out_move_the_job_to_another_worker(registry, workers):
    hub = registry()
    refuser, refusing = workers(hub.address, runtime={"accept": lambda request: False})
    good, _ = workers(hub.address)
    assert refuser.wait_registered(5) and good.wait_registered(5)
    with SocketManager(zmq, green_context) as silent:  # registers, stays alive, never answers
        silent.ensure_and_connect("dealer", zmq.DEALER, hub.address, zmq.POLLIN)
        silent.send_safe("dealer", {"type": "register", "token": TOKEN, "worker_id": "", "max_processes": 4})
        assert silent.recv_safe("dealer", timeout=2)["success"] is True
        keep_alive = gevent.spawn(
            lambda: [silent.send_safe("dealer", {"type": "ping"}) or gevent.sleep(0.2) for _ in range(100)]
        )
        job_ids = [hub.submit(metadata={"seconds": 0.01}) for _ in range(12)]
        assert hub.wait(lambda: completed(hub) == 12, 30)
        keep_alive.kill()
        silent.close("dealer", linger=0)
    assert all(hub.jobs[job_id].history == [good.worker_id] for job_id in job_ids)
    asked_elsewhere = [job for job in hub.jobs.values() if job.tried - {good.worker_id}]
    assert asked_elsewhere  # refusals and time-outs happened and moved jobs on
    assert refusing.peak == 0


def test_termination_stops_a_running_job_and_reports_cancelled(registry, workers):
    hub = registry()
    connection, runtime = workers(hub.address)
    assert connection.wait_registered(5)
    job_id = hub.submit(metadata={"seconds": 30})
    assert hub.wait(lambda: job_id in runtime.running, 10)
    started = time.monotonic()
    assert hub.terminate(job_id)
    assert hub.wait(lambda: hub.jobs[job_id].status == "cancelled", 5)
    assert time.monotonic() - started < 5 and runtime.finished[job_id] == "cancelled"
    assert hub.terminate(job_id) is False  # not running any more


def test_a_sigkilled_workers_jobs_are_requeued_and_finish_elsewhere(registry):
    hub = registry(heartbeat_timeout=1.0)
    processes = [start_worker(hub.address, f"proc-{n}", token=TOKEN) for n in range(2)]
    try:
        assert hub.wait(lambda: len(hub.workers) == 2, 30)
        for _ in range(20):
            hub.submit(metadata={"seconds": 0.3})
        victim = processes[0]
        victim_id = None
        deadline = time.monotonic() + 20
        while victim_id is None:  # the victim's worker id: the one whose agent name is proc-0
            assert time.monotonic() < deadline
            victim_id = next(
                (w.worker_id for w in hub.workers.values() if w.agent_name == "proc-0" and w.running), None
            )
            gevent.sleep(0.02)
        held = set(hub.workers[victim_id].running)
        os.kill(victim.pid, signal.SIGKILL)
        assert hub.wait(lambda: completed(hub) == 20, 60)
        for job_id in held:
            job = hub.jobs[job_id]
            assert job.requeued >= 1 and job.history[-1] != victim_id
        assert hub.workers[victim_id].status == "offline"
    finally:
        stop_workers(processes)


def test_reconnect_delays_follow_the_seed_and_stop_at_max_retry(workers):
    taken: list[float] = []
    nobody = f"tcp://127.0.0.1:{get_free_tcp_port()}"
    connection, _ = workers(nobody, max_retry=7, register_timeout=0.05, sleep=taken.append)
    deadline = time.monotonic() + 20
    while connection.error is None:
        assert time.monotonic() < deadline
        gevent.sleep(0.05)
    assert taken == [min(retry * 2, 10) for retry in range(7)] == [0, 2, 4, 6, 8, 10, 10]
    assert str(connection.error) == "Failed to connect to backend after 7 attempts"
    assert isinstance(connection.error, RuntimeError) and not connection.is_connected
    with pytest.raises(RuntimeError, match="Not connected to backend"):
        connection.send_message(object())


def test_a_malformed_frame_at_the_registry_is_skipped(registry, workers):
    hub = registry()
    with SocketManager(zmq, green_context) as noisy:
        noisy.ensure_and_connect("dealer", zmq.DEALER, hub.address, 0)
        raw = noisy.sockets["dealer"]
        raw.send(b"\xff garbage")
        raw.send(b'["not", "an", "object"]')
        raw.send_multipart([b"three", b"frames"])
        assert hub.wait(lambda: hub.skipped == 3, 5)
        noisy.close("dealer", linger=0)
    connection, _ = workers(hub.address)
    assert connection.wait_registered(5)
    hub.submit(metadata={"seconds": 0.01})
    assert hub.wait(lambda: completed(hub) == 1, 10)


def test_wait_for_assignment_and_a_clean_disconnect(registry, workers):
    hub = registry()
    connection, _ = workers(hub.address)
    assert connection.wait_registered(5)
    waiter = gevent.spawn(connection.wait_for_assignment, "known-job", 5)
    gevent.sleep(0.05)
    hub.submit(metadata={"seconds": 0.01}, job_id="known-job")
    assert waiter.get(timeout=6).job_id == "known-job"
    with pytest.raises(TimeoutError):
        connection.wait_for_assignment("never", timeout=0.1)
    worker_id = connection.worker_id
    connection.disconnect()
    assert hub.wait(lambda: hub.workers[worker_id].status == "offline", 5)


def test_a_worker_frozen_past_the_heartbeat_timeout_is_taken_back_and_gets_jobs(registry):
    hub = registry(heartbeat_timeout=1.0)
    agent = f"frozen-{uuid.uuid4().hex[:6]}"
    # it pings every 0.2 s and would reconnect only after 3 s unheard: the freeze is shorter
    process = start_worker(hub.address, agent, 4, TOKEN, "--ping-interval", "0.2", "--pong-timeout", "3")
    try:
        assert hub.wait(lambda: len(hub.workers) == 1, 30)
        (worker,) = hub.workers.values()
        assert hub.wait(lambda: worker.status == "idle", 5)
        identity = worker.identity
        os.kill(process.pid, signal.SIGSTOP)
        try:
            assert hub.wait(lambda: worker.status == "offline", 5)
            gevent.sleep(0.6)  # frozen for the heartbeat timeout and then some
        finally:
            os.kill(process.pid, signal.SIGCONT)
        # it pings again on the same connection: taken back, idle, and asked for jobs again
        assert hub.wait(lambda: worker.status == "idle", 10)
        assert list(hub.workers) == [worker.worker_id] and worker.identity == identity
        assert hub.revived == 1
        jobs = [hub.submit(metadata={"seconds": 0.01}) for _ in range(6)]
        assert hub.wait(lambda: all(hub.jobs[job].status == "completed" for job in jobs), 20)
        assert {hub.jobs[job].history[-1] for job in jobs} == {worker.worker_id}
    finally:
        stop_workers([process])


def test_a_lost_worker_reconnecting_with_its_id_is_taken_back(registry):
    hub = registry(heartbeat_timeout=0.5)
    with SocketManager(zmq, green_context) as peers:
        peers.ensure_and_connect("old", zmq.DEALER, hub.address, zmq.POLLIN)
        peers.send_safe("old", {"type": "register", "token": TOKEN, "worker_id": "", "max_processes": 2})
        worker_id = peers.recv_safe("old", timeout=5)["worker_id"]
        assert hub.wait(lambda: hub.workers[worker_id].status == "offline", 5)
        peers.ensure_and_connect("new", zmq.DEALER, hub.address, zmq.POLLIN)
        peers.send_safe(
            "new", {"type": "register", "token": TOKEN, "worker_id": worker_id, "max_processes": 2}
        )
        assert peers.recv_safe("new", timeout=5)["worker_id"] == worker_id
        assert hub.workers[worker_id].status == "idle" and hub.revived == 1
        hub.submit(metadata={"seconds": 0})
        assert peers.recv_safe("new", timeout=5)["type"] == "availability_request"
        peers.close_all(linger=0)


def test_submit_refuses_what_cannot_travel_and_the_loop_goes_on(registry, workers):
    hub = registry()
    with pytest.raises(ValueError, match="lone surrogate"):
        hub.submit(metadata={"name": "\ud800"})
    with pytest.raises(ValueError, match="finite"):
        hub.submit(metadata={"seconds": float("nan")})
    with pytest.raises(ValueError, match="must be a string"):
        hub.submit(job_type=3)
    job_id = hub.submit(metadata={"seconds": 0})
    with pytest.raises(ValueError, match="already submitted"):
        hub.submit(job_id=job_id)
    with pytest.raises(ValueError, match="timeout"):
        hub.wait(lambda: True, float("inf"))
    with pytest.raises(ValueError, match="heartbeat_timeout"):
        Registry({TOKEN}, heartbeat_timeout=float("nan"))
    connection, _ = workers(hub.address)
    assert connection.wait_registered(5)
    assert hub.wait(lambda: hub.jobs[job_id].status == "completed", 10) and hub.alive


def test_a_job_failing_with_unsendable_text_is_still_reported_failed(registry, workers):
    def fail(assignment):
        raise RuntimeError("bad \udc80 name")

    hub = registry()
    connection, runtime = workers(hub.address, runtime={"job": fail})
    assert connection.wait_registered(5)
    job_id = hub.submit()
    assert hub.wait(lambda: hub.jobs[job_id].status == "failed", 10)
    assert hub.jobs[job_id].error == "RuntimeError: bad \\udc80 name"
