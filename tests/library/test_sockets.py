"""Creating, finding, binding, connecting and closing named sockets (plain and green)."""

from __future__ import annotations

import gc

import pytest
import zmq

from agentzero.core import SocketManager
from agentzero.errors import (
    SocketAlreadyExists,
    SocketBindError,
    SocketClosed,
    SocketConnectError,
    SocketNotFound,
    SocketOptionError,
)


def test_create_and_get_by_name(manager, zmq_module):
    socket = manager.create("foo", zmq_module.REP)
    assert manager.get_by_name("foo") is socket
    assert socket.type == zmq.REP
    assert isinstance(socket, zmq_module.Socket)
    assert list(manager.sockets) == ["foo"]


def test_create_twice_raises_with_the_documented_message(manager, zmq_module):
    manager.create("foo", zmq_module.REP)
    manager.create("bar", zmq_module.REQ)
    with pytest.raises(SocketAlreadyExists) as caught:
        manager.create("foo", zmq_module.REP)
    expected = f"{_repr_name(zmq_module)}(sockets=['foo', 'bar']) already has a socket named 'foo'."
    assert str(caught.value) == expected


def test_unknown_name_raises_with_the_documented_message(manager, zmq_module):
    manager.create("foo", zmq_module.REP)
    manager.create("bar", zmq_module.REQ)
    with pytest.raises(SocketNotFound) as caught:
        manager.get_by_name("boom")
    expected = f"{_repr_name(zmq_module)}(sockets=['foo', 'bar']) has no sockets named 'boom'."
    assert str(caught.value) == expected
    with pytest.raises(SocketNotFound):
        manager.send_safe("boom", {})
    with pytest.raises(SocketNotFound):
        manager.recv_safe("boom")
    with pytest.raises(SocketNotFound):
        manager.publish_safe("boom", "topic", {})
    with pytest.raises(SocketNotFound):
        manager.recv_event_safe("boom")
    with pytest.raises(SocketNotFound):
        manager.subscribe("boom")
    with pytest.raises(SocketNotFound):
        manager.wait_until_ready("boom", zmq.POLLIN)


def test_errors_are_caught_by_except_exception(manager):
    try:
        manager.get_by_name("missing")
    except Exception as error:  # noqa: BLE001 - the point of the test
        assert type(error) is SocketNotFound
    else:
        pytest.fail("no error raised")


def test_invalid_socket_type_names_it(manager):
    with pytest.raises(ValueError, match="invalid socket type 12345 for socket 'x'"):
        manager.create("x", 12345)
    assert "x" not in manager.sockets


def test_get_or_create_returns_the_existing_socket(manager, zmq_module):
    first = manager.get_or_create("requester", zmq_module.REQ, zmq.POLLIN | zmq.POLLOUT)
    again = manager.get_or_create("requester", zmq_module.REQ, zmq.POLLIN)
    assert first is again
    assert manager.get_record("requester").polling_mechanism == zmq.POLLIN


@pytest.mark.parametrize("mechanism", [8, zmq.POLLERR, None, "in", True])
def test_invalid_polling_mechanism(manager, zmq_module, mechanism):
    with pytest.raises(ValueError, match="polling_mechanism must be"):
        manager.get_or_create("x", zmq_module.PULL, mechanism)
    manager.create("y", zmq_module.PULL)
    with pytest.raises(ValueError, match="polling_mechanism must be"):
        manager.wait_until_ready("y", mechanism, timeout=0)


def test_mechanism_zero_keeps_a_socket_out_of_the_poller(manager, zmq_module):
    manager.ensure_and_bind("in", zmq_module.PULL, "inproc://zero", zmq.POLLIN)
    push = manager.ensure_and_connect("out", zmq_module.PUSH, "inproc://zero", 0)
    assert all(socket is not push for socket, _ in manager.poller.sockets)
    assert manager.engage(timeout=10) == {}  # a writable PUSH is not reported
    assert manager.send_safe("out", "still sends")
    assert manager.engage(timeout=1000) == {manager.sockets["in"]: zmq.POLLIN}
    manager.register_socket(manager.sockets["in"], 0)
    assert manager.poller.sockets == []
    with pytest.raises(ValueError, match="polling_mechanism must be zmq.POLLIN"):
        manager.wait_until_ready("in", 0)


def test_register_socket_adds_to_the_poller(manager, zmq_module, context):
    outsider = context.socket(zmq_module.PULL)
    try:
        assert manager.register_socket(outsider, zmq.POLLIN) is outsider
        assert (outsider, zmq.POLLIN) in manager.poller.sockets
    finally:
        manager.poller.unregister(outsider)
        outsider.close(linger=0)


