"""agentzero.asyncio: the coroutines over real sockets, many tasks per socket, time-outs, close and cancel."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import uuid
from typing import Any, Awaitable, Callable

import pytest
import zmq
import zmq.asyncio
import zmq.green
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentzero.core
from agentzero.asyncio import SocketManager
from agentzero.core import Event
from agentzero.errors import (
    DeserializationError,
    MessageTooLarge,
    SerializationError,
    SocketClosed,
    SocketNotFound,
    WrongSocketType,
)
from agentzero.flavours.aio import ASYNCIO_FALLBACK_SLICE
from agentzero.util import curve_keypair
from tests.conftest import make_address, terminate

#: no scenario here should take longer; a hang fails the test instead of the run
SCENARIO_SECONDS = 20


@pytest.fixture
def actx():
    ctx = zmq.asyncio.Context()
    yield ctx
    terminate(ctx)


@pytest.fixture
def sockets(actx):
    manager = SocketManager(context=actx, timeout=5)
    yield manager
    manager.close_all(linger=0)


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run one scenario in a fresh event loop, failing it (not hanging) past SCENARIO_SECONDS."""
    return asyncio.run(asyncio.wait_for(scenario(), SCENARIO_SECONDS))


def pipe(manager: SocketManager, address: str = "") -> SocketManager:
    """A connected PUSH ('out') -> PULL ('in') pair."""
    manager.ensure_and_bind("in", zmq.PULL, address or make_address("inproc"), zmq.POLLIN)
    manager.ensure_and_connect("out", zmq.PUSH, manager.addresses["in"], zmq.POLLOUT)
    return manager


async def events(manager: SocketManager, topic: str = "") -> SocketManager:
    """A PUB ('pub') on loopback tcp and a SUB ('sub') subscribed to ``topic``, past the slow joiner."""
    manager.ensure_and_bind("pub", zmq.PUB, "tcp://127.0.0.1:*", zmq.POLLOUT)
    manager.ensure_and_connect("sub", zmq.SUB, manager.addresses["pub"], zmq.POLLIN)
    manager.set_topic("sub", topic)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert await manager.publish_safe("pub", topic or "warmup", None)
        if await manager.recv_event_safe("sub", timeout=0.05) is not None:
            return manager
    pytest.fail("the subscription never reached the publisher")


# -- the basics, over every transport ------------------------------------------------------------


def test_send_and_recv_in_order_over_each_transport(sockets, transport, ipc_dir):
    pipe(sockets, make_address(transport, ipc_dir))

    async def scenario():
        for number in range(300):
            assert await sockets.send_safe("out", {"n": number}) is True
        return [(await sockets.recv_safe("in"))["n"] for _ in range(300)]

    assert run(scenario) == list(range(300))


def test_req_rep_over_tcp_and_a_req_whose_turn_it_is_not(sockets):
    sockets.ensure_and_bind("server", zmq.REP, "tcp://127.0.0.1:*", zmq.POLLIN | zmq.POLLOUT)
    sockets.ensure_and_connect("client", zmq.REQ, sockets.addresses["server"], zmq.POLLIN | zmq.POLLOUT)

    async def server():
        request = await sockets.recv_safe("server", timeout=5)
        assert await sockets.send_safe("server", {"echo": request})

    async def scenario():
        serving = asyncio.create_task(server())
        assert await sockets.send_safe("client", "ping")
        # a REQ cannot send twice: like the sync manager, it waits for its turn and gives up in time
        assert await sockets.send_safe("client", "again", timeout=0.05) is False
        reply = await sockets.recv_safe("client", timeout=5)
        await serving
        return reply

    assert run(scenario) == {"echo": "ping"}


