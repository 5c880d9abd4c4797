"""What a hostile but authenticated peer can make the registry keep, and log, is bounded.

Each test runs a real registry on loopback tcp, a well-behaved worker where the
point is that it is left alone (a real ``BackendConnection``), and the hostile
peer as plain DEALER sockets driven by the test. Memory is measured as the
sizes of the registry's tables after thousands of registrations or jobs, not
by the clock.
"""

from __future__ import annotations

import json
import logging
import uuid

import gevent
import pytest

from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.registry.connection import BackendConnection
from examples.registry.registry import Registry
from examples.registry.worker import WorkerRuntime
from tests.examples import registry_helpers
from tests.examples.registry_helpers import registries

pytestmark = pytest.mark.timeout(120)
TOKEN = "bounds-token"


@pytest.fixture
def registry():
    yield from registries(TOKEN, heartbeat_timeout=30, availability_timeout=0.5)


@pytest.fixture
def dealers():
    yield from registry_helpers.dealers()


@pytest.fixture
def good_worker():
    made = []

    def make(hub: Registry):
        connection = BackendConnection(
            TOKEN, agent_id=f"good-{uuid.uuid4().hex[:6]}", backend_url=hub.address, max_processes=16
        )
        runtime = WorkerRuntime(connection)
        made.append((connection, runtime))
        connection.connect()
        assert connection.wait_registered(5)
        return hub.workers[connection.worker_id], runtime

    yield make
    for connection, runtime in made:
        runtime.stop()
        connection.disconnect()


def send(socket, message: dict) -> None:
    socket.send(json.dumps(message).encode())


def answer(socket, timeout: float = 5.0) -> dict:
    assert socket.poll(timeout * 1000), "no answer from the registry"
    return json.loads(socket.recv())


def register(socket, **fields) -> dict:
    send(socket, dict({"type": "register", "token": TOKEN, "agent_name": "hostile"}, **fields))
    return answer(socket)


def snapshot(hub: Registry, worker) -> tuple:
    return (
        worker.worker_id,
        worker.identity,
        worker.status,
        worker.draining,
        worker.max_processes,
        worker.completed,
        hub._by_identity.get(worker.identity),
        hub.workers.get(worker.worker_id) is worker,
    )


def run_jobs(hub: Registry, count: int) -> list[str]:
    jobs = [hub.submit(metadata={"seconds": 0}) for _ in range(count)]
    assert hub.wait(hub.all_final, 60)
    return jobs


def registry_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "registry"]


# -- 1. workers: one per connection, at most max_workers, offline ones forgotten ---------------------


def test_a_connection_holds_one_worker_however_many_registers_it_sends(registry, dealers, good_worker):
    hub = registry()
    good, _ = good_worker(hub)
    state = snapshot(hub, good)
    hostile = dealers(hub.address)
    held = register(hostile)["worker_id"]
    for batch in range(20):  # 2,000 registers, each naming a new worker id
        for n in range(100):
            send(hostile, {"type": "register", "token": TOKEN, "worker_id": f"w-{batch}-{n}"})
        for n in range(100):
            assert answer(hostile) == {
                "type": "register",
                "success": False,
                "message": f"this connection is registered as worker {held}, not w-{batch}-{n}",
            }
    assert hub.over_limit == 2000
    assert len(hub.workers) == 2 and len(hub._by_identity) == 2
    # a register naming its own worker, or none, renews it: same id, nothing new
    assert register(hostile, worker_id=held)["worker_id"] == held
    assert register(hostile)["worker_id"] == held
    assert len(hub.workers) == 2 and hub.over_limit == 2000
    # nor does a connection that sends a bad token (and so loses its worker) and registers again
    for _ in range(500):
        assert register(hostile, token="wrong")["message"] == "invalid auth token"
        held = register(hostile)["worker_id"]
    assert len(hub.workers) == 2 and len(hub._by_identity) == 2 and hub.refusals == 500
    assert snapshot(hub, good) == state
    send(hostile, {"type": "status_update", "status": "draining"})  # so that jobs go to the good worker
    assert hub.wait(lambda: hub.workers[held].draining, 5)
    jobs = run_jobs(hub, 5)
    assert {hub.jobs[job].history[-1] for job in jobs} == {good.worker_id} and hub.alive


def test_past_max_workers_a_register_is_refused_on_the_wire_and_live_workers_stay(
    registry, dealers, good_worker, caplog
):
    hub = registry(max_workers=5)
    good, _ = good_worker(hub)
    state = snapshot(hub, good)
    peers = [dealers(hub.address, routing_id=b"hostile-%d" % n) for n in range(10)]
    with caplog.at_level(logging.WARNING, logger="registry"):
        replies = [register(peer) for peer in peers]
        gevent.sleep(0.05)
    accepted = [reply["worker_id"] for reply in replies if reply["success"]]
    assert len(accepted) == 4 and [reply["success"] for reply in replies] == [True] * 4 + [False] * 6
    for reply in replies[4:]:
        assert reply == {
            "type": "register",
            "success": False,
            "message": "the registry is full (5 live workers)",
        }
    assert hub.over_limit == 6 and len(hub.workers) == 5 and len(hub._by_identity) == 5
    refused = [line for line in registry_lines(caplog) if "is full" in line]
    full = "the registry is full (5 live workers)"
    assert refused == [f"refused a register from b'hostile-{n}': {full}" for n in range(4, 10)]
    assert snapshot(hub, good) == state
    # one hostile worker goes offline: a newcomer takes its place, and the live ones stay
    send(peers[0], {"type": "status_update", "status": "offline"})
    assert hub.wait(lambda: not hub.workers[accepted[0]].online, 5)
    newcomer = register(peers[9])
    assert newcomer["success"] is True and accepted[0] not in hub.workers and hub.forgotten == 1
    assert set(hub.workers) == {good.worker_id, newcomer["worker_id"], *accepted[1:]}
    assert snapshot(hub, good) == state and hub.alive


