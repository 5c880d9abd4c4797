"""``peers``, ``wait_for_peers`` and ``socket_events``: the manager's own monitors, in every flavour."""

from __future__ import annotations

import os
import time

import pytest
import zmq

from agentzero.errors import PeersNotVisible, SocketNotFound
from agentzero.manager import monitors
from agentzero.manager.monitors import SocketEvent
from tests.conftest import make_address, wait_for

NETWORK = ["ipc", "tcp"]


def bound(manager, name, socket_type, transport, ipc_dir, **options):
    manager.create(name, socket_type)
    for option, value in options.items():
        manager.set_socket_option(name, getattr(zmq, option), value)
    manager.bind(name, make_address(transport, ipc_dir), zmq.POLLIN)
    return manager.addresses[name]


@pytest.mark.parametrize("transport", NETWORK)
def test_peers_counts_handshakes_on_both_ends_and_drops_when_a_peer_leaves(manager, transport, ipc_dir):
    address = bound(manager, "server", zmq.ROUTER, transport, ipc_dir)
    assert manager.peers("server") == 0
    for name in ("one", "two"):
        manager.create(name, zmq.DEALER)
        manager.connect(name, address, zmq.POLLOUT)
    assert manager.wait_for_peers("server", count=2, timeout=5)
    assert manager.peers("server") == 2
    assert manager.wait_for_peers("one", timeout=5) and manager.peers("one") == 1
    manager.close("one", linger=0)
    wait_for(lambda: manager.peers("server") == 1, timeout=2)
    manager.disconnect("two")  # libzmq reports no "disconnected" for a disconnect of our own
    assert manager.peers("two") == 0


@pytest.mark.parametrize("transport", NETWORK)
def test_connections_made_before_the_first_call_are_counted(manager, transport, ipc_dir):
    address = bound(manager, "server", zmq.PULL, transport, ipc_dir)
    manager.create("client", zmq.PUSH)
    manager.connect("client", address, zmq.POLLOUT)
    assert manager.send_safe("client", "hello")
    assert manager.recv_safe("server", timeout=5) == "hello"
    # the handshake is over: the first question about peers already knows of it
    assert manager.peers("server") == 1
    assert manager.peers("client") == 1


def test_wait_for_peers_times_out_with_false_and_checks_its_arguments(manager, ipc_dir):
    bound(manager, "server", zmq.PULL, "tcp", ipc_dir)
    started = time.monotonic()
    assert manager.wait_for_peers("server", timeout=0.2) is False
    assert 0.15 <= time.monotonic() - started < 2
    for count in (0, -1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="count"):
            manager.wait_for_peers("server", count=count, timeout=0)
    with pytest.raises(ValueError):
        manager.wait_for_peers("server", timeout=-1)
    with pytest.raises(SocketNotFound):
        manager.peers("nobody")


def test_inproc_peers_are_not_visible_and_the_socket_keeps_working(manager):
    manager.ensure_and_bind("in", zmq.PULL, "inproc://peers-inproc", zmq.POLLIN)
    manager.ensure_and_connect("out", zmq.PUSH, "inproc://peers-inproc", zmq.POLLOUT)
    for call in (manager.peers, manager.wait_for_peers):
        with pytest.raises(PeersNotVisible, match="inproc:// only"):
            call("in")
    assert manager.socket_events("in") == []  # nothing to report, and nothing wrong
    assert manager.send_safe("out", "still working")
    assert manager.recv_safe("in", timeout=5) == "still working"
    # no monitor was started for sockets that stayed on inproc
    assert manager.get_record("out").monitor is None


def test_socket_events_names_libzmq_events_and_waits_for_one(manager, ipc_dir):
    address = bound(manager, "server", zmq.PULL, "tcp", ipc_dir)
    events = manager.socket_events("server")
    assert events == [SocketEvent("listening", address, events[0].value)]
    assert manager.socket_events("server") == []  # seen since the last call only
    started = time.monotonic()
    assert manager.socket_events("server", timeout=0.2) == []
    assert time.monotonic() - started >= 0.15
    manager.create("client", zmq.PUSH)
    manager.connect("client", address, zmq.POLLOUT)
    seen = []
    deadline = time.monotonic() + 5
    while "handshake_succeeded" not in [event.kind for event in seen] and time.monotonic() < deadline:
        seen += manager.socket_events("server", timeout=1)
    assert [event.kind for event in seen] == ["accepted", "handshake_succeeded"]
    assert all(isinstance(event, SocketEvent) and event.endpoint == address for event in seen)
    client: list[SocketEvent] = []
    deadline = time.monotonic() + 5
    while "handshake_succeeded" not in [event.kind for event in client] and time.monotonic() < deadline:
        client += manager.socket_events("client", timeout=1)  # at least one event, not every one
    assert [event.kind for event in client][-2:] == ["connected", "handshake_succeeded"]


