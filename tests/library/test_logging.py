"""ZMQPubHandler, get_log_handler and get_logger (plain and green)."""

from __future__ import annotations

import datetime
import inspect
import logging
import re
import subprocess
import sys
import time
import uuid

import pytest
import zmq

from agentzero.core import SocketManager, ZMQPubHandler
from agentzero.errors import SerializationError
from agentzero.serializers import JSON, MSGPACK
from tests.conftest import publish_until_received


@pytest.fixture
def logs(manager, zmq_module):
    manager.ensure_and_bind("logs", zmq_module.PUB, "inproc://logs", zmq.POLLOUT)
    manager.ensure_and_connect("tail", zmq_module.SUB, "inproc://logs", zmq.POLLIN)
    manager.set_topic("tail", "")
    publish_until_received(manager, "logs", "tail", "warmup", None)
    return manager


def published_at(event):
    """The date of a published record: 0.4.6's format, in UTC, and recent."""
    stamp = re.match(r"\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\] ", event.data["msg"]).group(1)
    moment = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - moment).total_seconds()) < 30
    return stamp


@pytest.fixture
def logger_name():
    name = f"test-{uuid.uuid4().hex}"
    yield name
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def test_get_log_handler_publishes_records(logs, logger_name):
    handler = logs.get_log_handler("logs", topic_name="app_logs")
    assert isinstance(handler, ZMQPubHandler) and isinstance(handler, logging.Handler)
    logger = logging.getLogger(logger_name)
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    line = inspect.currentframe().f_lineno + 1
    logger.info("Server is up on %s:%d", "127.0.0.1", 5000)
    event = logs.recv_event_safe("tail", timeout=2)
    assert event.topic == b"app_logs"
    # the record text is 0.4.6's "[date] LEVEL file:line - message\n", no longer the bare message
    assert event.data == {
        "msg": f"[{published_at(event)}] INFO test_logging.py:{line} - Server is up on 127.0.0.1:5000\n",
        "args": ["127.0.0.1", 5000],
        "level": 20,
    }


def test_get_logger_attaches_one_handler_and_publishes(logs, logger_name):
    logger = logs.get_logger("logs", topic_name="logs", logger_name=logger_name)
    again = logs.get_logger("logs", topic_name="logs", logger_name=logger_name)
    assert logger is again
    assert sum(isinstance(h, ZMQPubHandler) for h in logger.handlers) == 1
    line = inspect.currentframe().f_lineno + 1
    logger.debug("Server is up!")
    event = logs.recv_event_safe("tail", timeout=2)
    assert event.topic == b"logs"
    # 0.4.6's record text
    assert event.data["msg"] == f"[{published_at(event)}] DEBUG test_logging.py:{line} - Server is up!\n"
    assert event.data["level"] == logging.DEBUG


def test_get_logger_defaults_to_the_socket_name(logs):
    logger = logs.get_logger("logs")
    try:
        assert logger.name == "logs"
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


def test_handler_sends_unusual_arguments_as_text(logs, logger_name):
    logger = logs.get_logger("logs", logger_name=logger_name)
    marker = object()
    logger.warning("object %s", marker)
    event = logs.recv_event_safe("tail", timeout=2)
    assert event.data["args"] == [str(marker)]
    assert event.data["level"] == logging.WARNING


def test_log_handler_works_before_its_socket_exists(manager, zmq_module, logger_name):
    # 0.4.6 (and the seed's example) ask for the handler of a socket created later:
    # records logged before the socket exists are dropped and counted, not raised.
    handler = manager.get_log_handler("later")
    logger = manager.get_logger("later", logger_name=logger_name)
    assert handler in logger.handlers
    logger.info("too early")
    assert handler.dropped == 1


class ExplodingJSON(JSON):
    def pack_bytes(self, data):
        raise SerializationError(self, data, "refused on purpose")


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_emit_never_raises_into_the_caller(zmq_module, context, logger_name, capsys):
    with SocketManager(zmq_module, context, serialization_backend=ExplodingJSON()) as sockets:
        sockets.ensure_and_bind("logs", zmq_module.PUB, "inproc://exploding", zmq.POLLOUT)
        logger = sockets.get_logger("logs", logger_name=logger_name)
        logger.error("this cannot be serialized")  # must not raise
    assert "refused on purpose" in capsys.readouterr().err


