"""Peers in other processes: killed, frozen, or refused by CURVE, and seen so within the promised time."""

from __future__ import annotations

import os
import signal
import time

import pytest
import zmq

from agentzero.util import curve_keypair
from tests.conftest import make_address
from tests.library.peer_process import start_peer, stop_peer

NETWORK = ["ipc", "tcp"]


def until(predicate, seconds: float) -> float | None:
    """Seconds until ``predicate()`` is true, polling every 10 ms; ``None`` when it never was."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.01)
    return None


def serve(manager, transport, ipc_dir, **options):
    manager.create("server", zmq.ROUTER)
    for option, value in options.items():
        manager.set_socket_option("server", getattr(zmq, option), value)
    manager.bind("server", make_address(transport, ipc_dir), zmq.POLLIN)
    return manager.addresses["server"]


@pytest.mark.parametrize("transport", NETWORK)
def test_a_peer_killed_with_sigkill_is_dropped_within_2_seconds(manager, transport, ipc_dir):
    address = serve(manager, transport, ipc_dir)
    peers = [start_peer("connect", address, "DEALER") for _ in range(2)]
    try:
        assert manager.wait_for_peers("server", count=2, timeout=5)
        for remaining, peer in zip((1, 0), peers):
            peer.send_signal(signal.SIGKILL)
            took = until(lambda left=remaining: manager.peers("server") == left, 2.0)
            assert took is not None, f"peers() still {manager.peers('server')} 2 s after a SIGKILL"
    finally:
        for peer in peers:
            stop_peer(peer)


@pytest.mark.parametrize("transport", NETWORK)
def test_a_frozen_peer_is_dropped_within_the_heartbeat_timeout_plus_a_second(manager, transport, ipc_dir):
    timeout_ms = 500
    address = serve(manager, transport, ipc_dir, HEARTBEAT_IVL=100, HEARTBEAT_TIMEOUT=timeout_ms)
    peer = start_peer("connect", address, "DEALER")
    try:
        assert manager.wait_for_peers("server", timeout=5)
        time.sleep(0.3)  # heartbeats flow: the peer answers them
        assert manager.peers("server") == 1
        os.kill(peer.pid, signal.SIGSTOP)
        took = until(lambda: manager.peers("server") == 0, timeout_ms / 1000 + 1.0)
        assert took is not None, "a frozen peer was still counted after the heartbeat timeout plus 1 s"
        assert "disconnected" in [event.kind for event in manager.socket_events("server")]
    finally:
        stop_peer(peer)


def kinds_within(manager, name, wanted, seconds):
    """The kinds of events seen on ``name`` until one of ``wanted`` (or ``seconds`` passed)."""
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while not set(wanted) & set(seen) and time.monotonic() < deadline:
        seen += [event.kind for event in manager.socket_events(name, timeout=deadline - time.monotonic())]
    return seen


@pytest.fixture
def curve_server(manager, zmq_module):
    """A CURVE PULL server on loopback whose authenticator admits the listed client only."""
    server_public, server_secret = curve_keypair()
    client_public, client_secret = curve_keypair()
    manager.create("server", zmq_module.PULL)
    manager.make_curve_server("server", server_secret)
    manager.bind("server", "tcp://127.0.0.1:*", zmq.POLLIN)
    manager.start_authenticator(allowed_keys=[client_public])
    manager.socket_events("server")  # "listening"
    return manager.addresses["server"], server_public


def test_a_client_key_the_authenticator_refuses_shows_on_both_ends_within_a_second(
    manager, zmq_module, curve_server
):
    address, server_public = curve_server
    stranger_public, stranger_secret = curve_keypair()
    manager.create("client", zmq_module.PUSH)
    manager.make_curve_client("client", server_public, stranger_public, stranger_secret)
    started = time.monotonic()
    manager.connect("client", address, zmq.POLLOUT)
    assert "handshake_failed_auth" in kinds_within(manager, "client", ["handshake_failed_auth"], 1.0)
    assert "handshake_failed_auth" in kinds_within(manager, "server", ["handshake_failed_auth"], 1.0)
    assert time.monotonic() - started < 1.0
    assert manager.peers("server") == 0 and manager.peers("client") == 0


def test_a_wrong_server_key_shows_on_both_ends_within_a_second(manager, zmq_module, curve_server):
    address, _ = curve_server
    wrong_public, _ = curve_keypair()
    manager.create("client", zmq_module.PUSH)
    manager.make_curve_client("client", wrong_public)
    started = time.monotonic()
    manager.connect("client", address, zmq.POLLOUT)
    failures = ["handshake_failed_protocol", "handshake_failed_no_detail", "handshake_failed_auth"]
    client = kinds_within(manager, "client", failures, 1.0)
    assert set(failures) & set(client), client
    server = kinds_within(manager, "server", ["handshake_failed_protocol"], 1.0)
    assert "handshake_failed_protocol" in server, server
    assert time.monotonic() - started < 1.0
    assert manager.peers("server") == 0 and manager.peers("client") == 0
