"""The rebind grace: an address closed by the manager binds again at once, wildcard hosts included."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

ROOT = Path(__file__).resolve().parents[2]


def test_a_wildcard_endpoint_and_its_reported_form_are_one_released_key():
    from agentzero.manager.endpoints import released_key

    assert (
        released_key("tcp://*:5000") == released_key("tcp://0.0.0.0:5000") == released_key("tcp://[::]:5000")
    )
    assert released_key("tcp://127.0.0.1:5000") == "tcp://127.0.0.1:5000"
    assert released_key("tcp://*:5000") != released_key("tcp://*:5001")
    assert released_key("ipc:///tmp/x") == "ipc:///tmp/x"


#: the scenario, run in a network namespace of its own: ``tcp://*`` there is its loopback alone
_WILDCARD_SCENARIO = """
import asyncio, sys, zmq
flavour = sys.argv[1]

def scenario(manager, call):
    manager.ensure_and_bind("x", zmq.PULL, "tcp://*:*", zmq.POLLIN)
    port = manager.addresses["x"].rsplit(":", 1)[1]
    for _ in range(100):
        manager.close("x", linger=0)
        manager.ensure_and_bind("x", zmq.PULL, f"tcp://*:{port}", zmq.POLLIN)
    manager.ensure_and_connect("out", zmq.PUSH, f"tcp://127.0.0.1:{port}", zmq.POLLOUT)
    assert call(manager.send_safe("out", "after 100 rebinds"))
    assert call(manager.recv_safe("x")) == "after 100 rebinds"
    manager.close_all(linger=0)

if flavour == "asyncio":
    from agentzero.asyncio import SocketManager
    loop = asyncio.new_event_loop()
    scenario(SocketManager(timeout=5), loop.run_until_complete)
else:
    import zmq.green
    from agentzero.core import SocketManager
    module = zmq.green if flavour == "green" else zmq
    scenario(SocketManager(module, module.Context(), timeout=5), lambda value: value)
print("rebound 100 times")
"""


@pytest.mark.parametrize("flavour", ["plain", "green", "asyncio"])
def test_tcp_wildcard_binds_again_right_after_close_every_time(flavour):
    """``tcp://*:PORT``, closed (libzmq reports ``tcp://0.0.0.0:PORT``), binds again at once, 100 times.

    The wildcard binds every interface: the scenario runs in a network
    namespace of its own (``unshare --net``), where the only one is loopback.
    """
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("no unshare or ip here: a wildcard bind runs only in a network namespace of its own")
    python = f"{shlex.quote(sys.executable)} -c {shlex.quote(_WILDCARD_SCENARIO)} {flavour}"
    script = f"ip link set lo up && exec {python}"
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"no network namespace can be made here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "rebound 100 times"


def test_released_endpoints_are_forgotten_once_their_grace_is_over(manager):
    manager.ensure_and_bind("x", zmq.PULL, "inproc://forgotten-grace", zmq.POLLIN)
    manager.close("x")
    assert list(manager._released) == ["inproc://forgotten-grace"]
    manager._released["inproc://forgotten-grace"] = 0.0  # its grace is over
    manager.create("y", zmq.PULL)
    manager.close("y")
    assert not manager._released
