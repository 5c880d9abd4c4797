"""The library's own ROUTERs after ``ROUTER_MANDATORY``: a reply to a peer that left is dropped, not fatal.

The ``queue`` device and the registry example create their ROUTER through a
SocketManager, which now refuses a message to a peer that is gone with
:class:`~agentzero.errors.PeerUnreachable`; neither may die of it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from agentzero.core import SocketManager
from tests.library.console_helpers import stop, wait_for_banner

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


def start(*args: str) -> subprocess.Popen:
    """``python -m agentzero ...`` of this checkout (the installed console script may be another's)."""
    return subprocess.Popen(
        [sys.executable, "-m", "agentzero", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def sockets():
    context = zmq.Context()
    manager = SocketManager(zmq, context, timeout=5)
    yield manager
    manager.close_all(linger=0)
    context.term()


@pytest.mark.slow
def test_the_queue_device_survives_a_reply_to_a_client_that_left(sockets, ipc_dir):
    inbound, outbound = f"ipc://{ipc_dir}/front", f"ipc://{ipc_dir}/back"
    device = start("queue", "--bind-in", inbound, "--bind-out", outbound)
    try:
        assert "queue: ROUTER bound" in wait_for_banner(device)
        sockets.ensure_and_connect("server", zmq.REP, outbound, zmq.POLLIN)
        sockets.ensure_and_connect("leaving", zmq.REQ, inbound, zmq.POLLIN)
        assert sockets.send_safe("leaving", {"question": "anyone?"})
        assert sockets.recv_safe("server") == {"question": "anyone?"}
        sockets.close("leaving", linger=0)
        time.sleep(0.5)  # the device's ROUTER notices the client left
        assert sockets.send_safe("server", {"answer": "nobody listens"})
        sockets.ensure_and_connect("client", zmq.REQ, inbound, zmq.POLLIN)
        assert sockets.send_safe("client", {"question": "still there?"})
        assert sockets.recv_safe("server") == {"question": "still there?"}
        assert sockets.send_safe("server", {"answer": "yes"})
        assert sockets.recv_safe("client") == {"answer": "yes"}
        assert device.poll() is None
    finally:
        assert stop(device, signal.SIGTERM) == 0


def test_the_registry_refuses_a_peer_that_left_without_dying():
    from examples.registry.registry import Registry

    registry = Registry({"token"})
    try:
        registry._refuse(b"\x00gone", "unknown token")  # no peer of that identity: dropped quietly
    finally:
        registry.close()