class LoggingJSON(JSON):
    """A serializer that logs while packing: publishing a record logs again."""

    def initialize(self, logger_name):
        self.logger_name = logger_name
        self.calls = 0

    def pack_bytes(self, data):
        self.calls += 1
        logging.getLogger(self.logger_name).info("packing %s", self.calls)
        return super().pack_bytes(data)


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_emit_does_not_recurse(zmq_module, context, logger_name):
    serializer = LoggingJSON(logger_name)
    with SocketManager(zmq_module, context, serialization_backend=serializer) as sockets:
        sockets.ensure_and_bind("logs", zmq_module.PUB, "inproc://recursive", zmq.POLLOUT)
        logger = sockets.get_logger("logs", logger_name=logger_name)
        handler = logger.handlers[0]
        logger.info("once")
        assert serializer.calls == 1
        assert handler.dropped == 1


@pytest.mark.sync_only("it logs from other threads, which an asyncio manager does not take")
@pytest.mark.parametrize("where", ["owner", "another thread"])
def test_a_record_that_cannot_be_formatted_is_counted_as_dropped(logs, logger_name, capsys, where):
    # "dropped counts every record that was not published": a bad %-format was reported but not counted
    import threading

    logger = logs.get_logger("logs", logger_name=logger_name)
    logger.propagate = False  # pytest's own capture handler raises on a bad format
    handler = logger.handlers[0]
    if where == "owner":
        logger.info("%d items", "not a number")
    else:
        other = threading.Thread(target=logger.info, args=("%d items", "not a number"))
        other.start()
        other.join(timeout=10)
    assert "--- Logging error ---" in capsys.readouterr().err  # reported by handleError, as before
    assert (handler.dropped, handler.pending) == (1, 0)
    logger.info("fine")
    handler.flush()
    assert received_texts(logs, 1) == ["fine"]
    assert handler.dropped == 1


def test_records_after_close_are_dropped_quietly(logs, logger_name, capsys):
    logger = logs.get_logger("logs", logger_name=logger_name)
    handler = logger.handlers[0]
    logs.close("logs", linger=0)
    # closing the socket detaches the handler (no dead handlers left behind) ...
    assert handler not in logger.handlers
    logger.info("nobody hears this")
    # ... and a record that still reaches it (a caller holding it) is dropped and counted
    handler.handle(logger.makeRecord(logger_name, logging.INFO, __file__, 1, "late", (), None))
    assert handler.dropped == 1
    assert "Logging error" not in capsys.readouterr().err


# -- 0.4.6's record text -------------------------------------------------------------


def test_records_read_as_0_4_6_wrote_them(logs, logger_name):
    logger = logs.get_logger("logs", logger_name=logger_name)
    line = inspect.currentframe().f_lineno + 1
    logger.warning("disk %d%% full", 91)
    event = logs.recv_event_safe("tail", timeout=2)
    assert event.data["msg"] == f"[{published_at(event)}] WARNING test_logging.py:{line} - disk 91% full\n"
    logger.critical("down")
    text = logs.recv_event_safe("tail", timeout=2).data["msg"]
    assert text.endswith(f"] CRITICAL test_logging.py:{line + 3} - down\n")


def test_error_records_add_exc_info(logs, logger_name):
    logger = logs.get_logger("logs", logger_name=logger_name)
    line = inspect.currentframe().f_lineno + 1
    logger.error("no exception here")
    event = logs.recv_event_safe("tail", timeout=2)
    assert (
        event.data["msg"]
        == f"[{published_at(event)}] ERROR test_logging.py:{line} - no exception here - None\n"
    )
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("it failed")
    text = logs.recv_event_safe("tail", timeout=2).data["msg"]
    assert " ERROR test_logging.py:" in text
    assert " - it failed - (<class 'ValueError'>, ValueError('boom'), <traceback object at " in text
    assert text.rstrip().endswith("ValueError: boom")


def test_a_formatter_set_by_the_user_wins(logs, logger_name):
    logger = logs.get_logger("logs", logger_name=logger_name)
    logger.handlers[0].setFormatter(logging.Formatter("%(levelname)s|%(message)s"))
    logger.error("custom %s", "text")
    assert logs.recv_event_safe("tail", timeout=2).data["msg"] == "ERROR|custom text"


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_msg_is_text_on_the_wire_even_with_msgpack(zmq_module, context, logger_name):
    # 0.4.6 sent bytes: msgpack would deliver them as bytes, JSON could not send them at all
    with SocketManager(zmq_module, context, serialization_backend=MSGPACK()) as sockets:
        sockets.ensure_and_bind("logs", zmq_module.PUB, "inproc://msgpack-logs", zmq.POLLOUT)
        sockets.ensure_and_connect("tail", zmq_module.SUB, "inproc://msgpack-logs", zmq.POLLIN)
        sockets.set_topic("tail", "")
        publish_until_received(sockets, "logs", "tail", "warmup", None)
        sockets.get_logger("logs", logger_name=logger_name).info("héllo")
        data = sockets.recv_event_safe("tail", timeout=2).data
        assert isinstance(data["msg"], str) and data["msg"].endswith(" - héllo\n")


