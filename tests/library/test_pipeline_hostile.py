"""Forged and malformed events, jobs and requests: each dropped, counted and logged once.

None of them stops the manager's loop or changes the jobs of a worker that
behaves: a hand-driven worker holds job J throughout and finishes it at the end.
"""

from __future__ import annotations

import logging

import gevent
import pytest
import zmq.green

from agentzero.core import SocketManager
from agentzero.pipeline.loading import load_step
from agentzero.pipeline.protocol import COMPLETED, DISPATCHED, new_job
from agentzero.pipeline.worker import StepWorker
from agentzero.zero import context as green_context
from tests.library.pipeline_fakes import HandWorker, start_manager, wait_until

pytestmark = pytest.mark.timeout(60)

LIMIT = 64 * 1024
GOOD = {"worker_id": "w-forged", "job_type": "noop", "address": "tcp://127.0.0.1:5999", "concurrency": 1}


def raw(text: str) -> bytes:
    """A payload as a hostile peer writes it: NaN, Infinity and lone surrogates, which
    agentzero's JSON serializer refuses as it reads them (counted as unreadable)."""
    return text.encode("utf-8")


# (what the test sends, the kind of problem the manager counts)
EVENTS = [
    ([b"available", b"[1, 2]"], "malformed event"),
    ([b"available", raw('{"worker_id": "\\ud800", "job_type": "noop"}')], "unreadable event"),
    ([b"available", raw('{"worker_id": "", "job_type": "noop"}')], "bad worker id"),
    ({**GOOD, "job_type": "no-such-step"}, "unknown job type"),
    ({**GOOD, "address": "not-an-address"}, "bad address"),
    ({**GOOD, "address": "tcp://127.0.0.1:99999"}, "bad address"),
    ({**GOOD, "address": "tcp://127.0.0.1:0"}, "bad address"),
    ({**GOOD, "address": 12}, "bad address"),
    ({**GOOD, "address": "tcp://" + "a" * 400 + ":1"}, "bad address"),
    (
        [
            b"available",
            raw(
                '{"worker_id": "w", "job_type": "noop", "address": "tcp://127.0.0.1:5999", '
                '"concurrency": Infinity}'
            ),
        ],
        "unreadable event",
    ),
    (
        [
            b"available",
            raw(
                '{"worker_id": "w", "job_type": "noop", "address": "tcp://127.0.0.1:5999", '
                '"concurrency": NaN}'
            ),
        ],
        "unreadable event",
    ),
    ({**GOOD, "concurrency": -1}, "bad concurrency"),
    ({**GOOD, "concurrency": True}, "bad concurrency"),
    ({**GOOD, "concurrency": 10**6}, "bad concurrency"),
    ({**GOOD, "concurrency": "4"}, "bad concurrency"),
    ({**GOOD, "pid": -5}, "bad pid"),
    ([b"metric", raw('{"worker_id": "hash-a", "done": Infinity}')], "unreadable event"),
    ([b"logs", b'{"msg": 5}'], "malformed event"),
    ([b"job:success", raw('{"job_id": "\\udc80", "token": "00", "worker_id": "x"}')], "unreadable event"),
    ([b"job:success", b'{"job_id": "J", "token": 7, "worker_id": "x"}'], "bad token"),
    (
        [b"job:success", b'{"job_id": "J", "token": "0123456789abcdef", "worker_id": "ghost"}'],
        "unknown worker",
    ),
    ([b"job:success", b'"not an object"'], "malformed event"),
    ([b"no-such-topic", b"{}"], "unknown topic"),
    ([b"\xff\xfe", b"{}"], "unknown topic"),
    ([b"job:success"], "unreadable event"),
    ([b"job:success", b"{}", b"{}"], "unreadable event"),
    ([b"job:success", b"{not json"], "unreadable event"),
    ([b"job:success", b"[" * 20000 + b"]" * 20000], "unreadable event"),
    ([b"job:success", b'{"pad": "' + b"x" * (LIMIT + 10) + b'"}'], "oversized event"),
]


@pytest.fixture
def setup():
    manager = start_manager(heartbeat_timeout=30.0, max_message_size=LIMIT)
    holder = HandWorker(manager, "noop", "holder").announce()
    manager.submit(new_job("noop", {"n": 1}, job_id="J"))
    dispatch = holder.take()
    assert dispatch["job_id"] == "J"
    forger = SocketManager(zmq.green, green_context)
    forger.ensure_and_connect("pub", zmq.green.PUB, manager.addresses["events"], 0)
    wait_until(  # the slow joiner: a log line gets through once the PUB is connected
        lambda: (
            forger.publish_safe("pub", "logs", {"msg": "hello"})
            and gevent.sleep(0.02) is None
            and "hello" in manager.logs
        ),
        what="the forger's PUB connected",
    )
    yield manager, holder, dispatch, forger
    forger.close_all(linger=0)
    holder.close()
    manager.stop()


