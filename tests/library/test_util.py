import datetime
import os
import socket
import stat
import time

import pytest
import zmq

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


def test_extract_hostname_from_anything_but_text_is_none():
    # agentzero 0.4.6's own test passes a dict
    for value in ({"host": "localhost"}, None, 5000, b"tcp://localhost:5000", ["tcp://a:1"]):
        assert util.extract_hostname_from_tcp_address(value) is None


def test_write_curve_keypair_creates_the_secret_file_owner_only_from_the_start(tmp_path, monkeypatch):
    # spy on os.open: the secret file must be born 0600 with O_EXCL, never chmod-ed afterwards
    created = {}
    real_open = os.open

    def recording_open(path, flags, mode=0o777, *args, **kwargs):
        created[os.path.basename(path)] = (flags, mode)
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    old_umask = os.umask(0)  # the widest umask: the mode given to open() is what the file gets
    try:
        public_path, secret_path = util.write_curve_keypair(str(tmp_path / "keys"), "server")
    finally:
        os.umask(old_umask)
    flags, mode = created["server.key_secret"]
    assert mode == 0o600 and flags & os.O_EXCL and flags & os.O_CREAT
    assert stat.S_IMODE(os.stat(secret_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(public_path).st_mode) == 0o644
    public, secret = util.load_curve_keypair(secret_path)
    assert util.load_curve_keypair(public_path) == (public, None)
    assert len(public) == len(secret) == 40
    assert zmq.curve_public(secret) == public


def test_write_curve_keypair_refuses_to_overwrite_a_pair_unless_forced(tmp_path):
    directory = str(tmp_path)
    public_path, secret_path = util.write_curve_keypair(directory, "server")
    before = util.load_curve_keypair(secret_path)
    with pytest.raises(FileExistsError) as refused:
        util.write_curve_keypair(directory, "server")
    assert refused.value.filename == public_path
    os.rename(public_path, public_path + ".aside")  # only the secret left: still refused
    with pytest.raises(FileExistsError) as refused:
        util.write_curve_keypair(directory, "server")
    assert refused.value.filename == secret_path
    os.rename(public_path + ".aside", public_path)
    assert util.load_curve_keypair(secret_path) == before
    util.write_curve_keypair(directory, "server", force=True)
    after = util.load_curve_keypair(secret_path)
    assert after != before and util.load_curve_keypair(public_path) == (after[0], None)
    assert stat.S_IMODE(os.stat(secret_path).st_mode) == 0o600
    assert sorted(os.listdir(directory)) == ["server.key", "server.key_secret"]  # no temporary file left


def test_write_curve_keypair_never_follows_a_planted_link(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("precious")
    (tmp_path / "server.key_secret").symlink_to(target)
    with pytest.raises(FileExistsError):
        util.write_curve_keypair(str(tmp_path), "server")
    assert target.read_text() == "precious"
