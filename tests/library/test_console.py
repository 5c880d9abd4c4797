"""The ``agentzero`` console script, run for real in subprocesses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest
import zmq

from agentzero.core import SocketManager
from agentzero.version import version
from tests.library.console_helpers import console_command, run, start, stop, wait_for_banner

pytestmark = pytest.mark.timeout(60)


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
    # the record text is the handler's format: 0.4.6's "[time] LEVEL file:line - message\n"
    # or the bare message; tail drops the trailing newline when printing text
    record_text = re.compile(r"(\[[^]]+\] INFO test_console\.py:\d+ - )?hello \d+\n?")
    if as_json:
        first = json.loads(lines[0])
        assert first["topic"] == "logs" and first["data"]["level"] == 20
        assert record_text.fullmatch(first["data"]["msg"]), first
    else:
        # the level shows once: tail's own column only when the record text does not name it
        printed = re.compile(
            r"logs  \[[^]]+\] INFO test_console\.py:\d+ - hello \d+|INFO     logs  hello \d+"
        )
        assert all(printed.fullmatch(line) and line.count("INFO") == 1 for line in lines), lines
        assert not any(line.endswith("\\n") for line in lines), lines
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
        (["queue", "--bind-in", "inproc://a", "--bind-out", "inproc://b", "--hwm-out", "2147483648"], "<="),
        (["tail", "ipc:///tmp/x", "--serializer", "yaml"], "'yaml'"),
        (["tail", "ipc:///tmp/x", "--max-size", "0"], "must be >= 1"),
        (["tail", "ipc:///tmp/x", "--max-size", "lots"], "'lots'"),
        (["tail", "ipc:///tmp/x", "--max-size", "9223372036854775808"], "<="),  # over libzmq's int64
        (["tail", "ipc:///tmp/x", "--count", "-3"], "must be >= 0"),
        (["tail", "ipc:///tmp/x", "--color", "rainbow"], "'rainbow'"),
        (["tail", "bogus://\x1b[2J\nsecond line"], "bogus://\\x1b[2J\\nsecond line"),
        (["keys", "/tmp", "--name", "../escape"], "invalid key name '../escape'"),
        (["keys", "/tmp", "--name", ".hidden"], "invalid key name '.hidden'"),
        (["streamer", "--bind-in", "inproc://a", "--bind-out", "inproc://b", "--type-in", "PUB"], "PUB"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, named):
    done = run(*args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert named in done.stderr
    assert "Traceback" not in done.stderr and "\x1b" not in done.stderr


def test_busy_address_exits_2(sockets):
    sockets.ensure_and_bind("taken", zmq.PULL, "tcp://127.0.0.1:*", zmq.POLLIN)
    taken = sockets.addresses["taken"]
    done = run("streamer", "--bind-in", taken, "--bind-out", "inproc://x")
    assert done.returncode == 2 and taken in done.stderr and "Address already in use" in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_tail_exits_cleanly_on_ctrl_c(ipc_dir, sig):
    tail = start("tail", f"ipc://{ipc_dir}/quiet", "--bind")
    # it says where it listens before any event arrives (and only once it can be stopped cleanly)
    started = time.monotonic()
    assert (
        wait_for_banner(tail)
        == f"agentzero tail: listening on ipc://{ipc_dir}/quiet (bound; topics: (all); json)\n"
    )
    assert time.monotonic() - started < 10
    assert stop(tail, sig) == 0
    assert "Traceback" not in tail.stderr.read()


def test_tail_started_with_ctrl_c_ignored_keeps_ignoring_it_and_stops_on_sigterm(ipc_dir):
    # a shell script's background job starts with SIGINT ignored: tail keeps it so, as Python does
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        tail = start("tail", f"ipc://{ipc_dir}/ignored", "--bind")
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert "listening on" in wait_for_banner(tail)
        tail.send_signal(signal.SIGINT)
        with pytest.raises(subprocess.TimeoutExpired):
            tail.wait(timeout=1)  # still running, well past its 0.2 s loop
    finally:
        assert stop(tail, signal.SIGTERM) == 0
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


# -- help, examples and defaults ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["forwarder", "queue", "streamer", "tail", "keys"])
def test_every_option_has_help_a_default_and_examples(command):
    helped = run(command, "--help")
    assert helped.returncode == 0
    text = helped.stdout
    assert re.search(rf"examples:\n  # .+\n  agentzero {command} ", text), text
    from agentzero.cli.main import build_parser

    parser = build_parser()
    (commands,) = (action for action in parser._actions if action.dest == "command")
    for action in commands.choices[command]._actions:
        if action.dest == "help":
            continue
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
        says_default = "default" in action.help
        in_required_group = action.dest.startswith(("bind_", "connect_"))
        assert says_default or in_required_group or not action.option_strings, (command, action.help)
    # what the help says is what the parser does
    for option, default in (("--type-in", "default: "), ("--hwm-in", "default: ZeroMQ's")):
        if command in ("forwarder", "queue", "streamer"):
            assert option in text and default in text


# -- devices: socket types that cannot work together --------------------------------------------


@pytest.mark.parametrize(
    "device, type_in, type_out, reason",
    [
        ("streamer", "PUB", "PUSH", "a PUB socket cannot receive"),
        ("streamer", "PULL", "PULL", "a PULL socket cannot send"),
        ("streamer", "SUB", "PUSH", "a streamer moves pipeline (push-pull) messages"),
        ("forwarder", "PUSH", "PULL", "a PUSH socket cannot receive"),
        ("forwarder", "XSUB", "PUB", "an XSUB subscribes only to what an XPUB passes back"),
        ("forwarder", "PULL", "PUSH", "a forwarder moves publish-subscribe messages"),
        ("queue", "ROUTER", "ROUTER", "a ROUTER out sends only to the peer named in the first frame"),
        ("queue", "REQ", "DEALER", "a queue moves request-reply messages"),
        ("queue", "ROUTER", "PUB", "a queue moves request-reply messages"),
    ],
)
def test_devices_refuse_socket_types_that_cannot_work_together(ipc_dir, device, type_in, type_out, reason):
    inbound = f"ipc://{ipc_dir}/in"
    args = ["--bind-in", inbound, "--bind-out", f"ipc://{ipc_dir}/out"]
    done = run(device, *args, "--type-in", type_in.lower(), "--type-out", type_out)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert f"a {device} cannot run {type_in} -> {type_out}: {reason}" in done.stderr
    assert "; use " in done.stderr
    assert not os.path.exists(f"{ipc_dir}/in"), "a refused device must not bind anything"


@pytest.mark.parametrize("type_in", ["XSUB", "SUB"])
def test_forwarder_with_xpub_passes_subscriptions_upstream(sockets, ipc_dir, type_in):
    inbound, outbound = f"ipc://{ipc_dir}/in", f"ipc://{ipc_dir}/out"
    device = start(
        "forwarder", "--bind-in", inbound, "--bind-out", outbound, "--type-in", type_in, "--type-out", "XPUB"
    )
    try:
        assert f"forwarder: {type_in} bound" in wait_for_banner(device)
        assert "listening on" in wait_for_banner(device)
        sockets.ensure_and_connect("pub", zmq.PUB, inbound, zmq.POLLOUT)
        sockets.ensure_and_connect("sub", zmq.SUB, outbound, zmq.POLLIN)
        sockets.set_topic("sub", "wanted")
        deadline = time.monotonic() + 10
        event = None
        while event is None and time.monotonic() < deadline:
            sockets.publish_safe("pub", "unwanted", {"n": 0})
            sockets.publish_safe("pub", "wanted", {"n": 1})
            event = sockets.recv_event_safe("sub", timeout=0.1)
        assert event == (b"wanted", {"n": 1})
        for _ in range(20):
            sockets.publish_safe("pub", "unwanted", {"n": 0})
            sockets.publish_safe("pub", "wanted", {"n": 2})
        received = [sockets.recv_event_safe("sub", timeout=0.5) for _ in range(20)]
        assert all(event is not None and event.topic == b"wanted" for event in received)
    finally:
        assert stop(device) == 0


def test_device_says_where_it_listens_with_the_real_port(sockets, ipc_dir):
    device = start("streamer", "--bind-in", "tcp://127.0.0.1:*", "--bind-out", f"ipc://{ipc_dir}/out")
    try:
        assert "streamer: PULL bound tcp://127.0.0.1:" in wait_for_banner(device)
        listening = wait_for_banner(device)
        match = re.fullmatch(
            rf"streamer: listening on (tcp://127\.0\.0\.1:\d+) \(in\), ipc://{ipc_dir}/out \(out\)\n",
            listening,
        )
        assert match, listening
        sockets.ensure_and_connect("producer", zmq.PUSH, match.group(1), zmq.POLLOUT)
        sockets.ensure_and_connect("consumer", zmq.PULL, f"ipc://{ipc_dir}/out", zmq.POLLIN)
        assert sockets.send_safe("producer", "through the real port")
        assert sockets.recv_safe("consumer") == "through the real port"
    finally:
        assert stop(device, signal.SIGTERM) == 0


def test_device_that_only_connects_says_so(sockets):
    sockets.ensure_and_bind("producer", zmq.PUSH, "tcp://127.0.0.1:*", zmq.POLLOUT)
    sockets.ensure_and_bind("consumer", zmq.PULL, "tcp://127.0.0.1:*", zmq.POLLIN)
    addresses = sockets.addresses
    device = start("streamer", "--connect-in", addresses["producer"], "--connect-out", addresses["consumer"])
    try:
        wait_for_banner(device)
        assert wait_for_banner(device) == "streamer: listening on no address (both sides connect)\n"
    finally:
        assert stop(device) == 0


# -- keys -----------------------------------------------------------------------------------------


def test_keys_refuse_to_overwrite_a_key_pair_unless_forced(tmp_path):
    directory = str(tmp_path / "keys")
    assert run("keys", directory, "--name", "server").returncode == 0
    secret_path = tmp_path / "keys" / "server.key_secret"
    original = secret_path.read_bytes()
    again = run("keys", directory, "--name", "server")
    assert again.returncode == 2 and again.stdout == ""
    assert len(again.stderr.strip().splitlines()) == 1 and "Traceback" not in again.stderr
    assert "a key pair named 'server' exists" in again.stderr and "--force" in again.stderr
    assert secret_path.read_bytes() == original
    # half a pair is still a pair someone may rely on
    (tmp_path / "keys" / "client.key").write_text("a public key someone shared")
    assert run("keys", directory, "--name", "client").returncode == 2
    assert (tmp_path / "keys" / "client.key").read_text() == "a public key someone shared"
    # a different name is fine, and --force replaces
    assert run("keys", directory, "--name", "other").returncode == 0
    forced = run("keys", directory, "--name", "server", "--force")
    assert forced.returncode == 0, forced.stderr
    assert secret_path.read_bytes() != original
    assert oct(secret_path.stat().st_mode & 0o777) == "0o600"


SITECUSTOMIZE = """
import atexit, os, stat, sys
_secret = os.environ["AZ_WATCH_SECRET"]
_seen = []
def _watch(event, args, _busy=[]):
    if _busy:
        return
    _busy.append(1)
    try:
        mode = stat.S_IMODE(os.lstat(_secret).st_mode)
        _seen.append(f"{event} {mode:o}")
    except OSError:
        pass
    finally:
        _busy.clear()
