"""CURVE encryption and authentication, and the largest message a peer may send."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import zmq

from agentzero.auth import ZAP_ENDPOINT, Authenticator
from agentzero.core import SocketManager
from agentzero.errors import SocketBindError
from agentzero.util import curve_keypair, write_curve_keypair

SECRET_PAYLOAD = "TOP-SECRET-PAYLOAD-3f2a"


@pytest.fixture
def keys():
    server_public, server_secret = curve_keypair()
    client_public, client_secret = curve_keypair()
    return {
        "server_public": server_public,
        "server_secret": server_secret,
        "client_public": client_public,
        "client_secret": client_secret,
    }


@pytest.fixture
def curve_server(manager, zmq_module, keys):
    """A CURVE PULL server on loopback whose authenticator admits the listed client only."""
    manager.create("server", zmq_module.PULL)
    manager.make_curve_server("server", keys["server_secret"])
    manager.bind("server", "tcp://127.0.0.1:*", zmq.POLLIN)
    authenticator = manager.start_authenticator(allowed_keys=[keys["client_public"]])
    return manager.addresses["server"], authenticator


def connect_client(manager, zmq_module, address, **curve):
    manager.create("client", zmq_module.PUSH)
    if curve:
        manager.make_curve_client("client", **curve)
    manager.connect("client", address, zmq.POLLOUT)


def test_listed_client_exchanges_messages(manager, zmq_module, keys, curve_server):
    address, authenticator = curve_server
    connect_client(
        manager,
        zmq_module,
        address,
        server_public_key=keys["server_public"],
        public_key=keys["client_public"],
        secret_key=keys["client_secret"],
    )
    assert manager.send_safe("client", {"secret": SECRET_PAYLOAD})
    assert manager.recv_safe("server", timeout=5) == {"secret": SECRET_PAYLOAD}
    assert authenticator.accepted >= 1


def test_unlisted_client_gets_nothing_through(manager, zmq_module, keys, curve_server):
    address, authenticator = curve_server
    stranger_public, stranger_secret = curve_keypair()
    connect_client(
        manager,
        zmq_module,
        address,
        server_public_key=keys["server_public"],
        public_key=stranger_public,
        secret_key=stranger_secret,
    )
    manager.send_safe("client", "let me in", timeout=0.5)
    assert manager.recv_safe("server", timeout=1) is None
    assert authenticator.denied >= 1 and authenticator.accepted == 0


def test_plaintext_client_gets_nothing_through(manager, zmq_module, curve_server):
    address, _ = curve_server
    connect_client(manager, zmq_module, address)
    manager.send_safe("client", "plain hello", timeout=0.5)
    assert manager.recv_safe("server", timeout=1) is None


def test_client_with_the_wrong_server_key_gets_nothing_through(manager, zmq_module, keys, curve_server):
    address, authenticator = curve_server
    wrong_server_public, _ = curve_keypair()
    connect_client(
        manager,
        zmq_module,
        address,
        server_public_key=wrong_server_public,
        public_key=keys["client_public"],
        secret_key=keys["client_secret"],
    )
    manager.send_safe("client", "hello?", timeout=0.5)
    assert manager.recv_safe("server", timeout=1) is None
    assert authenticator.accepted == 0


def test_keys_from_a_directory_of_key_files(manager, zmq_module, keys, tmp_path):
    from agentzero.util import load_curve_keypair

    public_path, secret_path = write_curve_keypair(str(tmp_path), "worker")
    public, secret = load_curve_keypair(secret_path)
    manager.create("server", zmq_module.PULL)
    manager.make_curve_server("server", keys["server_secret"])
    manager.bind("server", "tcp://127.0.0.1:*", zmq.POLLIN)
    manager.start_authenticator(keys_directory=str(tmp_path))
    connect_client(
        manager,
        zmq_module,
        manager.addresses["server"],
        server_public_key=keys["server_public"],
        public_key=public,
        secret_key=secret,
    )
    assert manager.send_safe("client", "from a key file")
    assert manager.recv_safe("server", timeout=5) == "from a key file"


def test_bad_keys_are_refused_with_a_clear_error(manager, zmq_module):
    manager.create("server", zmq_module.PULL)
    with pytest.raises(ValueError, match="secret_key must be a 40-character Z85 CURVE key"):
        manager.make_curve_server("server", "too-short")
    with pytest.raises(ValueError, match="needs the secret key"):
        manager.make_curve_client("server", curve_keypair()[0], public_key=curve_keypair()[0])


class Relay:
    """A loopback TCP relay that records every byte going from client to server."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.recorded = bytearray()
        self.lock = threading.Lock()
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, record: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if record:
                    with self.lock:
                        self.recorded += chunk
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.closing = True
        self.listener.close()