def test_the_same_errors_as_the_sync_manager(sockets):
    pipe(sockets)
    sockets.ensure_and_bind("pub", zmq.PUB, make_address("inproc"), zmq.POLLOUT)

    async def scenario():
        with pytest.raises(SocketNotFound):
            await sockets.send_safe("nope", 1)
        with pytest.raises(SocketNotFound):
            await sockets.recv_safe("nope")
        with pytest.raises(SerializationError):
            await sockets.send_safe("out", {1j: 2})
        with pytest.raises(TypeError, match="a topic is str or bytes"):
            await sockets.publish_safe("pub", 42, {})
        with pytest.raises(TypeError, match="recv_event_safe"):
            await sockets.recv_event_safe("in", topic=42)
        with pytest.raises(WrongSocketType):
            sockets.subscribe("in")
        with pytest.raises(TypeError, match="keep_polling must be callable"):
            sockets.subscribe("in", keep_polling=1)
        for bad in (-1, math.nan, math.inf, True, "1"):
            with pytest.raises(ValueError, match="timeout must be a number >= 0"):
                await sockets.recv_safe("in", timeout=bad)
            with pytest.raises(ValueError, match="timeout must be a number >= 0"):
                await sockets.send_safe("out", 1, timeout=bad)
            with pytest.raises(ValueError, match="timeout must be a number >= 0"):
                await sockets.wait_until_ready("in", zmq.POLLIN, timeout=bad)
        with pytest.raises(ValueError, match="polling_timeout"):
            await sockets.recv_safe("in", timeout=0.01, polling_timeout=0)
        with pytest.raises(ValueError, match="polling_mechanism"):
            await sockets.wait_until_ready("in", 0)
        # nothing was sent by the refused calls
        assert await sockets.recv_safe("in", timeout=0.01) is None

    run(scenario)


def test_a_bad_message_raises_and_the_next_one_gets_through(actx):
    with SocketManager(context=actx, max_message_size=1024) as manager:
        pipe(manager)
        raw = manager.sockets["out"]

        async def scenario():
            raw.send(b"{not json")
            raw.send_multipart([b"1", b"2", b"3"])
            raw.send(b"[" + b"0," * 1000 + b"0]")
            await manager.send_safe("out", "fine")
            with pytest.raises(DeserializationError, match="JSONDecodeError|malformed|Expecting"):
                await manager.recv_safe("in")
            with pytest.raises(DeserializationError, match="expected 1 frame"):
                await manager.recv_safe("in")
            with pytest.raises(MessageTooLarge):
                await manager.recv_safe("in")
            return await manager.recv_safe("in", timeout=1)

        assert run(scenario) == "fine"


# -- waiting: time-outs, many tasks, closing, cancelling, other tasks keep running ----------------


def test_timeouts_are_kept_within_a_few_milliseconds(sockets):
    pipe(sockets)
    sockets.ensure_and_bind("lonely", zmq.PUSH, make_address("inproc"), zmq.POLLOUT)

    async def timed(call: Awaitable[Any]) -> tuple[Any, float]:
        started = time.monotonic()
        result = await call
        return result, time.monotonic() - started

    async def scenario():
        loop = asyncio.get_running_loop()
        slow_start = loop.slow_callback_duration
        results = [
            await timed(sockets.recv_safe("in", timeout=0.1)),
            await timed(sockets.send_safe("lonely", 1, timeout=0.1)),
            await timed(sockets.wait_until_ready("in", zmq.POLLIN, timeout=0.1, polling_timeout=10000)),
            await timed(sockets.recv_safe("in", timeout=0)),
        ]
        assert slow_start == loop.slow_callback_duration
        return results

    (received, t1), (sent, t2), (ready, t3), (checked, t4) = run(scenario)
    assert received is None and sent is False and ready is None and checked is None
    for elapsed in (t1, t2, t3):
        assert 0.095 <= elapsed < 0.1 + 0.05, elapsed  # generous for a loaded 2-core machine
    assert t4 < 0.02


def test_many_tasks_on_one_socket_get_each_message_exactly_once(sockets):
    pipe(sockets)
    tasks, per_task = 50, 20

    async def receiver(got: list[int]) -> None:
        for _ in range(per_task):
            message = await sockets.recv_safe("in", timeout=5)
            assert message is not None, "a receiver slept past a message"
            got.append(message)

    async def scenario():
        received: list[list[int]] = [[] for _ in range(tasks)]
        receivers = [asyncio.create_task(receiver(got)) for got in received]
        await asyncio.sleep(0.01)  # every receiver is waiting on the socket
        for number in range(tasks * per_task):
            assert await sockets.send_safe("out", number)
            if number % 7 == 0:
                await asyncio.sleep(0)
        await asyncio.gather(*receivers)
        return received

    received = run(scenario)
    everything = [number for got in received for number in got]
    assert sorted(everything) == list(range(tasks * per_task))
    assert all(len(got) == per_task for got in received)