def test_engage_sees_a_socket_added_with_register_socket(manager, zmq_module, context):
    # every flavour reads one table: the asyncio engage() ignored such a socket before
    outsider = context.socket(zmq_module.PULL)
    outsider.bind("inproc://registered-outsider")
    try:
        manager.register_socket(outsider, zmq.POLLIN)
        manager.ensure_and_connect("out", zmq_module.PUSH, "inproc://registered-outsider", 0)
        assert manager.send_safe("out", "knock", timeout=5)
        assert manager.engage(5000) == {outsider: zmq.POLLIN}
        assert outsider in manager.registry
    finally:
        manager.register_socket(outsider, 0)
        outsider.close(linger=0)


def test_push_pull_round_trip_over_every_transport(manager, zmq_module, address):
    manager.ensure_and_bind("pipe-in", zmq_module.PULL, address, zmq.POLLIN)
    bound = manager.addresses["pipe-in"]
    assert "*" not in bound
    manager.ensure_and_connect("pipe-out", zmq_module.PUSH, bound, zmq.POLLOUT)
    job = {"pipeline": "video-download", "instructions": {"url": "https://example.invalid/watch"}}
    assert manager.send_safe("pipe-out", job) is True
    assert manager.recv_safe("pipe-in") == job


def test_req_rep_with_both_mechanisms_over_every_transport(manager, zmq_module, address):
    manager.ensure_and_bind("server", zmq_module.REP, address, zmq.POLLIN | zmq.POLLOUT)
    manager.ensure_and_connect(
        "client", zmq_module.REQ, manager.addresses["server"], zmq.POLLIN | zmq.POLLOUT
    )
    assert manager.send_safe("client", {"ping": 1})
    # registered with both, waited on with one: the original compared masks with == and failed
    assert manager.wait_until_ready("server", zmq.POLLIN, timeout=5) is manager.sockets["server"]
    assert manager.recv_safe("server") == {"ping": 1}
    assert manager.send_safe("server", {"pong": 1})
    assert manager.recv_safe("client") == {"pong": 1}


def test_bind_resolves_host_names(manager, zmq_module):
    manager.create("api", zmq_module.REP)
    port = _free_port_of(manager, zmq_module)
    manager.bind("api", f"tcp://localhost:{port}", zmq.POLLIN)
    assert manager.addresses["api"] == f"tcp://127.0.0.1:{port}"
    manager.ensure_and_connect("client", zmq_module.REQ, f"tcp://localhost:{port}", zmq.POLLOUT)
    # a name to connect to is left to libzmq, which resolves it again when it reconnects
    assert manager.addresses["client"] == f"tcp://localhost:{port}"
    assert manager.send_safe("client", "hello")
    assert manager.recv_safe("api") == "hello"


@pytest.mark.parametrize("bad", ["", "   ", "foo", "tcp://", "tcp://127.0.0.1:notaport", "bogus://x", None])
def test_bad_bind_address_names_the_address(manager, zmq_module, bad):
    manager.create("api", zmq_module.REP)
    with pytest.raises(SocketBindError) as caught:
        manager.bind("api", bad, zmq.POLLIN)
    assert repr(bad) in str(caught.value)
    assert "'api'" in str(caught.value)
    # the socket keeps working after the bad address
    manager.bind("api", "inproc://still-fine", zmq.POLLIN)


def test_busy_address_raises_bind_error(manager, zmq_module):
    manager.ensure_and_bind("first", zmq_module.PULL, "tcp://127.0.0.1:*", zmq.POLLIN)
    taken = manager.addresses["first"]
    with pytest.raises(SocketBindError) as caught:
        manager.ensure_and_bind("second", zmq_module.PULL, taken, zmq.POLLIN)
    assert caught.value.errno == zmq.EADDRINUSE
    assert taken in str(caught.value)


@pytest.mark.parametrize("bad", ["", "foo", "tcp://127.0.0.1", "bogus://x", 42])
def test_bad_connect_address_names_the_address(manager, zmq_module, bad):
    with pytest.raises(SocketConnectError) as caught:
        manager.ensure_and_connect("client", zmq_module.REQ, bad, zmq.POLLOUT)
    assert repr(bad) in str(caught.value)


def test_bind_to_random_port(manager, zmq_module):
    manager.create("api-server", zmq_module.REP)
    socket, address = manager.bind_to_random_port(
        "api-server", zmq.POLLIN | zmq.POLLOUT, local_address="tcp://127.0.0.1"
    )
    assert socket is manager.sockets["api-server"]
    host, port = address.rsplit(":", 1)
    assert host == "tcp://127.0.0.1" and 0 < int(port) < 65536
    assert manager.addresses["api-server"] == address
    manager.ensure_and_connect("client", zmq_module.REQ, address, zmq.POLLIN | zmq.POLLOUT)
    assert manager.send_safe("client", [1, 2])
    assert manager.recv_safe("api-server") == [1, 2]


