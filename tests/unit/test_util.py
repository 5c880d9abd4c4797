import datetime
import socket
import time

from agentzero import util


def test_serialized_exception_describes_the_exception():
    try:
        raise ValueError("bad value")
    except ValueError as error:
        info = util.serialized_exception(error)
    assert info["module"] == "builtins"
    assert info["name"] == "ValueError"
    assert "raise ValueError" in info["traceback"]
    assert info["traceback"].strip().endswith("ValueError: bad value")


def test_serialized_exception_of_an_exception_never_raised():
    info = util.serialized_exception(KeyError("k"))
    assert (info["module"], info["name"]) == ("builtins", "KeyError")
    assert "KeyError: 'k'" in info["traceback"]


def test_resolve_hostname():
    assert util.resolve_hostname("localhost") == "127.0.0.1"
    assert util.resolve_hostname("127.0.0.1") == "127.0.0.1"
    assert util.resolve_hostname("no-such-host.invalid") == "no-such-host.invalid"
    assert util.resolve_hostname("") == ""


def test_fix_zeromq_tcp_address():
    assert util.fix_zeromq_tcp_address("tcp://localhost:5000") == "tcp://127.0.0.1:5000"
    assert util.fix_zeromq_tcp_address("tcp://*:5000") == "tcp://*:5000"
    assert util.fix_zeromq_tcp_address("tcp://127.0.0.1:*") == "tcp://127.0.0.1:*"
    assert util.fix_zeromq_tcp_address("tcp://[::1]:5000") == "tcp://[::1]:5000"
    assert util.fix_zeromq_tcp_address("ipc:///tmp/sock") == "ipc:///tmp/sock"
    assert util.fix_zeromq_tcp_address("inproc://whatevs") == "inproc://whatevs"
    assert util.fix_zeromq_tcp_address("tcp://no-such-host.invalid:1") == "tcp://no-such-host.invalid:1"


def test_extract_hostname_from_tcp_address():
    assert util.extract_hostname_from_tcp_address("tcp://localhost:5000") == "localhost"
    assert util.extract_hostname_from_tcp_address("tcp://127.0.0.2:1") == "127.0.0.2"
    assert util.extract_hostname_from_tcp_address("tcp://localhost") is None
    assert util.extract_hostname_from_tcp_address("inproc://x") is None


def test_get_free_tcp_port_can_be_listened_on():
    port = util.get_free_tcp_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen(1)
    assert 0 < port < 65536


def test_addresses_with_free_ports():
    assert util.get_default_bind_address("127.0.0.1").startswith("tcp://127.0.0.1:")
    public = util.get_public_zmq_address()
    assert util.extract_hostname_from_tcp_address(public) == util.get_public_ip_address()
    assert util.get_hostname() == socket.gethostname()


def test_datetime_from_seconds_is_naive_utc():
    moment = util.datetime_from_seconds(1466424000)
    assert moment == datetime.datetime(2016, 6, 20, 12, 0, 0)
    assert moment.tzinfo is None


def test_seconds_since():
    assert 9 < util.seconds_since(time.time() - 10) < 11
    naive_utc = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert 0 <= util.seconds_since(naive_utc) < 2