@pytest.mark.parametrize("encrypted", [True, False], ids=["curve", "plaintext-control"])
def test_no_plaintext_payload_crosses_the_wire(manager, zmq_module, keys, encrypted):
    manager.create("server", zmq_module.PULL)
    if encrypted:
        manager.make_curve_server("server", keys["server_secret"])
        manager.start_authenticator(allowed_keys=[keys["client_public"]])
    manager.bind("server", "tcp://127.0.0.1:*", zmq.POLLIN)
    relay = Relay(int(manager.addresses["server"].rsplit(":", 1)[1]))
    try:
        curve = {}
        if encrypted:
            curve = {
                "server_public_key": keys["server_public"],
                "public_key": keys["client_public"],
                "secret_key": keys["client_secret"],
            }
        connect_client(manager, zmq_module, f"tcp://127.0.0.1:{relay.port}", **curve)
        for _ in range(5):
            assert manager.send_safe("client", {"secret": SECRET_PAYLOAD})
        assert [manager.recv_safe("server", timeout=5) for _ in range(5)] == [{"secret": SECRET_PAYLOAD}] * 5
        with relay.lock:
            wire = bytes(relay.recorded)
        assert len(wire) > 5 * len(SECRET_PAYLOAD)
        # the control run proves the relay sees payloads; with CURVE it must not
        assert (SECRET_PAYLOAD.encode() in wire) is (not encrypted)
    finally:
        relay.close()


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_oversized_message_is_dropped_and_the_receiver_keeps_working(zmq_module, context):
    with (
        SocketManager(zmq_module, context, max_message_size=1024) as receiver,
        SocketManager(zmq_module, context) as sender,
    ):
        receiver.ensure_and_bind("in", zmq_module.PULL, "tcp://127.0.0.1:*", zmq.POLLIN)
        assert receiver.sockets["in"].getsockopt(zmq.MAXMSGSIZE) == 1024
        sender.ensure_and_connect("out", zmq_module.PUSH, receiver.addresses["in"], zmq.POLLOUT)
        assert sender.send_safe("out", {"blob": "x" * 4096})
        assert receiver.recv_safe("in", timeout=0.5) is None
        # the peer was disconnected; it reconnects on its own and small messages get through
        assert sender.send_safe("out", {"small": True})
        assert receiver.recv_safe("in", timeout=5) == {"small": True}


def test_max_message_size_per_socket(manager, zmq_module):
    manager.create("in", zmq_module.PULL)
    manager.set_socket_option("in", zmq.MAXMSGSIZE, 64)
    manager.bind("in", "tcp://127.0.0.1:*", zmq.POLLIN)
    manager.ensure_and_connect("out", zmq_module.PUSH, manager.addresses["in"], zmq.POLLOUT)
    manager.send_safe("out", "y" * 500)
    assert manager.recv_safe("in", timeout=0.5) is None
    manager.send_safe("out", "ok")
    assert manager.recv_safe("in", timeout=5) == "ok"


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_max_message_size_must_be_positive(zmq_module, context):
    with pytest.raises(ValueError, match="max_message_size"):
        SocketManager(zmq_module, context, max_message_size=0)


# -- the authenticator starts, fails and stops cleanly, every time -------------------


def terminates_within(context, seconds=5.0):
    """Whether ``context.term()`` (not destroy: it must not need help) returns within ``seconds``."""
    done = threading.Event()

    def term():
        context.term()
        done.set()

    threading.Thread(target=term, daemon=True).start()
    return done.wait(seconds)