def test_bind_to_random_port_keeps_the_given_host_name(manager, zmq_module):
    manager.create("api", zmq_module.PULL)
    _, address = manager.bind_to_random_port("api", zmq.POLLIN, local_address="tcp://localhost")
    assert address.startswith("tcp://localhost:")


def test_bind_to_random_port_needs_tcp_and_an_existing_socket(manager, zmq_module):
    with pytest.raises(SocketNotFound):
        manager.bind_to_random_port("nope", zmq.POLLIN)
    manager.create("api", zmq_module.PULL)
    with pytest.raises(SocketBindError, match="tcp://"):
        manager.bind_to_random_port("api", zmq.POLLIN, local_address="inproc://x")


def test_close_frees_the_name_and_unregisters(manager, zmq_module):
    socket = manager.ensure_and_bind("logs", zmq_module.PULL, "inproc://close-me", zmq.POLLIN)
    manager.close("logs")
    assert socket.closed
    assert "logs" not in manager.sockets and "logs" not in manager.addresses
    assert all(registered is not socket for registered, _ in manager.poller.sockets)
    manager.close("logs")  # unknown now: does nothing
    manager.close("never-existed")
    again = manager.ensure_and_bind("logs", zmq_module.PULL, "inproc://close-me", zmq.POLLIN)
    assert again is not socket


def test_disconnect_unregisters_and_returns_true(manager, zmq_module):
    manager.ensure_and_bind("server", zmq_module.PULL, "inproc://disc", zmq.POLLIN)
    manager.ensure_and_connect("client", zmq_module.PUSH, "inproc://disc", zmq.POLLOUT)
    client = manager.sockets["client"]
    assert manager.disconnect("client") is True
    assert all(registered is not client for registered, _ in manager.poller.sockets)
    assert manager.get_record("client").connects == []
    # with no peer left, a PUSH cannot send
    assert manager.send_safe("client", "lost?", timeout=0.2) is False
    assert manager.recv_safe("server", timeout=0.1) is None


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_context_manager_closes_every_socket(zmq_module, context):
    with SocketManager(zmq_module, context) as sockets:
        a = sockets.create("a", zmq_module.PUB)
        b = sockets.create("b", zmq_module.SUB)
    assert a.closed and b.closed
    assert sockets.sockets == {}


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_del_never_raises_even_when_close_does(zmq_module, context, recwarn):
    class BrokenClose(zmq_module.Socket):
        broken = True

        def close(self, linger=None):
            if BrokenClose.broken:
                raise RuntimeError("close failed")
            super().close(linger)

    class BrokenContext(zmq_module.Context):
        _socket_class = BrokenClose

    broken_context = BrokenContext()
    sockets = SocketManager(zmq_module, broken_context)
    socket = sockets.create("a", zmq_module.PUSH)
    try:
        with pytest.raises(RuntimeError, match="close failed"):
            sockets.close_all()
        sockets.sockets["b"] = socket  # a socket whose close() raises, as __del__ will meet it
        sockets.__del__()  # must not raise
        del sockets
        gc.collect()
        assert not [w for w in recwarn if "close failed" in str(w.message)]
    finally:
        BrokenClose.broken = False
        socket.close(linger=0)  # through the class's own close: green cleans up its watchers
        broken_context.term()


def test_default_manager_uses_zmq_and_the_shared_context():
    sockets = SocketManager()
    assert sockets.zmq is zmq
    assert sockets.context is zmq.Context.instance()
    sockets.close_all()


def test_green_manager_without_context_uses_the_shared_green_context():
    import zmq.green

    from agentzero import zero

    sockets = SocketManager(zmq.green)
    assert sockets.context is zero.context
    socket = sockets.create("x", zmq.green.PULL)
    assert isinstance(socket, zmq.green.Socket)
    sockets.close_all(linger=0)


def test_sockets_and_addresses_are_ordered_mappings(manager, zmq_module):
    for name in ("c", "a", "b"):
        manager.ensure_and_bind(name, zmq_module.PULL, f"inproc://ordered-{name}", zmq.POLLIN)
    assert list(manager.sockets) == ["c", "a", "b"]
    assert manager.addresses == {n: f"inproc://ordered-{n}" for n in ("c", "a", "b")}
    assert repr(manager) == f"{_repr_name(zmq_module)}(sockets=['c', 'a', 'b'])"