def test_many_senders_waiting_for_room_on_a_full_queue(sockets):
    sockets.create("in", zmq.PULL)
    sockets.set_socket_option("in", zmq.RCVHWM, 5)
    sockets.bind("in", make_address("inproc"), zmq.POLLIN)
    sockets.create("out", zmq.PUSH)
    sockets.set_socket_option("out", zmq.SNDHWM, 5)
    sockets.connect("out", sockets.addresses["in"], zmq.POLLOUT)
    senders, per_sender = 20, 25

    async def sender(first: int) -> None:
        for number in range(first, first + per_sender):
            assert await sockets.send_safe("out", number, timeout=5), "a sender slept past room"

    async def scenario():
        sending = [asyncio.create_task(sender(index * per_sender)) for index in range(senders)]
        await asyncio.sleep(0.05)  # the queue is full and most senders wait
        received = []
        while len(received) < senders * per_sender:
            message = await sockets.recv_safe("in", timeout=5)
            assert message is not None
            received.append(message)
            if len(received) % 10 == 0:
                await asyncio.sleep(0.001)  # a slow consumer
        await asyncio.gather(*sending)
        return received

    assert sorted(run(scenario)) == list(range(senders * per_sender))


def test_closing_the_socket_wakes_its_waiters_with_socket_closed_at_once(sockets):
    pipe(sockets)
    sockets.ensure_and_bind("lonely", zmq.PUSH, make_address("inproc"), zmq.POLLOUT)
    sockets.ensure_and_bind("sub", zmq.SUB, make_address("inproc"), zmq.POLLIN)
    sockets.register_socket(sockets.sockets["out"], 0)  # always writable: engage would return at once

    async def scenario():
        waiting = [
            asyncio.create_task(sockets.recv_safe("in", timeout=10)),
            asyncio.create_task(sockets.recv_safe("in", timeout=10)),
            asyncio.create_task(sockets.wait_until_ready("in", zmq.POLLIN, timeout=10)),
            asyncio.create_task(sockets.send_safe("lonely", 1, timeout=10)),
            asyncio.create_task(sockets.engage(timeout=10000)),
        ]
        subscription = sockets.subscribe("sub", timeout=10)
        listening = asyncio.create_task(_collect(subscription))
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in waiting)
        started = time.monotonic()
        sockets.close("in", linger=0)
        sockets.close("lonely", linger=0)
        sockets.close("sub", linger=0)
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert await listening == []  # the subscription ends quietly, as the sync one does
        return outcomes, time.monotonic() - started

    outcomes, elapsed = run(scenario)
    # engage() ends its wait and returns what is ready then (nothing), as the sync managers'
    # engage does: one closed socket must not break a loop polling the others
    assert outcomes[-1] == {}
    assert all(isinstance(outcome, SocketClosed) for outcome in outcomes[:-1]), outcomes
    assert elapsed < 0.1
    assert "'in'" in str(outcomes[0])


def test_a_socket_closed_behind_the_managers_back_ends_the_wait_within_a_fallback_slice(actx):
    manager = SocketManager(context=actx)
    pipe(manager)

    async def scenario():
        waiting = asyncio.create_task(manager.recv_safe("in", timeout=10))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        manager.sockets["in"].close(linger=0)  # not through the manager
        with pytest.raises(SocketClosed):
            await waiting
        return time.monotonic() - started

    try:
        assert run(scenario) < ASYNCIO_FALLBACK_SLICE + 0.5
    finally:
        manager.close_all(linger=0)


async def _collect(subscription: Any) -> list[Event]:
    return [event async for event in subscription]