# -- records from other threads never touch the socket -------------------------------


def log_from_another_thread(logger, count, text="from another thread %d"):
    """Log ``count`` records from a real OS thread (also under gevent) and wait for it."""
    from gevent import monkey

    worker = monkey.get_original("threading", "Thread")(
        target=lambda: [logger.info(text, index) for index in range(count)]
    )
    worker.start()
    worker.join()


def received_texts(manager, count, timeout=5.0):
    texts = []
    deadline = time.monotonic() + timeout
    while len(texts) < count and time.monotonic() < deadline:
        event = manager.recv_event_safe("tail", timeout=0.1)
        if event is not None:
            texts.append(event.data["msg"].split(" - ", 1)[1].rstrip("\n"))
    return texts


def test_records_from_other_threads_wait_for_the_owner(logs, logger_name):
    logger = logs.get_logger("logs", logger_name=logger_name)
    handler = logger.handlers[0]
    log_from_another_thread(logger, 50)
    assert handler.pending == 50  # queued, not published: that thread never touched the socket
    logger.info("from the owner")  # the owner publishes what was queued first, in order
    expected = [f"from another thread {index}" for index in range(50)] + ["from the owner"]
    assert received_texts(logs, 51) == expected
    assert (handler.pending, handler.dropped) == (0, 0)


def test_flush_publishes_the_records_of_other_threads(logs, logger_name):
    logger = logs.get_logger("logs", logger_name=logger_name)
    handler = logger.handlers[0]
    log_from_another_thread(logger, 5)
    handler.flush()
    assert received_texts(logs, 5) == [f"from another thread {index}" for index in range(5)]


def test_green_owner_is_woken_for_the_records_of_other_threads(logs, zmq_module, logger_name):
    if zmq_module is not zmq.green:
        pytest.skip("other owners publish them at their next record, flush or close")
    logger = logs.get_logger("logs", logger_name=logger_name)
    log_from_another_thread(logger, 5)
    # the owner logs nothing: the async watcher wakes its hub while it waits for events
    assert received_texts(logs, 5) == [f"from another thread {index}" for index in range(5)]


def test_a_full_hand_over_queue_drops_and_counts(logs, logger_name):
    logger = logs.get_logger("logs", logger_name=logger_name)
    handler = logger.handlers[0]
    assert handler.max_pending == 1000
    log_from_another_thread(logger, 1500)
    assert (handler.pending, handler.dropped) == (1000, 500)
    handler.flush()
    assert handler.pending == 0


def test_closing_publishes_what_other_threads_queued(logs, logger_name):
    logger = logs.get_logger("logs", logger_name=logger_name)
    handler = logger.handlers[0]
    log_from_another_thread(logger, 3)
    logs.close("logs")
    assert (handler.pending, handler.dropped) == (0, 0)
    assert received_texts(logs, 3) == [f"from another thread {index}" for index in range(3)]
    log_from_another_thread(logger, 2)  # detached from the logger: nothing reaches it
    handler.handle(logger.makeRecord(logger_name, logging.INFO, __file__, 1, "late", (), None))
    assert handler.dropped == 1


def test_records_of_other_threads_before_the_socket_exists_are_dropped(manager, zmq_module, logger_name):
    logger = manager.get_logger("later", logger_name=logger_name)
    handler = logger.handlers[0]
    log_from_another_thread(logger, 4)
    handler.flush()
    assert (handler.pending, handler.dropped) == (0, 4)