def test_the_monitors_are_not_sockets_of_the_manager_and_close_with_it(manager, ipc_dir):
    bound(manager, "server", zmq.PULL, "ipc", ipc_dir)
    assert list(manager.sockets) == ["server"]
    assert list(manager.registry) == [manager.sockets["server"]]
    manager.peers("server")
    reader = manager.get_record("server").monitor.reader
    manager.close("server")
    assert reader.closed and "server" not in manager.sockets


def test_a_flood_of_unread_events_never_stalls_the_other_sockets(manager, monkeypatch):
    """3,000 events nobody reads (libzmq's own monitor pipe holds 2,000) leave the context working."""
    monkeypatch.setattr(monitors, "MAX_EVENTS", 100)
    address = bound(manager, "server", zmq.ROUTER, "tcp", None)
    for _ in range(1000):  # accepted, handshake_succeeded, disconnected on the server each time
        manager.create("client", zmq.DEALER)
        manager.connect("client", address, zmq.POLLOUT)
        assert manager.wait_for_peers("client", timeout=5)
        manager.close("client", linger=0)
    # a new tcp connection needs the context's I/O thread, which libzmq's monitor would have blocked
    started = time.monotonic()
    bound(manager, "in", zmq.PULL, "tcp", None)
    manager.create("out", zmq.PUSH)
    manager.connect("out", manager.addresses["in"], zmq.POLLOUT)
    assert manager.send_safe("out", "through")
    assert manager.recv_safe("in", timeout=5) == "through"
    assert time.monotonic() - started < 2
    wait_for(lambda: manager.peers("server") == 0, timeout=5)
    events = manager.socket_events("server")
    assert events[0].kind == "dropped" and events[0].value >= 2900 - 100
    assert len(events) == 101


def test_close_never_hangs_on_thousands_of_unread_events(manager):
    address = bound(manager, "server", zmq.ROUTER, "tcp", None)
    for _ in range(800):
        manager.create("client", zmq.DEALER)
        manager.connect("client", address, zmq.POLLOUT)
        assert manager.wait_for_peers("client", timeout=5)
        manager.close("client", linger=0)
    started = time.monotonic()
    manager.close_all(linger=0)
    assert time.monotonic() - started < 1


def _descriptors_and_threads() -> tuple[int, int]:
    return len(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task"))


def test_1000_create_monitor_close_cycles_leave_no_descriptors_or_threads(manager, ipc_dir):
    def cycle():
        bound(manager, "server", zmq.PULL, "tcp", ipc_dir)
        assert manager.peers("server") == 0
        assert manager.socket_events("server")
        manager.close("server", linger=0)

    cycle()  # the first one sets up what stays (the loop's, the hub's)
    time.sleep(0.2)  # libzmq's reaper frees a closed socket's descriptor in the background
    descriptors, threads = _descriptors_and_threads()
    for _ in range(1000):
        cycle()
    wait_for(lambda: _descriptors_and_threads() <= (descriptors, threads), timeout=2)


def test_closing_a_socket_wakes_its_wait_for_peers(zmq_module, manager, ipc_dir):
    bound(manager, "server", zmq.PULL, "tcp", ipc_dir)
    if manager.zmq is zmq:  # the plain manager blocks its thread: nobody can close it meanwhile
        assert manager.wait_for_peers("server", timeout=0.1) is False
        return
    if zmq_module.__name__ == "zmq.green":
        import gevent

        gevent.spawn_later(0.1, manager.close, "server")
    else:
        manager._loop.call_later(0.1, manager.close, "server")
    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        manager.wait_for_peers("server", timeout=5)
    assert type(raised.value).__name__ == "SocketClosed" and "server" in str(raised.value)
    assert time.monotonic() - started < 2


def test_a_socket_bound_to_a_random_port_counts_connections_made_before_the_first_call(manager):
    manager.create("server", zmq.PULL)
    _, address = manager.bind_to_random_port("server", zmq.POLLIN, local_address="tcp://127.0.0.1")
    manager.ensure_and_connect("client", zmq.PUSH, address, zmq.POLLOUT)
    assert manager.send_safe("client", "hello")
    assert manager.recv_safe("server", timeout=5) == "hello"
    assert manager.peers("server") == 1


def test_no_room_for_a_monitor_leaves_the_socket_working_and_says_why(manager, context):
    context.set(zmq.MAX_SOCKETS, 2)  # the two sockets, and no room for their monitors
    manager.create("server", zmq.PULL)
    manager.create("client", zmq.PUSH)
    manager.bind("server", "tcp://127.0.0.1:*", zmq.POLLIN)
    with pytest.raises(PeersNotVisible, match="MAX_SOCKETS is 2"):
        manager.peers("server")
    manager.connect("client", manager.addresses["server"], zmq.POLLOUT)
    assert manager.send_safe("client", "still working")
    assert manager.recv_safe("server", timeout=5) == "still working"
