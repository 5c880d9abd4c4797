"""The registry protocol on the wire: the exact JSON of every message, checked against seed 002's field lists.

Upstream speaks WebSocket, so no byte-for-byte comparison with its code is
possible; instead each side talks to a bare socket driven by the test, and every
message seen is compared, field for field, with what the seed's classes and
upstream's worker send. The field lists below are copied from the seed's text,
not imported from the example, so the example cannot drift along with them.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
import uuid

import gevent
import pytest

from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.registry.connection import BackendConnection
from examples.registry.registry import Registry
from examples.registry.worker import STATUS_INTERVAL, WorkerRuntime

pytestmark = pytest.mark.timeout(60)
TOKEN = "wire-token"

# seed 002, field for field (the dataclasses' declarations, in order)
SEED_FIELDS = {
    "AvailabilityRequest": ["type", "job_id", "job_type", "room_id", "room_name", "agent_name", "namespace"],
    "AvailabilityResponse": ["type", "job_id", "available", "error", "token"],
    "JobAssignment": [
        "type",
        "job_id",
        "job_type",
        "room_id",
        "room_name",
        "agent_name",
        "namespace",
        "token",
        "url",
        "room_options",
        "metadata",
    ],  # fmt: skip
    "JobTermination": ["type", "job_id", "reason"],
    "JobUpdate": [
        "type",
        "job_id",
        "status",
        "error",
        "participant_identity",
        "participant_name",
        "participant_metadata",
    ],  # fmt: skip
    "ServerMessage": [
        "type",
        "worker_id",
        "success",
        "message",
        "job_id",
        "job_type",
        "room_id",
        "room_name",
        "agent_name",
        "namespace",
        "token",
        "url",
    ],  # fmt: skip
    "WorkerMessage": [
        "type",
        "worker_id",
        "agent_name",
        "namespace",
        "version",
        "capabilities",
        "status",
        "load",
        "job_count",
        "job_id",
        "available",
        "participant_identity",
        "participant_name",
        "participant_metadata",
        "error",
        "registry_uuid",
        "max_capacity",
        "current_load",
        "token",
        "load_threshold",
        "max_processes",
    ],  # fmt: skip
    "WorkerPing": ["type", "timestamp"],
    "WorkerPong": ["type", "timestamp"],
}
# which class carries each message type; ``register`` replies also carry the ``payload``
# the seed's connection reads (``data.get("payload", {})``)
CLASS_OF = {
    "register": "WorkerMessage",
    "status_update": "WorkerMessage",
    "ping": "WorkerPing",
    "availability_response": "AvailabilityResponse",
    "job_update": "JobUpdate",
}
SERVER_CLASS_OF = {
    "register": "ServerMessage",
    "pong": "WorkerPong",
    "availability_request": "AvailabilityRequest",
    "job_assignment": "JobAssignment",
    "job_termination": "JobTermination",
}


def assert_seed_shape(message: dict, classes: dict) -> None:
    """Every field is one the seed declares for the message's class, in the declared order, none null."""
    fields = SEED_FIELDS[classes[message["type"]]] + (["payload"] if classes is SERVER_CLASS_OF else [])
    names = list(message)
    assert set(names) <= set(fields), (
        f"{message['type']} has fields the seed lacks: {set(names) - set(fields)}"
    )
    assert names == sorted(names, key=fields.index), f"{message['type']} fields out of the seed's order"
    assert None not in message.values()


class FakeRegistry:
    """A bare ROUTER the test drives by hand; records every JSON message a worker sends."""

    def __init__(self) -> None:
        self.socket = green_context.socket(zmq.ROUTER)
        self.socket.linger = 0
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.address = f"tcp://127.0.0.1:{port}"
        self.identity = b""
        self.seen: list[dict] = []

    def recv(self, timeout: float = 5.0) -> dict:
        if not self.socket.poll(timeout * 1000):
            raise AssertionError("no message from the worker")
        self.identity, payload = self.socket.recv_multipart()
        message = json.loads(payload)
        assert_seed_shape(message, CLASS_OF)
        self.seen.append(message)
        return message

    def expect(self, kind: str, timeout: float = 5.0, **where) -> dict:
        """The next message of type ``kind`` with the values ``where``; pings are answered.

        The messages passed over (kept in ``seen``) are shape-checked too: periodic
        status updates interleave with the ones a job change sends.
        """
        deadline = time.monotonic() + timeout
        while True:
            message = self.recv(max(deadline - time.monotonic(), 0.01))
            if message["type"] == kind and all(message.get(key) == value for key, value in where.items()):
                return message
            if message["type"] == "ping":
                self.send({"type": "pong", "timestamp": message["timestamp"]})

    def send(self, message: dict) -> None:
        self.socket.send_multipart([self.identity, json.dumps(message).encode()])

    def close(self) -> None:
        self.socket.close(linger=0)