OWNER_AND_THREAD = """
import sys
if sys.argv[1] == "patched":
    from gevent import monkey
    monkey.patch_all()
import uuid
import zmq
module = zmq
if sys.argv[1] in ("green", "patched"):
    import zmq.green as module
from gevent import monkey
from agentzero.core import SocketManager
from agentzero.errors import DeserializationError

context = module.Context()
sockets = SocketManager(module, context, timeout=5)
address = f"inproc://logs-{uuid.uuid4().hex}"
sockets.ensure_and_bind("logs", module.PUB, address, zmq.POLLOUT)
sockets.ensure_and_connect("tail", module.SUB, address, zmq.POLLIN)
sockets.set_topic("tail", "")
logger = sockets.get_logger("logs", logger_name="two-threads")
handler = logger.handlers[0]

finished = []

def log_a_lot():
    for index in range(10000):
        logger.info("from the other thread %d", index)
    finished.append(True)

# a real OS thread in every mode (monkey-patched threading would make it a greenlet)
monkey.get_original("_thread", "start_new_thread")(log_a_lot, ())
published = corrupted = 0
while not finished or published < 2000:
    sockets.publish_safe("logs", "owner", {"n": published})
    logger.info("from the owner %d", published)
    try:
        sockets.recv_event_safe("tail", timeout=0)
    except DeserializationError:  # interleaved frames of two threads
        corrupted += 1
    published += 1
handler.flush()
print("RESULT", corrupted, handler.pending)
sockets.close_all(linger=0)
context.term()
"""


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_thread_logging_while_the_owner_publishes_never_crashes():
    # 0.4.6's handler sent from the logging thread: libzmq aborted (refs_ >= 0) or segfaulted.
    # Each run is a process of its own, so that an abort fails this test instead of pytest.
    runs = ["plain"] * 8 + ["green", "patched"]
    for batch in (runs[:5], runs[5:]):
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", OWNER_AND_THREAD, mode],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for mode in batch
        ]
        for mode, process in zip(batch, processes):
            try:
                out, err = process.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
            assert process.returncode == 0, f"{mode} run ended with {process.returncode}: {err[-2000:]}"
            assert out.split() == ["RESULT", "0", "0"], out + err[-2000:]


# -- never blocks its caller ---------------------------------------------------------


def fill_push(reader, writer, zmq_module, address: str) -> int:
    """Bind ``reader``'s PULL "pull" and connect ``writer``'s PUSH "push" (HWM 1 each) and fill them.

    Returns how many "filler" messages the two queues took; the PUSH then takes no more.
    """
    reader.create("pull", zmq_module.PULL)
    reader.set_socket_option("pull", zmq.RCVHWM, 1)
    reader.bind("pull", address, zmq.POLLIN)
    writer.create("push", zmq_module.PUSH)
    writer.set_socket_option("push", zmq.SNDHWM, 1)
    writer.connect("push", address, zmq.POLLOUT)
    filled = 0
    while writer.send_safe("push", "filler", timeout=0):
        filled += 1
        assert filled < 100, "the PUSH socket never filled up"
    return filled


def test_a_push_at_its_high_water_mark_drops_without_blocking(manager, zmq_module, logger_name):
    # a PUSH whose peer does not read: once the queues are full, a record is dropped at once
    fill_push(manager, manager, zmq_module, "inproc://slow-reader")
    logger = manager.get_logger("push", logger_name=logger_name)
    handler = logger.handlers[0]
    started = time.monotonic()
    for index in range(10):
        logger.info("nobody reads this %d", index)
    elapsed = time.monotonic() - started
    assert elapsed < 0.25, f"10 records took {elapsed:.3f}s: emit waited for the socket"
    assert handler.dropped == 10


