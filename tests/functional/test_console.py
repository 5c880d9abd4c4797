"""The ``agentzero`` console script, run for real in subprocesses."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from agentzero.core import SocketManager
from agentzero.version import version

pytestmark = pytest.mark.timeout(60)


def console_command() -> list[str]:
    script = Path(sys.executable).with_name("agentzero")
    if script.exists():
        return [str(script)]
    found = shutil.which("agentzero")
    assert found, "the agentzero console script is not installed (pip install -e .)"
    return [found]


def start(*args: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [*console_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return process


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([*console_command(), *args], capture_output=True, text=True, timeout=timeout)


def wait_for_banner(process: subprocess.Popen) -> str:
    line = process.stderr.readline()
    assert line, f"the device exited early with {process.wait()}"
    return line


def stop(process: subprocess.Popen, sig: int = signal.SIGINT) -> int:
    process.send_signal(sig)
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"{process.args} did not stop on signal {sig}")


@pytest.fixture
def sockets():
    context = zmq.Context()
    manager = SocketManager(zmq, context, timeout=5)
    yield manager
    manager.close_all(linger=0)
    context.term()


def test_version_and_help():
    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"agentzero {version}"
    for command in ("forwarder", "queue", "streamer", "tail"):
        helped = run(command, "--help")
        assert helped.returncode == 0 and "usage: agentzero" in helped.stdout


def test_forwarder_carries_pub_sub_end_to_end(sockets, ipc_dir):
    inbound, outbound = f"ipc://{ipc_dir}/in", f"ipc://{ipc_dir}/out"
    device = start("forwarder", "--bind-in", inbound, "--bind-out", outbound)
    try:
        assert "forwarder: SUB bound" in wait_for_banner(device)
        sockets.ensure_and_connect("pub", zmq.PUB, inbound, zmq.POLLOUT)
        sockets.ensure_and_connect("sub", zmq.SUB, outbound, zmq.POLLIN)
        sockets.set_topic("sub", "news")
        deadline = time.monotonic() + 10
        event = None
        while event is None and time.monotonic() < deadline:
            sockets.publish_safe("pub", "news", {"headline": "forwarded"})
            event = sockets.recv_event_safe("sub", timeout=0.1)
        assert event is not None and event.topic == b"news" and event.data == {"headline": "forwarded"}
    finally:
        assert stop(device) == 0


def test_queue_carries_req_rep(sockets, ipc_dir):
    inbound, outbound = f"ipc://{ipc_dir}/front", f"ipc://{ipc_dir}/back"
    device = start("queue", "--bind-in", inbound, "--bind-out", outbound, "--hwm-in", "100")
    try:
        assert "queue: ROUTER bound" in wait_for_banner(device)
        sockets.ensure_and_connect("server", zmq.REP, outbound, zmq.POLLIN | zmq.POLLOUT)
        sockets.ensure_and_connect("client", zmq.REQ, inbound, zmq.POLLIN | zmq.POLLOUT)
        for number in range(5):
            assert sockets.send_safe("client", {"question": number})
            assert sockets.recv_safe("server") == {"question": number}
            assert sockets.send_safe("server", {"answer": number * 2})
            assert sockets.recv_safe("client") == {"answer": number * 2}
    finally:
        assert stop(device, signal.SIGTERM) == 0


def test_streamer_connects_both_sides(sockets):
    sockets.ensure_and_bind("producer", zmq.PUSH, "tcp://127.0.0.1:*", zmq.POLLOUT)
    sockets.ensure_and_bind("consumer", zmq.PULL, "tcp://127.0.0.1:*", zmq.POLLIN)
    device = start(
        "streamer",
        "--connect-in",
        sockets.addresses["producer"],
        "--connect-out",
        sockets.addresses["consumer"],
    )
    try:
        assert "streamer: PULL connected" in wait_for_banner(device)
        for number in range(100):
            assert sockets.send_safe("producer", number)
        assert [sockets.recv_safe("consumer") for _ in range(100)] == list(range(100))
    finally:
        assert stop(device) == 0


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_tail_prints_what_a_log_handler_publishes(sockets, ipc_dir, as_json):
    address = f"ipc://{ipc_dir}/logs"
    args = ["tail", address, "--bind", "--topic", "logs", "--count", "3"] + (["--json"] if as_json else [])
    tail = start(*args)
    try:
        sockets.ensure_and_connect("logs", zmq.PUB, address, zmq.POLLOUT)
        logger = sockets.get_logger("logs", topic_name="logs", logger_name=f"tail-test-{as_json}")
        deadline = time.monotonic() + 20
        number = 0
        while tail.poll() is None and time.monotonic() < deadline:
            sockets.publish_safe("logs", "other-topic", {"ignored": True})
            logger.info("hello %d", number)
            number += 1
            time.sleep(0.05)
        out, err = tail.communicate(timeout=10)
    finally:
        logger.handlers.clear()
        if tail.poll() is None:
            tail.kill()
    assert tail.returncode == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 3
    if as_json:
        first = json.loads(lines[0])
        assert first["topic"] == "logs" and first["data"]["level"] == 20
        assert first["data"]["msg"].startswith("hello ")
    else:
        assert all(line.startswith("INFO     logs  hello ") for line in lines), lines
    assert "other-topic" not in out


@pytest.mark.parametrize(
    "args, named",
    [
        (["streamer", "--bind-in", "nonsense", "--bind-out", "inproc://x"], "'nonsense'"),
        (["forwarder", "--connect-in", "tcp://127.0.0.1", "--bind-out", "inproc://x"], "'tcp://127.0.0.1'"),
        (["tail", "bogus://address"], "'bogus://address'"),
        (["queue", "--bind-in", "inproc://a"], "--bind-out"),
        (["queue", "--bind-in", "inproc://a", "--bind-out", "inproc://b", "--type-in", "NOPE"], "NOPE"),
        (
            ["streamer", "--bind-in", "inproc://a", "--bind-out", "inproc://b", "--hwm-in", "-1"],
            "must be >= 0",
        ),
        (["explode"], "explode"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, named):
    done = run(*args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert named in done.stderr
    assert "Traceback" not in done.stderr


def test_busy_address_exits_2(sockets):
    sockets.ensure_and_bind("taken", zmq.PULL, "tcp://127.0.0.1:*", zmq.POLLIN)
    taken = sockets.addresses["taken"]
    done = run("streamer", "--bind-in", taken, "--bind-out", "inproc://x")
    assert done.returncode == 2 and taken in done.stderr and "Address already in use" in done.stderr


def test_tail_exits_cleanly_on_ctrl_c(ipc_dir):
    tail = start("tail", f"ipc://{ipc_dir}/quiet", "--bind")
    time.sleep(0.5)
    assert stop(tail) == 0
    assert "Traceback" not in tail.stderr.read()


def test_keys_writes_a_key_pair(tmp_path):
    from agentzero.util import load_curve_keypair

    done = run("keys", str(tmp_path / "keys"), "--name", "server")
    assert done.returncode == 0, done.stderr
    public_path, secret_path = tmp_path / "keys" / "server.key", tmp_path / "keys" / "server.key_secret"
    public, secret = load_curve_keypair(str(secret_path))
    assert load_curve_keypair(str(public_path)) == (public, None)
    assert done.stdout.strip().splitlines()[-1] == public.decode()
    assert oct(secret_path.stat().st_mode & 0o777) == "0o600"
    assert zmq.curve_public(secret) == public


def test_keys_into_an_unusable_directory_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = run("keys", str(blocker / "keys"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "cannot write keys" in done.stderr