@pytest.fixture
def fake():
    registry = FakeRegistry()
    yield registry
    registry.close()


@pytest.fixture
def connect():
    made = []

    def make(address: str, agent: str, **runtime) -> tuple[BackendConnection, WorkerRuntime]:
        connection = BackendConnection(
            TOKEN, agent_id=agent, backend_url=address, max_processes=4, ping_interval=0.2, register_timeout=2
        )
        worker = WorkerRuntime(connection, **runtime)
        made.append((connection, worker))
        connection.connect()
        return connection, worker

    yield make
    for connection, worker in made:
        worker.stop()
        connection.disconnect()


def test_every_worker_message_has_the_seed_shape_and_upstream_values(fake, connect):
    agent = f"wire-{uuid.uuid4().hex[:6]}"
    connection, worker = connect(fake.address, agent, status_interval=0.2)
    assert fake.expect("register") == {
        "type": "register",
        "worker_id": "",
        "agent_name": agent,
        "namespace": "default",
        "version": "1.0.0",
        "capabilities": ["room", "voice", "stt", "tts"],
        "registry_uuid": "default",
        "token": TOKEN,
        "load_threshold": 0.75,
        "max_processes": 4,
    }
    # a newer registry adds fields: they are ignored, and counted
    fake.send({"type": "register", "success": True, "worker_id": "w-1", "payload": {"a": 1}, "region": "eu"})
    assert connection.wait_registered(5) and connection.worker_id == "w-1"
    assert os.environ[f"VIDEOSDK_WORKER_ID_{agent.upper()}"] == "w-1"
    assert connection.unknown_fields == 1
    ping = fake.expect("ping")
    assert set(ping) == {"type", "timestamp"} and isinstance(ping["timestamp"], int)
    fake.send({"type": "pong", "timestamp": ping["timestamp"], "rtt_hint": 3})
    idle = {
        "type": "status_update",
        "worker_id": "w-1",
        "agent_name": agent,
        "status": "available",
        "load": 0.0,
        "job_count": 0,
    }
    # periodic: sent every status_interval although nothing changed
    started = time.monotonic()
    assert [fake.expect("status_update") for _ in range(3)] == [idle] * 3
    assert time.monotonic() - started < 2

    fake.send(
        {"type": "availability_request", "job_id": "j1", "job_type": "room", "agent_name": agent, "x": 1}
    )
    assert fake.expect("availability_response") == {
        "type": "availability_response",
        "job_id": "j1",
        "available": True,
        "token": TOKEN,
    }
    # upstream's later JobAssignment.wait is tolerated
    fake.send({"type": "job_assignment", "job_id": "j1", "wait": True, "metadata": {"seconds": 0.2}})
    assert fake.expect("job_update") == {"type": "job_update", "job_id": "j1", "status": "running"}
    assert fake.expect("status_update", job_count=1) == dict(idle, load=0.25, job_count=1)
    assert fake.expect("job_update") == {"type": "job_update", "job_id": "j1", "status": "completed"}

    fake.send({"type": "job_assignment", "job_id": "j2", "metadata": {"seconds": 30}})
    assert fake.expect("job_update") == {"type": "job_update", "job_id": "j2", "status": "running"}
    fake.send({"type": "job_termination", "job_id": "j2", "reason": "room closed"})
    assert fake.expect("job_update") == {"type": "job_update", "job_id": "j2", "status": "cancelled"}

    worker.drain()
    assert fake.expect("status_update", status="draining") == dict(idle, status="draining")
    fake.send({"type": "availability_request", "job_id": "j3"})
    assert fake.expect("availability_response") == {
        "type": "availability_response",
        "job_id": "j3",
        "available": False,
        "error": "Worker at capacity or draining",
    }
    assert connection.skipped == 0
    worker.stop()
    connection.disconnect()
    assert fake.expect("status_update", status="offline") == {
        "type": "status_update",
        "worker_id": "w-1",
        "status": "offline",
        "load": 0.0,
        "job_count": 0,
    }
    assert {message["type"] for message in fake.seen} == set(CLASS_OF)


