"""Host names: bound once resolved, connected as names libzmq resolves again; IPv6; never blocking a loop."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
import zmq

from agentzero.asyncio import SocketManager as AsyncioSocketManager
from agentzero.errors import SocketBindError, SocketConnectError
from agentzero.manager import hosts

NOWHERE = "no-such-host.invalid"  # .invalid never resolves (RFC 2606)


def fake_resolver(monkeypatch, names: dict[str, list[str]], delay: float = 0.0):
    """Resolve ``names`` (to loopback addresses only) in agentzero's checks; every other name as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            time.sleep(delay)
            return [
                (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 0))
                for ip in names[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(hosts._socket, "getaddrinfo", getaddrinfo)


def test_a_name_that_does_not_resolve_is_refused_naming_the_host(manager):
    manager.create("out", zmq.PUSH)
    with pytest.raises(SocketConnectError, match=f"host '{NOWHERE}' does not resolve"):
        manager.connect("out", f"tcp://{NOWHERE}:5555", zmq.POLLOUT)
    with pytest.raises(SocketBindError, match=f"host '{NOWHERE}' does not resolve"):
        manager.bind("out", f"tcp://{NOWHERE}:5555", zmq.POLLOUT)
    assert manager.get_record("out").connects == [] and manager.get_record("out").binds == []
    # the socket keeps working
    manager.ensure_and_bind("in", zmq.PULL, "tcp://127.0.0.1:*", zmq.POLLIN)
    manager.connect("out", manager.addresses["in"], zmq.POLLOUT)
    assert manager.send_safe("out", "after")
    assert manager.recv_safe("in", timeout=5) == "after"


def test_a_connect_leaves_the_name_to_libzmq(manager):
    manager.ensure_and_bind("in", zmq.PULL, "tcp://localhost:*", zmq.POLLIN)
    port = manager.addresses["in"].rsplit(":", 1)[1]
    assert manager.addresses["in"] == f"tcp://127.0.0.1:{port}"  # bound: resolved
    manager.ensure_and_connect("out", zmq.PUSH, f"tcp://localhost:{port}", zmq.POLLOUT)
    assert manager.get_record("out").connects == [f"tcp://localhost:{port}"]  # libzmq resolves it
    assert manager.wait_for_peers("out", timeout=5)
    assert manager.send_safe("out", "by name")
    assert manager.recv_safe("in", timeout=5) == "by name"
    assert manager.disconnect("out", f"tcp://localhost:{port}")


def test_a_name_with_ipv6_addresses_only_binds_and_reaches_ipv6(manager, monkeypatch):
    fake_resolver(monkeypatch, {"loopback6.test": ["::1"]})
    manager.create("in", zmq.PULL)
    manager.bind("in", "tcp://loopback6.test:*", zmq.POLLIN)
    assert manager.addresses["in"].startswith("tcp://[::1]:")
    assert manager.get_record("in").options[zmq.IPV6] == 1
    manager.create("out", zmq.PUSH)
    manager.connect("out", manager.addresses["in"], zmq.POLLOUT)  # an IPv6 address: IPV6 turned on
    assert manager.get_record("out").options[zmq.IPV6] == 1
    assert manager.wait_for_peers("in", timeout=5)
    assert manager.send_safe("out", "over ipv6")
    assert manager.recv_safe("in", timeout=5) == "over ipv6"
    manager.create("named", zmq.PUSH)
    manager.connect("named", "tcp://loopback6.test:5555", zmq.POLLOUT)  # checked: IPv6 only
    assert manager.get_record("named").options[zmq.IPV6] == 1


def test_a_name_with_ipv4_addresses_is_bound_on_ipv4(manager, monkeypatch):
    fake_resolver(monkeypatch, {"dual.test": ["::1", "127.0.0.1"]})
    manager.create("in", zmq.PULL)
    manager.bind("in", "tcp://dual.test:*", zmq.POLLIN)
    assert manager.addresses["in"].startswith("tcp://127.0.0.1:")
    assert zmq.IPV6 not in manager.get_record("in").options


def test_asyncio_resolves_a_name_to_connect_to_off_the_loop(monkeypatch):
    fake_resolver(monkeypatch, {"slow.test": ["127.0.0.1"], NOWHERE: []}, delay=0.5)

    async def main():
        with AsyncioSocketManager() as sockets:
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticking = asyncio.create_task(ticker())
            await asyncio.sleep(0.02)
            sockets.create("out", zmq.PUSH)
            started = time.monotonic()
            sockets.connect("out", "tcp://slow.test:5555", zmq.POLLOUT)
            sockets.create("lost", zmq.PUSH)
            sockets.connect("lost", f"tcp://{NOWHERE}:5555", zmq.POLLOUT)
            assert time.monotonic() - started < 0.1  # the loop was not held
            with pytest.raises(SocketConnectError, match=f"host '{NOWHERE}' does not resolve"):
                await sockets.wait_for_peers("lost", timeout=5)
            assert time.monotonic() - started < 2
            assert ticks >= 20  # the loop kept running while the names were resolved
            with pytest.raises(SocketConnectError, match=NOWHERE):
                sockets.peers("lost")
            ticking.cancel()

    asyncio.run(main())