def test_offline_workers_are_forgotten_and_get_their_id_back_if_they_return(registry, dealers, good_worker):
    hub = registry(forget_after=0.5)
    good, _ = good_worker(hub)
    peers = [dealers(hub.address) for _ in range(20)]
    ids = [register(peer, max_processes=2)["worker_id"] for peer in peers]
    assert len(hub.workers) == 21
    for peer in peers:
        send(peer, {"type": "status_update", "status": "offline"})
    assert hub.wait(lambda: len(hub.workers) == 1, 10), len(hub.workers)
    assert list(hub.workers) == [good.worker_id] and list(hub._by_identity) == [good.identity]
    assert hub.forgotten == 20 and good.online
    # a forgotten worker that comes back, on a new connection, presents its id and gets it back
    back = dealers(hub.address)
    assert register(back, worker_id=ids[0])["worker_id"] == ids[0]
    assert hub.workers[ids[0]].online and len(hub.workers) == 2


def test_thousands_of_registrations_leave_the_worker_table_flat(registry, good_worker):
    hub = registry(max_workers=16)
    good, _ = good_worker(hub)
    sizes = []
    for n in range(2000):  # connect, register, go offline, hang up: a new identity each time
        peer = green_context.socket(zmq.DEALER)
        peer.linger = 0
        try:
            peer.connect(hub.address)
            worker_id = register(peer)["worker_id"]
            send(peer, {"type": "status_update", "status": "offline"})
            assert hub.wait(lambda worker_id=worker_id: not hub.workers[worker_id].online, 5)
        finally:
            peer.close(linger=0)
        if n in (499, 999, 1999):
            sizes.append((len(hub.workers), len(hub._by_identity)))
    assert sizes == [(16, 16)] * 3
    assert hub.forgotten == 2000 - 15 and hub.over_limit == 0 and good.online
    jobs = run_jobs(hub, 3)
    assert {hub.jobs[job].history[-1] for job in jobs} == {good.worker_id}


# -- 2. finished jobs: only the max_finished_jobs that finished last are kept -------------------------


def test_thousands_of_jobs_leave_the_job_table_flat(registry, good_worker):
    hub = registry(max_finished_jobs=50)
    good, _ = good_worker(hub)
    sizes = []
    for _ in range(4):
        run_jobs(hub, 500)
        sizes.append((len(hub.jobs), len(hub._finished)))
    assert sizes == [(50, 50)] * 4 and hub.pruned == 1950 and good.completed == 2000
    kept = list(hub._finished)
    assert list(hub.jobs) != [] and set(hub.jobs) == set(kept)
    assert all(
        hub.jobs[job].status == "completed" and hub.jobs[job].history == [good.worker_id] for job in kept
    )


def test_a_pruned_job_is_unknown_and_the_kept_ones_read_as_before(registry, dealers, caplog):
    hub = registry(max_finished_jobs=2)
    worker = dealers(hub.address)
    worker_id = register(worker, max_processes=1)["worker_id"]
    endings = [("completed", None), ("failed", "boom"), ("completed", None), ("cancelled", None)]
    for n, (status, error) in enumerate(endings):
        job_id = hub.submit(job_id=f"job-{n}", metadata={"n": n})
        assert answer(worker)["job_id"] == job_id
        send(worker, {"type": "availability_response", "job_id": job_id, "available": True})
        assert answer(worker)["type"] == "job_assignment"
        update = {"type": "job_update", "job_id": job_id, "status": status}
        send(worker, dict(update, error=error) if error else update)
        assert hub.wait(lambda job_id=job_id, status=status: hub.jobs[job_id].status == status, 5)
    assert list(hub.jobs) == ["job-2", "job-3"] and hub.pruned == 2
    assert hub.jobs["job-2"].history == [worker_id] and hub.jobs["job-3"].status == "cancelled"
    assert hub.all_final() and not hub.terminate("job-0") and not hub.terminate("job-3")
    # a late update about a pruned job is about an unknown job: counted and logged once, harmless
    skipped = hub.skipped
    with caplog.at_level(logging.DEBUG, logger="registry"):
        send(worker, {"type": "job_update", "job_id": "job-0", "status": "failed"})
        assert hub.wait(lambda: hub.skipped == skipped + 1, 5)
        gevent.sleep(0.05)
    assert registry_lines(caplog) == [f"skipped a job_update from {worker_id} for unknown job 'job-0'"]
    assert list(hub.jobs) == ["job-2", "job-3"] and hub.stale == 0
    assert hub.submit(job_id="job-0") == "job-0"  # the id of a pruned job is free again