def curve_round_trip(zmq_module, context, keys, admitted=True):
    """A CURVE PULL server and a listed (or unlisted) PUSH client on loopback: does a message get through?"""
    with SocketManager(zmq_module, context, timeout=5) as sockets:
        sockets.create("server", zmq_module.PULL)
        sockets.make_curve_server("server", keys["server_secret"])
        sockets.bind("server", "tcp://127.0.0.1:*", zmq.POLLIN)
        public, secret = (keys["client_public"], keys["client_secret"]) if admitted else curve_keypair()
        sockets.create("client", zmq_module.PUSH)
        sockets.make_curve_client(
            "client", server_public_key=keys["server_public"], public_key=public, secret_key=secret
        )
        sockets.connect("client", sockets.addresses["server"], zmq.POLLOUT)
        sockets.send_safe("client", "through?", timeout=0.5)
        received = sockets.recv_safe("server", timeout=3 if admitted else 0.5)
        sockets.close_all(linger=0)
        return received == "through?"


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_a_failed_start_closes_its_socket_and_raises(zmq_module):
    context = zmq_module.Context()
    squatter = context.socket(zmq.REP)
    squatter.bind(ZAP_ENDPOINT)
    sockets = SocketManager(zmq_module, context)
    try:
        for _ in range(3):
            with pytest.raises(SocketBindError, match="zeromq.zap.01") as refused:
                sockets.start_authenticator()
            assert refused.value.errno == zmq.EADDRINUSE
            assert sockets._authenticator is None
    finally:
        sockets.close_all(linger=0)
        squatter.close(linger=0)
    # nothing was left open: a plain term() (which waits for every socket) returns
    assert terminates_within(context), "context.term() hangs: the failed start leaked its socket"


@pytest.mark.sync_only("it works on the context's sockets directly, not through the manager fixture")
def test_stop_then_start_on_the_same_context_works_every_time(zmq_module, context, keys):
    authenticator = Authenticator(context)
    authenticator.allow(keys["client_public"])
    assert not authenticator.running
    for attempt in range(25):
        assert authenticator.start() is authenticator
        assert authenticator.running
        if attempt % 8 == 0:
            assert curve_round_trip(zmq_module, context, keys)
        started = time.monotonic()
        authenticator.stop()
        assert time.monotonic() - started < 2.0
        assert not authenticator.running
    with authenticator:
        assert curve_round_trip(zmq_module, context, keys)
        assert not curve_round_trip(zmq_module, context, keys, admitted=False)
    assert not authenticator.running


@pytest.mark.sync_only("it builds sync SocketManagers of its own")
def test_a_new_manager_starts_the_authenticator_after_the_old_one_closed(zmq_module, context, keys):
    for attempt in range(25):
        sockets = SocketManager(zmq_module, context)
        authenticator = sockets.start_authenticator(allowed_keys=[keys["client_public"]])
        assert authenticator.running
        if attempt % 8 == 0:
            assert curve_round_trip(zmq_module, context, keys)
        sockets.close_all(linger=0)
        assert not authenticator.running
    assert terminates_within(context)


def test_keys_that_are_not_z85_or_ascii_are_refused_with_a_value_error(manager, zmq_module):
    # a 40-character secret key outside the Z85 alphabet came through as pyzmq's ZMQError
    # (zmq.curve_public); a key with non-ASCII text as a bare UnicodeEncodeError naming no key
    server_public, _ = curve_keypair()
    manager.create("client", zmq_module.DEALER)
    with pytest.raises(ValueError, match="secret_key") as caught:
        manager.make_curve_client("client", server_public, secret_key="~" * 40)
    assert not isinstance(caught.value, zmq.ZMQError)
    with pytest.raises(ValueError, match="server_public_key must be a 40-character Z85"):
        manager.make_curve_client("client", "é" * 40)
    with pytest.raises(ValueError, match="secret_key must be a 40-character Z85"):
        manager.make_curve_server("client", "é" * 40)
    assert manager.get_record("client").options == {}  # nothing was set


def test_errors_about_secret_keys_never_show_the_secret(manager, zmq_module):
    # an exception message ends up in logs: a secret key (or a near miss of one) must not be in it
    server_public, _ = curve_keypair()
    near_miss = "~" + curve_keypair()[1].decode()[1:]  # 40 characters, one outside Z85
    wrong_length = "S3cr3t" * 5
    manager.create("client", zmq_module.DEALER)
    manager.create("server", zmq_module.ROUTER)
    shown = []
    for call in (
        lambda: manager.make_curve_client("client", server_public, secret_key=near_miss),
        lambda: manager.make_curve_client("client", server_public, secret_key=wrong_length),
        lambda: manager.make_curve_server("server", wrong_length),
        lambda: manager.set_socket_option("client", zmq.CURVE_SECRETKEY, near_miss),
        lambda: manager.set_socket_option("client", zmq.PLAIN_PASSWORD, "p\udc80ssword"),
    ):
        with pytest.raises(ValueError) as caught:
            call()
        shown.append(str(caught.value) + repr(getattr(caught.value, "value", "")))
    for text in shown:
        assert near_miss not in text and near_miss[1:20] not in text, text
        assert wrong_length not in text and "p\udc80ssword" not in text, text
    assert "40 characters" in shown[0] and "CURVE_SECRETKEY" in shown[3] and "PLAIN_PASSWORD" in shown[4]