def test_a_cancelled_waiter_leaves_the_socket_usable_and_hands_its_turn_on(sockets):
    pipe(sockets)

    async def scenario():
        first = asyncio.create_task(sockets.recv_safe("in", timeout=10))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(sockets.recv_safe("in", timeout=10))
        await asyncio.sleep(0.01)
        # the first waiter is woken for this message and cancelled before it takes it:
        # the second must get it now, not after a fallback slice
        await sockets.send_safe("out", "for whoever waits")
        await asyncio.sleep(0)
        first.cancel()
        started = time.monotonic()
        got = await asyncio.wait_for(second, 0.5)
        handed_on = time.monotonic() - started
        with pytest.raises(asyncio.CancelledError):
            await first
        # and the socket works as before, for waiting and non-waiting calls
        assert sockets.sockets["in"] is not None and sockets._records["in"].waiters == []
        later = asyncio.create_task(sockets.recv_safe("in", timeout=5))
        await asyncio.sleep(0.01)
        await sockets.send_safe("out", "again")
        return got, handed_on, await later

    got, handed_on, again = run(scenario)
    assert got == "for whoever waits" and again == "again"
    assert handed_on < 0.2


def test_cancelling_with_wait_for_returns_control_and_keeps_messages(sockets):
    pipe(sockets)

    async def scenario():
        for _ in range(20):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sockets.recv_safe("in", timeout=10), 0.005)
        await sockets.send_safe("out", 1)
        await sockets.send_safe("out", 2)
        return [await sockets.recv_safe("in", timeout=1), await sockets.recv_safe("in", timeout=1)]

    assert run(scenario) == [1, 2]


def test_a_ticker_keeps_running_while_tasks_wait(sockets):
    pipe(sockets)

    async def scenario():
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        waiting = [asyncio.create_task(sockets.recv_safe("in", timeout=0.3)) for _ in range(5)]
        assert await asyncio.gather(*waiting) == [None] * 5
        ticking.cancel()
        return ticks

    assert run(scenario) >= 15


def test_a_waiter_wakes_for_a_message_from_another_manager(actx):
    with SocketManager(context=actx) as receiver, SocketManager(context=actx) as sender:
        receiver.ensure_and_bind("in", zmq.PULL, "tcp://127.0.0.1:*", zmq.POLLIN)
        sender.ensure_and_connect("out", zmq.PUSH, receiver.addresses["in"], zmq.POLLOUT)

        async def scenario():
            waiting = asyncio.create_task(receiver.recv_safe("in", timeout=5, polling_timeout=10000))
            await asyncio.sleep(0.05)
            started = time.monotonic()
            await sender.send_safe("out", "wake up")
            return await waiting, time.monotonic() - started

        message, elapsed = run(scenario)
        assert message == "wake up" and elapsed < 0.5  # woken by the descriptor, not a fallback slice


def test_the_manager_moves_to_a_new_event_loop(sockets):
    pipe(sockets)

    async def wait_then_receive():
        waiting = asyncio.create_task(sockets.recv_safe("in", timeout=5))
        await asyncio.sleep(0.01)
        await sockets.send_safe("out", "hello")
        return await waiting

    assert run(wait_then_receive) == "hello"
    assert run(wait_then_receive) == "hello"  # a second asyncio.run: the reader follows the loop


def test_zmq_asyncio_calls_still_work_on_the_managers_sockets(sockets):
    pipe(sockets)
    raw_in = sockets.sockets["in"]
    assert isinstance(raw_in, zmq.asyncio.Socket)

    async def scenario():
        by_pyzmq = asyncio.ensure_future(raw_in.recv_json())
        await asyncio.sleep(0.01)
        await sockets.send_safe("out", "to pyzmq")
        first = await asyncio.wait_for(by_pyzmq, 2)
        by_agentzero = asyncio.create_task(sockets.recv_safe("in", timeout=2))
        await asyncio.sleep(0.01)
        await sockets.send_safe("out", "to agentzero")
        second = await by_agentzero
        by_pyzmq = asyncio.ensure_future(raw_in.recv_json())
        await asyncio.sleep(0.01)
        await sockets.send_safe("out", "to pyzmq again")
        return first, second, await asyncio.wait_for(by_pyzmq, 2)

    assert run(scenario) == ("to pyzmq", "to agentzero", "to pyzmq again")