def test_status_updates_are_periodic_every_30_seconds_by_default():
    assert STATUS_INTERVAL == 30.0
    assert inspect.signature(WorkerRuntime).parameters["status_interval"].default == STATUS_INTERVAL
    with pytest.raises(ValueError, match="status_interval"):
        WorkerRuntime(BackendConnection(TOKEN), status_interval=0)


def test_a_policy_refusal_says_why(fake, connect):
    connection, _ = connect(fake.address, f"wire-{uuid.uuid4().hex[:6]}", accept=lambda request: False)
    fake.expect("register")
    fake.send({"type": "register", "success": True, "worker_id": "w-2"})
    assert connection.wait_registered(5)
    fake.send({"type": "availability_request", "job_id": "j"})
    assert fake.expect("availability_response") == {
        "type": "availability_response",
        "job_id": "j",
        "available": False,
        "error": "Job refused by the worker's policy",
    }


@pytest.mark.parametrize("stored", ["", "kept-id"])
def test_accepted_without_an_id_the_worker_never_presents_a_placeholder(fake, connect, stored):
    agent = f"anon-{uuid.uuid4().hex[:6]}"
    key = f"VIDEOSDK_WORKER_ID_{agent.upper()}"
    if stored:
        os.environ[key] = stored
    try:
        connection, _ = connect(fake.address, agent, status_interval=0.1)
        assert fake.expect("register")["worker_id"] == stored
        fake.send({"type": "register", "success": True})
        assert connection.wait_registered(5)
        assert connection.worker_id == (stored or None)
        status = fake.expect("status_update")
        if stored:
            assert status["worker_id"] == stored
        else:
            assert "worker_id" not in status and "unregistered" not in json.dumps(status)
            assert key not in os.environ
    finally:
        os.environ.pop(key, None)


def test_the_worker_skips_hostile_registry_messages_and_keeps_working(fake, connect):
    connection, _ = connect(fake.address, f"wire-{uuid.uuid4().hex[:6]}")
    fake.expect("register")
    for reply in (
        b'{"type": "register", "success": "yes", "worker_id": "w"}',
        b'{"type": "register", "success": true, "worker_id": ["w"]}',
        b'{"type": "register", "success": true, "worker_id": "w\\u0000"}',
        b'{"type": "register", "success": true, "worker_id": "w", "payload": [1]}',
    ):
        fake.socket.send_multipart([fake.identity, reply])
    fake.send({"type": "register", "success": True, "worker_id": "w-3"})
    assert connection.wait_registered(5)
    hostile = [
        b"\xff garbage",
        b'{"type": "job_assignment", "job_id": "\\ud800"}',
        b'{"type": "job_assignment", "job_id": "j", "metadata": {"seconds": NaN}}',
        b'{"type": "job_assignment", "job_id": ["j"]}',
        b'{"type": "job_assignment", "job_id": "j", "metadata": ' + b"[" * 40 + b"]" * 40 + b"}",
        b'{"type": "availability_request", "job_id": 7}',
        b'{"type": "job_termination", "job_id": "j", "reason": {"a": 1}}',
        b'{"type": "surprise"}',
        b"[1, 2]",
    ]
    for payload in hostile:
        fake.socket.send_multipart([fake.identity, payload])
    deadline = time.monotonic() + 5
    while connection.skipped < len(hostile) + 4:
        assert time.monotonic() < deadline, f"only {connection.skipped} skipped"
        gevent.sleep(0.02)
    assert (
        connection.skipped == len(hostile) + 4 and connection.is_connected and connection.worker_id == "w-3"
    )
    fake.send({"type": "availability_request", "job_id": "ok"})
    assert fake.expect("availability_response")["available"] is True


# -- what the registry sends ---------------------------------------------------------------


@pytest.fixture
def hub():
    registry = Registry({TOKEN}, heartbeat_timeout=5, availability_timeout=2)
    yield registry
    registry.close()


@pytest.fixture
def dealer(hub):
    socket = green_context.socket(zmq.DEALER)
    socket.linger = 0
    socket.connect(hub.address)
    yield socket
    socket.close(linger=0)