def send(forger, message) -> None:
    if isinstance(message, dict):
        forger.publish_safe("pub", "available", message)
    else:
        forger.sockets["pub"].send_multipart(message)


def assert_untouched(manager, dispatch) -> None:
    job = manager.jobs["J"]
    assert job.state == DISPATCHED and job.worker_id == "holder" and job.token == dispatch["token"]
    assert set(manager.workers) == {"holder"}
    assert manager.bad_messages["internal error"] == 0 and not manager._loop.dead


@pytest.mark.parametrize(
    ("message", "kind"), EVENTS, ids=[f"{i}-{kind}" for i, (_, kind) in enumerate(EVENTS)]
)
def test_each_forged_or_malformed_event_is_dropped_counted_and_logged_once(setup, message, kind, caplog):
    manager, holder, dispatch, forger = setup
    caplog.set_level(logging.WARNING, logger="pipeline.manager")
    send(forger, message)
    wait_until(lambda: manager.bad_messages[kind] == 1, what=f"one {kind!r} counted")
    gevent.sleep(0.05)
    assert sum(manager.bad_messages.values()) == 1, manager.bad_messages
    dropped = [record for record in caplog.records if kind in record.getMessage()]
    assert len(dropped) == 1, [record.getMessage() for record in caplog.records]
    assert_untouched(manager, dispatch)
    holder.report("job:success", dispatch, result={"n": 1})  # the manager still works
    wait_until(lambda: manager.jobs["J"].state == COMPLETED, what="J completed")


def test_events_of_a_known_worker_cannot_touch_another_workers_job(setup):
    manager, holder, dispatch, forger = setup
    other = HandWorker(manager, "noop", "other").announce()
    try:
        stale = manager.stale_events
        forged = {"job_id": "J", "worker_id": "other", "job_type": "noop"}
        for token in ("0123456789abcdef", dispatch["token"]):  # a guess, then the real token
            forger.publish_safe("pub", "job:success", {**forged, "token": token, "result": "forged"})
        forger.publish_safe("pub", "job:failed", {**forged, "token": dispatch["token"], "reason": "forged"})
        wait_until(lambda: manager.stale_events == stale + 3, what="three stale events")
        # the holder's id with a wrong token: stale too
        forger.publish_safe("pub", "job:success", {**forged, "worker_id": "holder", "token": "f" * 16})
        wait_until(lambda: manager.stale_events == stale + 4, what="a fourth stale event")
        # a worker announcing itself under the holder's id, elsewhere
        forger.publish_safe("pub", "available", {**GOOD, "worker_id": "holder", "address": other.address})
        wait_until(lambda: manager.bad_messages["conflicting worker"] == 1, what="the conflict counted")
        assert manager.workers["holder"].address == holder.address
        assert_untouched_by_others(manager, dispatch)
    finally:
        other.close()
    holder.report("job:success", dispatch, result={"n": 1})
    holder.report("job:success", dispatch, result={"n": 2})  # a duplicate: stale
    wait_until(lambda: manager.jobs["J"].state == COMPLETED, what="J completed")
    wait_until(lambda: manager.stale_events == stale + 5, what="the duplicate counted as stale")
    assert manager.jobs["J"].result == {"n": 1}


def assert_untouched_by_others(manager, dispatch) -> None:
    job = manager.jobs["J"]
    assert job.state == DISPATCHED and job.worker_id == "holder" and job.token == dispatch["token"]


def ask_raw(client, frame: bytes) -> dict:
    client.sockets["status"].send(frame)
    reply = client.recv_safe("status", timeout=5)
    assert reply is not None
    return reply


def test_each_malformed_request_gets_an_error_reply_and_the_manager_goes_on(setup, caplog):
    manager, holder, dispatch, forger = setup
    caplog.set_level(logging.WARNING, logger="pipeline.manager")
    requests = [
        (raw('{"command": "status", "job_id": "\\ud800"}'), "unreadable request"),
        (b'{"command": "status", "job_id": ["J"]}', "bad job id"),
        (b'{"command": "status", "job_id": "' + b"j" * 300 + b'"}', "bad job id"),
        (b'["status"]', "unknown request"),
        (b'{"command": "shutdown"}', "unknown request"),
        (raw('{"command": NaN}'), "unreadable request"),
        (b"\xff not json", "unreadable request"),
        (b'{"pad": "' + b"x" * (LIMIT + 10) + b'"}', "unreadable request"),
    ]
    with SocketManager(zmq.green, green_context) as client:
        client.ensure_and_connect("status", zmq.green.REQ, manager.addresses["status"], 0)
        for frame, kind in requests:
            before = manager.bad_messages[kind]
            reply = ask_raw(client, frame)
            assert "error" in reply and set(reply) == {"error"}, reply
            assert manager.bad_messages[kind] == before + 1
        # a job whose id the serializer refuses never becomes a job: the request is unreadable
        before = manager.bad_messages["unreadable request"]
        rejected = ask_raw(
            client, raw('{"command": "submit", "job": {"id": "\\ud800x", "pipeline": "noop"}}')
        )
        assert set(rejected) == {"error"} and "surrogate" in rejected["error"]
        assert manager.bad_messages["unreadable request"] == before + 1
        assert "\ud800x" not in manager.jobs
        known = ask_raw(client, b'{"command": "status", "job_id": "J"}')
        assert known["state"] == "dispatched"
        client.close("status", linger=0)
    assert sum(manager.bad_messages.values()) == len(requests) + 1
    logged = [r for r in caplog.records if r.getMessage().startswith("dropped a message")]
    assert len(logged) == len(requests) + 1
    assert_untouched(manager, dispatch)


