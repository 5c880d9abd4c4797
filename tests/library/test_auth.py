"""The ZAP answers of the authenticator, request by request (RFC 27)."""

import pytest
import zmq
from zmq.utils import z85

from agentzero.auth import Authenticator
from agentzero.errors import SocketBindError
from agentzero.util import curve_keypair


def request(mechanism=b"CURVE", key=b"", version=b"1.0"):
    return [version, b"id-1", b"", b"127.0.0.1", b"", mechanism, key]


def test_answers_by_allow_list():
    public, _ = curve_keypair()
    stranger, _ = curve_keypair()
    auth = Authenticator(zmq.Context.instance())
    auth.allow(public)
    assert auth.answer(request(key=z85.decode(public))) == [b"1.0", b"id-1", b"200", b"OK", public, b""]
    assert auth.answer(request(key=z85.decode(stranger)))[2:4] == [b"400", b"unknown key"]
    assert auth.answer(request(mechanism=b"NULL"))[2:4] == [b"400", b"CURVE required"]
    assert auth.answer([b"2.0", b"id-9"])[:4] == [b"1.0", b"id-9", b"400", b"malformed ZAP request"]
    assert auth.answer([])[2] == b"400"
    assert (auth.accepted, auth.denied) == (1, 4)


def test_keys_may_be_raw_or_text():
    public, _ = curve_keypair()
    auth = Authenticator(zmq.Context.instance())
    auth.allow(z85.decode(public))
    assert auth.is_allowed(public.decode())


def test_running_follows_start_and_stop():
    context = zmq.Context()
    try:
        auth = Authenticator(context)
        assert auth.running is False
        auth.start()
        assert auth.running is True
        auth.start()  # starting twice is harmless
        auth.stop()
        assert auth.running is False
        auth.stop()  # and so is stopping twice
    finally:
        context.destroy(linger=0)


def test_a_taken_endpoint_is_a_library_error_naming_it():
    context = zmq.Context()
    try:
        with Authenticator(context) as first:
            with pytest.raises(SocketBindError, match="inproc://zeromq.zap.01") as refused:
                Authenticator(context).start()
            assert refused.value.errno == zmq.EADDRINUSE and first.running
    finally:
        context.destroy(linger=0)