def ask(socket, message: dict | None = None, timeout: float = 5.0) -> dict:
    if message is not None:
        socket.send(json.dumps(message).encode())
    if not socket.poll(timeout * 1000):
        raise AssertionError("no answer from the registry")
    answer = json.loads(socket.recv())
    assert_seed_shape(answer, SERVER_CLASS_OF)
    return answer


def test_every_registry_message_has_the_seed_shape(hub, dealer, caplog):
    caplog.set_level(logging.DEBUG, logger="registry")
    refused = green_context.socket(zmq.DEALER)
    refused.linger = 0
    refused.connect(hub.address)
    try:
        assert ask(refused, {"type": "register", "token": "wrong"}) == {
            "type": "register",
            "success": False,
            "message": "invalid auth token",
        }
    finally:
        refused.close(linger=0)
    # a newer worker's extra fields are ignored and counted
    register = {"type": "register", "worker_id": "", "agent_name": "a", "token": TOKEN, "max_processes": 2}
    reply = ask(dealer, dict(register, gpu=True, zone="b"))
    worker_id = reply["worker_id"]
    assert reply == {
        "type": "register",
        "success": True,
        "worker_id": worker_id,
        "payload": {"registry": "agentzero", "heartbeat_timeout": 5},
    }
    assert hub.unknown_fields == 2
    noted = [r.getMessage() for r in caplog.records if r.name == "registry" and r.levelno == logging.DEBUG]
    assert noted == ["ignored 2 unknown field(s) of a register: ['gpu', 'zone']"]
    assert ask(dealer, {"type": "ping", "timestamp": 5, "seq": 1}) == {"type": "pong", "timestamp": 5}
    assert ask(dealer, {"type": "ping"}) == {"type": "pong"}
    job_id = hub.submit(job_type="room", metadata={"seconds": 1})
    assert ask(dealer) == {
        "type": "availability_request",
        "job_id": job_id,
        "job_type": "room",
        "room_id": "",
        "room_name": "",
        "agent_name": "a",
        "namespace": "",
    }
    assignment = ask(
        dealer, {"type": "availability_response", "job_id": job_id, "available": True, "token": TOKEN}
    )
    assert assignment == {
        "type": "job_assignment",
        "job_id": job_id,
        "job_type": "room",
        "room_id": "",
        "room_name": "",
        "agent_name": "a",
        "namespace": "",
        "token": assignment["token"],
        "url": "",
        "metadata": {"seconds": 1},
    }
    assert isinstance(assignment["token"], str) and assignment["token"]
    dealer.send(json.dumps({"type": "job_update", "job_id": job_id, "status": "running", "pid": 9}).encode())
    assert hub.wait(lambda: hub.unknown_fields == 4, 5)
    assert hub.terminate(job_id, reason="room closed")
    assert ask(dealer) == {"type": "job_termination", "job_id": job_id, "reason": "room closed"}
    dealer.send(json.dumps({"type": "job_update", "job_id": job_id, "status": "cancelled"}).encode())
    assert hub.wait(lambda: hub.jobs[job_id].status == "cancelled", 5)
    assert hub.workers[worker_id].agent_name == "a" and hub.skipped == 0


def test_upstream_statuses_drive_the_registry(hub, dealer):
    reply = ask(
        dealer, {"type": "register", "worker_id": "", "agent_name": "a", "token": TOKEN, "max_processes": 4}
    )
    worker = hub.workers[reply["worker_id"]]

    def status(**fields) -> None:
        dealer.send(json.dumps(dict({"type": "status_update", "agent_name": "a"}, **fields)).encode())

    status(worker_id=worker.worker_id, status="draining", load=0.0, job_count=0)
    assert hub.wait(lambda: worker.draining, 5)
    hub.submit(metadata={"seconds": 0})
    gevent.sleep(0.3)
    assert not dealer.poll(0) and not worker.can_take()  # a draining worker is asked for nothing
    status(status="available", load=0.5, job_count=2)  # worker_id may be absent (registered without one)
    assert hub.wait(lambda: not worker.draining and worker.status == "busy", 5)
    assert ask(dealer)["type"] == "availability_request"
    status(worker_id=worker.worker_id, status="offline", load=0.0, job_count=0)
    assert hub.wait(lambda: worker.status == "offline", 5)