def test_set_socket_option(manager, zmq_module):
    manager.create("pipe-in", zmq_module.PULL)
    manager.set_socket_option("pipe-in", zmq.HWM, 10)
    socket = manager.sockets["pipe-in"]
    assert socket.getsockopt(zmq.SNDHWM) == 10 and socket.getsockopt(zmq.RCVHWM) == 10
    manager.set_socket_option("pipe-in", zmq.LINGER, 0)
    assert socket.getsockopt(zmq.LINGER) == 0
    with pytest.raises(SocketNotFound):
        manager.set_socket_option("nope", zmq.LINGER, 0)


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_constructor_validates_its_arguments(zmq_module, context):
    with pytest.raises(TypeError, match="serialization_backend must have pack"):
        SocketManager(zmq_module, context, serialization_backend=object())
    with pytest.raises(ValueError, match="polling_timeout"):
        SocketManager(zmq_module, context, polling_timeout=0)
    with pytest.raises(ValueError, match="timeout"):
        SocketManager(zmq_module, context, timeout=-1)


def _free_port_of(manager, zmq_module) -> int:
    from agentzero.util import get_free_tcp_port

    return get_free_tcp_port("127.0.0.1")


def test_a_closed_sockets_address_can_be_bound_again_at_once(manager, zmq_module, transport, ipc_dir):
    from tests.conftest import make_address

    address = make_address(transport, ipc_dir)
    manager.ensure_and_bind("x", zmq_module.PULL, address, zmq.POLLIN)
    address = manager.addresses["x"]  # the real port, for tcp
    for _ in range(200):
        manager.close("x")
        manager.ensure_and_bind("x", zmq_module.PULL, address, zmq.POLLIN)
    manager.ensure_and_connect("out", zmq_module.PUSH, address, zmq.POLLOUT)
    assert manager.send_safe("out", "after 200 rebinds")
    assert manager.recv_safe("x") == "after 200 rebinds"


@pytest.mark.parametrize(
    "option, value",
    [
        (zmq.SNDHWM, 10**30),  # more than libzmq's int
        (zmq.SNDHWM, "many"),  # text for a number
        (zmq.LINGER, None),
        (zmq.SNDHWM, -5),  # libzmq: EINVAL
        (9999, 1),  # no such option
        (zmq.HWM, 10**30),
        (zmq.IDENTITY, b""),  # libzmq: EINVAL
    ],
    ids=["huge", "text", "none", "negative", "unknown-option", "huge-hwm", "empty-identity"],
)
def test_a_refused_socket_option_names_itself_and_the_socket_keeps_working(
    manager, zmq_module, option, value
):
    manager.ensure_and_bind("pipe-in", zmq_module.PULL, "inproc://refused-option", zmq.POLLIN)
    manager.ensure_and_connect("pipe-out", zmq_module.PUSH, "inproc://refused-option", zmq.POLLOUT)
    with pytest.raises(SocketOptionError) as caught:
        manager.set_socket_option("pipe-out", option, value)
    error = caught.value
    assert isinstance(error, ValueError) and not isinstance(error, zmq.ZMQError)
    assert error.socket_name == "pipe-out" and error.option in str(error) and "'pipe-out'" in str(error)
    assert option not in manager.get_record("pipe-out").options  # nothing recorded for reset()
    manager.set_socket_option("pipe-out", zmq.SNDHWM, 7)
    assert manager.sockets["pipe-out"].getsockopt(zmq.SNDHWM) == 7
    assert manager.send_safe("pipe-out", {"still": "works"}) is True
    assert manager.recv_safe("pipe-in", timeout=5) == {"still": "works"}


def test_an_option_on_a_socket_closed_behind_the_managers_back_says_closed(manager, zmq_module):
    manager.create("gone", zmq_module.PUSH)
    manager.sockets["gone"].close(linger=0)
    with pytest.raises(SocketClosed):
        manager.set_socket_option("gone", zmq.SNDHWM, 7)


@pytest.mark.parametrize("option", [zmq.SUBSCRIBE, zmq.ROUTING_ID, zmq.SOCKS_PROXY])
def test_text_that_is_not_utf8_is_a_refused_option_and_nothing_is_recorded(manager, zmq_module, option):
    # a lone surrogate cannot be encoded: it raised a bare UnicodeEncodeError naming neither socket nor option
    manager.ensure_and_bind("sub", zmq_module.SUB, f"inproc://surrogate-{option}", zmq.POLLIN)
    with pytest.raises(SocketOptionError) as caught:
        manager.set_socket_option("sub", option, "bad \ud800 text")
    assert caught.value.socket_name == "sub" and caught.value.option in str(caught.value)
    record = manager.get_record("sub")
    assert option not in record.options and not record.subscriptions
    with pytest.raises(SocketOptionError, match="SUBSCRIBE"):
        manager.set_topic("sub", "\udcff")
    assert not record.subscriptions
    manager.set_topic("sub", "fine")
    assert record.subscriptions == {b"fine"}


def _repr_name(zmq_module) -> str:
    """How a manager of ``zmq_module``'s flavour names itself in its repr and in error messages."""
    return "asyncio.SocketManager" if zmq_module.__name__ == "zmq.asyncio" else "SocketManager"