def test_ready_and_engage(sockets):
    pipe(sockets)

    async def scenario():
        assert await sockets.ready("in", zmq.POLLIN, timeout=10) is None
        assert await sockets.engage(timeout=10) == {sockets.sockets["out"]: zmq.POLLOUT}
        sockets.register_socket(sockets.sockets["out"], 0)
        waiting = asyncio.create_task(sockets.engage(timeout=5000))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await sockets.send_safe("out", 1)
        ready = await waiting
        assert ready == {sockets.sockets["in"]: zmq.POLLIN}
        assert await sockets.ready("in", zmq.POLLIN) is sockets.sockets["in"]
        return await sockets.recv_safe("in")

    assert run(scenario) == 1


# -- events, subscriptions and logs ---------------------------------------------------------------


def test_publish_and_subscribe_until_keep_polling_says_stop(sockets):
    async def scenario():
        await events(sockets)
        seen: list[Event] = []
        keep = [True]

        async def publisher():
            for number in range(5):
                await sockets.publish_safe("pub", "numbers", {"n": number})
                await asyncio.sleep(0.005)

        publishing = asyncio.create_task(publisher())
        async for event in sockets.subscribe("sub", "numbers", keep_polling=lambda: keep[0], timeout=0.05):
            seen.append(event)
            if len(seen) == 5:
                keep[0] = False
        await publishing
        return seen

    seen = run(scenario)
    assert [event.data["n"] for event in seen] == [0, 1, 2, 3, 4]
    assert all(event.topic == b"numbers" for event in seen)


def test_a_malformed_event_ends_the_subscription_with_a_deserialization_error(sockets):
    async def scenario():
        await events(sockets)
        sockets.sockets["pub"].send_multipart([b"topic", b"{bad"])
        with pytest.raises(DeserializationError):
            async for _ in sockets.subscribe("sub", timeout=2):
                pass
        await sockets.publish_safe("pub", "topic", "good")
        return await sockets.recv_event_safe("sub", timeout=2)

    assert run(scenario) == Event(b"topic", "good")


def record_text(event):
    """``LEVEL - message`` of a record in 0.4.6's format, which is checked whole."""
    found = re.fullmatch(
        r"\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\] (\w+) test_asyncio\.py:\d+ - (.*)\n", event.data["msg"]
    )
    assert found, event.data["msg"]
    return f"{found.group(1)} - {found.group(2)}"


def test_log_records_are_published_from_coroutines(sockets):
    name = f"test-{uuid.uuid4().hex}"

    async def scenario():
        await events(sockets)
        logger = sockets.get_logger("pub", topic_name="logs", logger_name=name)
        try:
            for number in range(3):
                logger.info("step %d of %s", number, "three")
                await asyncio.sleep(0)
            return [await sockets.recv_event_safe("sub", timeout=2) for _ in range(3)]
        finally:
            for handler in list(logger.handlers):
                logger.removeHandler(handler)

    received = run(scenario)
    # the record text is 0.4.6's "[date] LEVEL file:line - message\n"
    assert [record_text(event) for event in received] == [f"INFO - step {n} of three" for n in range(3)]
    assert received[0].topic == b"logs" and received[0].data["level"] == logging.INFO


