"""Hostile addresses and topics: text UTF-8 cannot encode, addresses without a transport."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

from agentzero.cli.main import main
from agentzero.errors import SocketBindError, SocketConnectError, SocketOptionError
from tests.conftest import make_address

ROOT = Path(__file__).resolve().parents[2]


def hostile_address(transport: str, ipc_dir: str, binding: bool) -> str:
    """An address of ``transport`` holding a lone surrogate (Python's stand-in for an undecodable byte)."""
    if transport == "inproc":
        return "inproc://caf\udce9"
    if transport == "ipc":
        return f"ipc://{ipc_dir}/caf\udce9"
    return "tcp://127.0.0.1\udce9:*" if binding else "tcp://127.0.0.1\udce9:5555"


def assert_pipe_works(manager, address: str) -> None:
    """The PULL socket ``in`` binds ``address`` and receives what a PUSH sends to it."""
    manager.bind("in", address, zmq.POLLIN)
    manager.ensure_and_connect("out", zmq.PUSH, manager.addresses["in"], zmq.POLLOUT)
    assert manager.send_safe("out", {"still": "working"})
    assert manager.recv_safe("in") == {"still": "working"}


def test_bind_to_a_lone_surrogate_names_the_address(manager, transport, ipc_dir):
    hostile = hostile_address(transport, ipc_dir, binding=True)
    manager.create("in", zmq.PULL)
    with pytest.raises(SocketBindError, match="UTF-8") as refused:
        manager.bind("in", hostile, zmq.POLLIN)
    assert refused.value.address == hostile and refused.value.socket_name == "in"
    assert_pipe_works(manager, make_address(transport, ipc_dir))


def test_connect_to_a_lone_surrogate_names_the_address(manager, transport, ipc_dir):
    hostile = hostile_address(transport, ipc_dir, binding=False)
    manager.create("out", zmq.PUSH)
    with pytest.raises(SocketConnectError, match="UTF-8") as refused:
        manager.connect("out", hostile, zmq.POLLOUT)
    assert refused.value.address == hostile and refused.value.socket_name == "out"
    assert "out" not in manager.addresses
    manager.ensure_and_bind("in", zmq.PULL, make_address(transport, ipc_dir), zmq.POLLIN)
    manager.connect("out", manager.addresses["in"], zmq.POLLOUT)
    assert manager.send_safe("out", "after") and manager.recv_safe("in") == "after"


def test_bind_to_random_port_of_a_lone_surrogate_names_the_address(manager):
    manager.create("in", zmq.PULL)
    with pytest.raises(SocketBindError, match="UTF-8") as refused:
        manager.bind_to_random_port("in", zmq.POLLIN, local_address="tcp://127.0.0.1\udce9")
    assert refused.value.address == "tcp://127.0.0.1\udce9"
    _, address = manager.bind_to_random_port("in", zmq.POLLIN, local_address="tcp://127.0.0.1")
    manager.ensure_and_connect("out", zmq.PUSH, address, zmq.POLLOUT)
    assert manager.send_safe("out", 1) and manager.recv_safe("in") == 1


def test_disconnect_from_a_lone_surrogate_is_harmless(manager, transport, ipc_dir):
    manager.ensure_and_bind("in", zmq.PULL, make_address(transport, ipc_dir), zmq.POLLIN)
    manager.ensure_and_connect("out", zmq.PUSH, manager.addresses["in"], zmq.POLLOUT)
    assert manager.disconnect("out", hostile_address(transport, ipc_dir, binding=False)) is False
    assert manager.get_record("out").connects == [manager.addresses["in"]]
    manager.register_socket(manager.sockets["out"], zmq.POLLOUT)
    assert manager.send_safe("out", "kept") and manager.recv_safe("in") == "kept"


@pytest.mark.parametrize(
    "bare, binding, suggested",
    [
        ("127.0.0.1:5000", True, "'tcp://127.0.0.1:5000'"),
        ("localhost:5000", True, "'tcp://localhost:5000'"),
        ("*:5000", True, "'tcp://*:5000'"),
        ("127.0.0.1:5000", False, "'tcp://127.0.0.1:5000'"),
        ("localhost:5000", False, "'tcp://localhost:5000'"),
        ("*:5000", False, "'tcp://127.0.0.1:5000'"),  # one connects to a host, not to '*'
    ],
)
def test_an_address_without_transport_suggests_tcp(manager, bare, binding, suggested):
    manager.create("socket", zmq.PULL)
    error = SocketBindError if binding else SocketConnectError
    call = manager.bind if binding else manager.connect
    with pytest.raises(error) as refused:
        call("socket", bare, zmq.POLLIN)
    assert refused.value.address == bare
    assert f"no transport: use {suggested}" in str(refused.value)


def test_bind_to_random_port_without_transport_suggests_tcp(manager):
    manager.create("in", zmq.PULL)
    with pytest.raises(SocketBindError, match="use 'tcp://127.0.0.1'"):
        manager.bind_to_random_port("in", zmq.POLLIN, local_address="127.0.0.1")


def test_an_address_without_transport_that_is_no_host_port_gets_the_forms(manager):
    manager.create("in", zmq.PULL)
    with pytest.raises(SocketBindError, match="starts with its transport: tcp://HOST:PORT"):
        manager.bind("in", "nonsense", zmq.POLLIN)


def test_publish_safe_with_a_lone_surrogate_topic_is_a_socket_option_error(manager):
    manager.ensure_and_bind("pub", zmq.PUB, make_address("inproc"), zmq.POLLOUT)
    manager.ensure_and_connect("sub", zmq.SUB, manager.addresses["pub"], zmq.POLLIN)
    manager.set_topic("sub", "")
    with pytest.raises(SocketOptionError, match="topic") as refused:
        manager.publish_safe("pub", "caf\udce9", {"never": "sent"})
    assert refused.value.socket_name == "pub" and refused.value.value == "caf\udce9"
    event = None
    for _ in range(100):  # the slow joiner: publish until the subscription arrived
        assert manager.publish_safe("pub", "café", {"sent": True})
        event = manager.recv_event_safe("sub", timeout=0.05)
        if event is not None:
            break
    assert event is not None and event.topic == "café".encode() and event.data == {"sent": True}


@pytest.mark.parametrize(
    "args",
    [
        ["tail", "tcp://127.0.0.1\udce9:5555"],
        ["tail", "inproc://caf\udce9", "--bind"],
        ["streamer", "--bind-in", "inproc://caf\udce9", "--bind-out", "inproc://out"],
        ["forwarder", "--connect-in", "ipc:///tmp/caf\udce9", "--bind-out", "inproc://out"],
    ],
)
def test_console_with_a_lone_surrogate_address_exits_2_with_one_line(args, capsys):
    assert main(args) == 2
    printed = capsys.readouterr()
    assert len(printed.err.strip().splitlines()) == 1, printed.err
    assert "\\udce9" in printed.err and "UTF-8" in printed.err and "Traceback" not in printed.err


def test_console_given_undecodable_bytes_exits_2_with_one_line():
    """The real command line: a byte that is not UTF-8 reaches Python as a lone surrogate."""
    environment = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "agentzero", "tail", b"inproc://caf\xe9", "--bind"],
        capture_output=True,
        cwd=ROOT,
        env=environment,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    assert len(lines) == 1 and "inproc://caf\\udce9" in lines[0], lines