def test_jobs_with_bad_ids_or_unsendable_data_fail_alone(setup):
    manager, holder, dispatch, forger = setup
    with SocketManager(zmq.green, green_context) as client:
        client.ensure_and_connect("jobs", zmq.green.PUSH, manager.addresses["jobs"], 0)
        client.sockets["jobs"].send(raw('{"id": "\\ud800", "pipeline": "noop"}'))
        client.sockets["jobs"].send(raw('{"id": "K", "pipeline": "noop", "instructions": {"x": "\\udfff"}}'))
        client.sockets["jobs"].send(
            b'{"id": "big", "pipeline": "noop", "pad": "' + b"x" * (LIMIT + 1) + b'"}'
        )
        wait_until(lambda: manager.rejected_count == 3, what="jobs handled")
        client.close("jobs", linger=0)
    # lone surrogates are refused by the serializer as the jobs are read, before they are jobs
    reasons = [entry["reason"] for entry in manager.rejected]
    assert "unreadable job" in reasons[0] and "surrogate" in reasons[0]
    assert "unreadable job" in reasons[1] and "surrogate" in reasons[1]
    assert "too large" in reasons[2]
    assert "K" not in manager.jobs
    holder.report("job:success", dispatch, result={"n": 1})
    wait_until(lambda: manager.jobs["J"].state == COMPLETED, what="J completed")
    assert not manager._loop.dead and manager.bad_messages["internal error"] == 0


def test_a_flood_of_forged_workers_is_capped():
    manager = start_manager(heartbeat_timeout=30.0, max_workers=2)
    hands = [HandWorker(manager, "noop", f"w{number}") for number in range(3)]
    try:
        hands[0].announce()
        hands[1].announce()
        wait_until(
            lambda: (
                hands[2].beat() is None
                and gevent.sleep(0.02) is None
                and manager.bad_messages["too many workers"]
            ),
            what="the third worker refused",
        )
        assert set(manager.workers) == {"w0", "w1"}
        assert len([name for name in manager.sockets.sockets if name.startswith("push:")]) == 2
    finally:
        for hand in hands:
            hand.close()
        manager.stop()


def test_a_worker_drops_forged_or_malformed_dispatches_and_goes_on():
    manager = start_manager(heartbeat_timeout=30.0)
    worker = StepWorker(load_step("noop"), manager.addresses["status"], concurrency=2)
    worker.connect(timeout=5)
    runner = gevent.spawn(worker.run)
    try:
        wait_until(lambda: worker.worker_id in manager.workers, what="the worker joined")
        with SocketManager(zmq.green, green_context) as forger:
            forger.ensure_and_connect("push", zmq.green.PUSH, worker.address, 0)
            frames = [
                b"{not json",
                b'["a", "list"]',
                raw('{"job_id": "\\ud800", "token": "0123456789abcdef", "attempt": 1}'),
                b'{"job_id": "J", "token": 5, "attempt": 1}',
                b'{"job_id": "J", "token": "0123456789abcdef", "attempt": 0}',
                raw('{"job_id": "J", "token": "0123456789abcdef", "attempt": Infinity}'),
            ]
            for frame in frames:
                forger.sockets["push"].send(frame)
            wait_until(lambda: worker.malformed == len(frames), what="every bad dispatch dropped")
            # a well-formed forgery runs, but its result is stale at the manager: it knows no such token
            stale = manager.stale_events
            forged = {"job_id": "J", "token": "0123456789abcdef", "attempt": 1, "data": {}}
            forger.send_safe("push", forged)
            wait_until(lambda: manager.stale_events == stale + 1, what="the forged result counted as stale")
            forger.close("push", linger=0)
        manager.submit(new_job("noop", {"n": 1}, job_id="real"))
        wait_until(lambda: manager.jobs["real"].state == COMPLETED, what="a real job completed")
        assert worker.done == 2 and manager.bad_messages == {}
    finally:
        worker.stop()
        runner.join(timeout=5)
        worker.close()
        manager.stop()