def test_log_records_wait_in_order_for_a_push_socket_that_cannot_take_them_yet(sockets):
    sockets.ensure_and_bind("logs", zmq.PUSH, make_address("inproc"), zmq.POLLOUT)
    handler = sockets.get_log_handler("logs")
    handler.timeout = 5
    logger = logging.getLogger(f"test-{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    async def scenario():
        for number in range(5):
            logger.info("record %d", number)  # no peer yet: the handler keeps them
        assert handler.dropped == 0
        sockets.ensure_and_connect("tail", zmq.PULL, sockets.addresses["logs"], zmq.POLLIN)
        return [await sockets.recv_event_safe("tail", timeout=2) for _ in range(5)]

    try:
        received = run(scenario)
    finally:
        logger.removeHandler(handler)
    assert [record_text(event) for event in received] == [f"INFO - record {n}" for n in range(5)]
    assert handler.dropped == 0
    logger.info("outside a running loop, with no peer able to take it")  # sent at once or counted
    sockets.close("logs", linger=0)
    assert handler.dropped in (0, 1)


# -- construction, CURVE ---------------------------------------------------------------------------


def test_each_manager_refuses_the_other_flavour():
    with pytest.raises(TypeError, match="agentzero.asyncio"):
        agentzero.core.SocketManager(zmq.asyncio)
    with pytest.raises(TypeError, match="agentzero.asyncio"):
        agentzero.core.SocketManager(zmq, zmq.asyncio.Context.instance())
    with pytest.raises(TypeError, match="agentzero.core.SocketManager"):
        SocketManager(zmq)
    green = zmq.green.Context()
    try:
        with pytest.raises(TypeError, match="zmq.green"):
            SocketManager(context=green)
    finally:
        green.term()
    with pytest.raises(ValueError, match="timeout"):
        SocketManager(timeout=-1)
    with pytest.raises(ValueError, match="polling_timeout"):
        SocketManager(polling_timeout=0)


def test_curve_with_the_authenticator_under_asyncio(sockets):
    server_public, server_secret = curve_keypair()
    client_public, client_secret = curve_keypair()
    sockets.create("server", zmq.PULL)
    sockets.make_curve_server("server", server_secret)
    sockets.start_authenticator([client_public])
    sockets.bind("server", "tcp://127.0.0.1:*", zmq.POLLIN)
    sockets.create("client", zmq.PUSH)
    sockets.make_curve_client("client", server_public, client_public, client_secret)
    sockets.connect("client", sockets.addresses["server"], zmq.POLLOUT)

    async def scenario():
        assert await sockets.send_safe("client", {"secret": "plans"})
        return await sockets.recv_safe("server", timeout=5)

    assert run(scenario) == {"secret": "plans"}


# -- hostile frames --------------------------------------------------------------------------------

FRAMES = st.lists(st.binary(max_size=48), min_size=1, max_size=4)
FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def hostile(actx):
    """The manager's PULL 'in' and SUB 'sub', fed by plain sockets of the same context (the peers)."""
    manager = SocketManager(context=actx, timeout=2, max_message_size=64)
    manager.ensure_and_bind("in", zmq.PULL, make_address("inproc"), zmq.POLLIN)
    manager.ensure_and_bind("sub", zmq.SUB, make_address("inproc"), zmq.POLLIN)
    manager.set_topic("sub", "")
    push = zmq.Socket(actx, zmq.PUSH)
    push.connect(manager.addresses["in"])
    pub = zmq.Socket(actx, zmq.PUB)
    pub.connect(manager.addresses["sub"])

    async def warm_up() -> None:
        while True:
            pub.send_multipart([b"warmup", b"0"])
            if await manager.recv_event_safe("sub", timeout=0.05) is not None:
                return

    run(warm_up)
    yield manager, push, pub
    push.close(linger=0)
    pub.close(linger=0)
    manager.close_all(linger=0)


@FUZZ
@given(frames=FRAMES)
def test_any_frames_give_a_value_or_a_deserialization_error_and_the_next_message_gets_through(
    hostile, frames
):
    manager, push, pub = hostile

    async def scenario():
        push.send_multipart(frames)
        pub.send_multipart(frames)
        started = time.monotonic()
        for call in (manager.recv_safe("in", timeout=2), manager.recv_event_safe("sub", timeout=2)):
            try:
                await call  # any value (even None, for b"null")
            except DeserializationError as error:
                assert error.socket_name in ("in", "sub")
        assert time.monotonic() - started < 1  # a message was waiting each time: never a time-out
        push.send(b'{"valid": true}')
        pub.send_multipart([b"valid", b"1"])
        assert await manager.recv_safe("in", timeout=2) == {"valid": True}
        assert await manager.recv_event_safe("sub", timeout=2) == Event(b"valid", 1)
        assert await manager.recv_safe("in", timeout=0) is None

    run(scenario)
