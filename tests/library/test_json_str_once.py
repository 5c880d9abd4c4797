"""``JSON().pack_bytes`` calls each value's ``str()`` once, and what interrupts it reaches the caller.

orjson wraps into a ``TypeError`` whatever a value's ``str()`` (its
``default``) raised, a ``KeyboardInterrupt`` (Ctrl-C), a ``gevent.Timeout``
or a ``GreenletExit`` included: a packer that took every ``TypeError`` for a
reason to try again (as a pass without orjson's option for keys that are
not text once did) loses them, and the message is sent as if nothing had
happened; and a value packed twice has its ``str()`` called twice.

A real interruption lands once: each value here is interrupted on its first
``str()`` only, and would give its text on a second.
"""

from __future__ import annotations

import signal

import gevent
import orjson
import pytest
import zmq
import zmq.green

from agentzero.core import SocketManager
from agentzero.serializers import JSON
from tests.conftest import make_address, terminate


class CtrlCOnce:
    """A real SIGINT arrives while its first ``str()`` runs; later calls give its text."""

    def __init__(self) -> None:
        self.calls = 0

    def __str__(self) -> str:
        self.calls += 1
        if self.calls == 1:
            signal.raise_signal(signal.SIGINT)  # Python's handler raises at the next bytecode, in here
            for _ in range(3):
                pass
        return "text"


@pytest.fixture
def python_ctrl_c():
    """Python's own Ctrl-C handler, whatever the test runner installed."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize(
    "make",
    [
        lambda value: {"a": value},
        lambda value: [value],
        lambda value: {"a": value, 1: "a key that is no text"},
        lambda value: [value, 2**70],
    ],
    ids=["text-keys", "list", "then-an-int-key", "then-a-wide-integer"],
)
def test_a_ctrl_c_while_a_value_is_packed_reaches_the_caller(python_ctrl_c, make):
    value = CtrlCOnce()
    with pytest.raises(KeyboardInterrupt):
        JSON().pack_bytes(make(value))
    assert value.calls == 1


@pytest.mark.parametrize("module", [zmq, zmq.green], ids=["plain", "green"])
def test_a_ctrl_c_while_send_safe_packs_sends_nothing(python_ctrl_c, module):
    context = module.Context()
    sockets = SocketManager(module, context, timeout=5)
    try:
        address = make_address("inproc")
        sockets.ensure_and_bind("in", module.PULL, address, zmq.POLLIN)
        sockets.ensure_and_connect("out", module.PUSH, address, zmq.POLLOUT)
        with pytest.raises(KeyboardInterrupt):
            sockets.send_safe("out", {"payload": CtrlCOnce()}, timeout=2)
        assert sockets.send_safe("out", "next", timeout=2)
        assert sockets.recv_safe("in", timeout=2) == "next"
    finally:
        sockets.close_all(linger=0)
        terminate(context)


class SlowStr:
    """Its first ``str()`` waits (a greenlet switch): where a gevent.Timeout or a kill lands."""

    def __init__(self) -> None:
        self.calls = 0

    def __str__(self) -> str:
        self.calls += 1
        if self.calls == 1:
            gevent.sleep(1)
        return "text"


def test_a_gevent_timeout_while_a_value_is_packed_reaches_the_caller():
    value = SlowStr()
    timeout = gevent.Timeout(0.05)
    with pytest.raises(gevent.Timeout) as caught:
        with timeout:
            JSON().pack_bytes({"a": value})
    assert caught.value is timeout
    assert value.calls == 1


def test_a_greenlet_killed_while_it_packs_stops_and_sends_nothing():
    context = zmq.green.Context()
    sockets = SocketManager(zmq.green, context, timeout=5)
    try:
        address = make_address("inproc")
        sockets.ensure_and_bind("in", zmq.green.PULL, address, zmq.POLLIN)
        sockets.ensure_and_connect("out", zmq.green.PUSH, address, zmq.POLLOUT)
        steps = []

        def sender():
            sockets.send_safe("out", {"payload": SlowStr()}, timeout=2)
            steps.append("sent anyway")

        greenlet = gevent.spawn(sender)
        gevent.sleep(0.05)  # it is in SlowStr.__str__
        greenlet.kill(block=True, timeout=2)
        assert greenlet.dead
        assert steps == []
        assert sockets.recv_safe("in", timeout=0.1) is None
    finally:
        sockets.close_all(linger=0)
        terminate(context)


class CountingStr:
    def __init__(self) -> None:
        self.calls = 0

    def __str__(self) -> str:
        self.calls += 1
        return f"call {self.calls}"


def test_a_values_str_runs_once_when_a_key_that_is_no_text_follows_it():
    value = CountingStr()
    data = {"a": value, 1: "b"}
    assert JSON().pack_bytes(data) == b'{"a":"call 1","1":"b"}'
    assert value.calls == 1
    assert orjson.dumps({"a": CountingStr(), 1: "b"}, default=str, option=orjson.OPT_NON_STR_KEYS) == (
        b'{"a":"call 1","1":"b"}'
    )