sys.addaudithook(_watch)
atexit.register(lambda: open(os.environ["AZ_WATCH_REPORT"], "w").write("\\n".join(_seen)))
"""


def test_keys_create_the_secret_file_0600_from_the_start(tmp_path):
    # An audit hook loaded into the real console script looks at the secret file's mode at
    # every audited operation once it exists: it must never have been readable by others.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    secret = tmp_path / "keys" / "server.key_secret"
    report = tmp_path / "report"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])),
        AZ_WATCH_SECRET=str(secret),
        AZ_WATCH_REPORT=str(report),
    )
    done = subprocess.run(
        [*console_command(), "keys", str(tmp_path / "keys"), "--name", "server"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert done.returncode == 0, done.stderr
    seen = report.read_text().splitlines()
    assert seen, "the audit hook saw no operation after the secret file existed"
    assert all(line.endswith(" 600") for line in seen), seen
    public = tmp_path / "keys" / "server.key"
    assert oct(public.stat().st_mode & 0o777) == "0o644"  # the public key stays shareable


def test_queue_with_a_dealer_in_serves_a_single_upstream(sockets, ipc_dir):
    # DEALER -> DEALER keeps the envelope in the frames: what a chain of brokers relies on.
    # Its upstream peer is a DEALER (or a ROUTER): ZeroMQ refuses REQ <-> DEALER over ipc and tcp.
    inbound, outbound = f"ipc://{ipc_dir}/front", f"ipc://{ipc_dir}/back"
    device = start("queue", "--bind-in", inbound, "--bind-out", outbound, "--type-in", "DEALER")
    try:
        assert "queue: DEALER bound" in wait_for_banner(device)
        sockets.ensure_and_connect("server", zmq.REP, outbound, zmq.POLLIN | zmq.POLLOUT)
        client = sockets.ensure_and_connect("client", zmq.DEALER, inbound, zmq.POLLIN | zmq.POLLOUT)
        for number in range(3):
            client.send_multipart([b"", json.dumps({"question": number}).encode()])
            assert sockets.recv_safe("server") == {"question": number}
            assert sockets.send_safe("server", {"answer": -number})
            assert client.poll(5000), "no reply came back through the queue"
            assert client.recv_multipart() == [b"", json.dumps({"answer": -number}).replace(" ", "").encode()]
    finally:
        assert stop(device) == 0