def test_a_greenlet_logging_while_another_waits_to_publish_is_next_in_line(logger_name):
    # a handler with a timeout waits for a full PUSH; another greenlet's record must not be dropped
    import gevent
    import zmq.green

    context = zmq.green.Context()
    manager = SocketManager(zmq.green, context)
    try:
        filled = fill_push(manager, manager, zmq.green, "inproc://waiting-handler")
        handler = ZMQPubHandler(manager, "push", topic_name="logs", timeout=5)
        logger = logging.getLogger(logger_name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        first = gevent.spawn(logger.info, "first, waits for room")
        gevent.sleep(0.05)
        assert not first.ready(), "the first record did not wait for the full socket"
        second = gevent.spawn(logger.info, "second, logged meanwhile")
        second.join(timeout=1)
        assert second.ready() and handler.dropped == 0, "another greenlet's record was dropped"
        assert [manager.recv_safe("pull", timeout=5) for _ in range(filled)] == ["filler"] * filled
        events = [manager.recv_event_safe("pull", timeout=5) for _ in range(2)]
        first.join(timeout=5)
        assert first.ready() and all(event is not None and event.topic == b"logs" for event in events)
        messages = [event.data["msg"] for event in events]
        assert "first, waits" in messages[0] and "second, logged" in messages[1]
        assert handler.dropped == 0
        logger.removeHandler(handler)
        handler.close()
    finally:
        manager.close_all(linger=0)
        context.destroy(linger=0)


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_another_thread_never_waits_while_the_owner_waits_to_publish(zmq_module, logger_name):
    # logging.Handler.handle held the handler's lock around emit: a thread that logged while
    # the owner waited for a full socket (``timeout``) waited as long, though "other threads never wait"
    import threading

    if zmq_module not in (zmq, zmq.green):
        pytest.skip("the asyncio handler never waits in emit")
    context = zmq_module.Context()
    manager = SocketManager(zmq_module, context)
    reader = SocketManager(zmq, context) if zmq_module is zmq else manager
    address = f"inproc://{uuid.uuid4().hex}"
    try:
        filled = fill_push(reader, manager, zmq_module, address)
        handler = ZMQPubHandler(manager, "push", topic_name="logs", timeout=5)
        logger = logging.getLogger(logger_name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        took: list[float] = []

        def log_meanwhile() -> None:
            time.sleep(0.2)  # the owner waits by then
            started = time.monotonic()
            logger.info("from another thread, meanwhile")
            took.append(time.monotonic() - started)

        received: list = []

        def read_later() -> None:
            manager_sleep(1.5)  # the owner waits that long for room
            received.extend(reader.recv_safe("pull", timeout=5) for _ in range(filled))
            received.extend(reader.recv_event_safe("pull", timeout=5) for _ in range(2))

        if zmq_module is zmq:
            manager_sleep = time.sleep
            drain = threading.Thread(target=read_later)
        else:
            import gevent

            manager_sleep = gevent.sleep
            drain = gevent.spawn(read_later)
        other = threading.Thread(target=log_meanwhile)
        other.start()
        if zmq_module is zmq:
            drain.start()
        logger.info("from the owner, waits for room")
        other.join(timeout=10)
        drain.join(timeout=10)
        assert took and took[0] < 0.5, f"another thread's record waited {took} s for the owner's publish"
        events = received[filled:]
        assert all(event is not None for event in events), f"not published: {received!r}"
        texts = [event.data["msg"] for event in events]
        assert "from the owner" in texts[0] and "from another thread" in texts[1]
        assert (handler.pending, handler.dropped) == (0, 0)
        logger.removeHandler(handler)
        handler.close()
    finally:
        if reader is not manager:
            reader.close_all(linger=0)
        manager.close_all(linger=0)
        context.destroy(linger=0)


def test_closing_while_a_publish_waits_publishes_what_was_queued_before(logger_name):
    # close() "publishes what is queued": while another greenlet's publish waited for room it
    # dropped the queue instead; now that publish sends it when it ends, and later records drop
    import gevent
    import zmq.green

    context = zmq.green.Context()
    manager = SocketManager(zmq.green, context)
    try:
        filled = fill_push(manager, manager, zmq.green, "inproc://closing-while-waiting")
        handler = ZMQPubHandler(manager, "push", topic_name="logs", timeout=5)
        logger = logging.getLogger(logger_name)
        logger.propagate = False
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        first = gevent.spawn(logger.info, "first, waits for room")
        gevent.sleep(0.05)
        assert not first.ready(), "the first record did not wait for the full socket"
        gevent.spawn(logger.info, "second, queued behind it").join(timeout=1)
        assert handler.pending == 1
        handler.close()  # returns at once: the waiting publish sends what was queued
        logger.info("third, after close")
        assert [manager.recv_safe("pull", timeout=5) for _ in range(filled)] == ["filler"] * filled
        events = [manager.recv_event_safe("pull", timeout=5) for _ in range(2)]
        first.join(timeout=5)
        assert all(event is not None for event in events), events
        messages = [event.data["msg"] for event in events]
        assert "first, waits" in messages[0] and "second, queued" in messages[1]
        assert manager.recv_event_safe("pull", timeout=0.2) is None
        assert (handler.pending, handler.dropped) == (0, 1)  # only the record logged after close
        logger.removeHandler(handler)
    finally:
        manager.close_all(linger=0)
        context.destroy(linger=0)


def test_handler_arguments_are_checked(manager):
    with pytest.raises(ValueError, match="timeout"):
        ZMQPubHandler(manager, "logs", timeout=float("nan"))
    with pytest.raises(ValueError, match="max_pending"):
        ZMQPubHandler(manager, "logs", max_pending=-1)
    handler = ZMQPubHandler(manager)  # 0.4.6's defaults: socket and topic named "logs"
    assert (handler.socket_name, handler.topic_name, handler.timeout) == ("logs", "logs", 0.0)
    handler.close()
