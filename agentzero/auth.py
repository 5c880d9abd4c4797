"""CURVE authentication: a ZAP handler that admits only listed client public keys.

ZeroMQ asks the handler bound to ``inproc://zeromq.zap.01`` of a context about
every peer that connects to a CURVE server socket of that context. This one
answers from an allow-list of public keys, and runs as a greenlet for a
``zmq.green`` context or as a (real) thread for a plain one.

>>> import zmq
>>> from agentzero.util import curve_keypair
>>> public, secret = curve_keypair()
>>> context = zmq.Context()
>>> with Authenticator(context).start() as auth:
...     auth.allow(public)
...     auth.is_allowed(public), auth.is_allowed(curve_keypair()[0])
(True, False)
>>> context.term()
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import zmq
from zmq.utils import z85

from agentzero.util import load_curve_public_keys

log = logging.getLogger("agentzero.auth")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
_ZAP_VERSION = b"1.0"


class Authenticator:
    """Admit CURVE clients whose public key is allowed; refuse every other peer.

    Parameters
    ----------
    context : zmq.Context
        the context whose CURVE server sockets this authenticator guards
        (one authenticator per context).
    """

    def __init__(self, context: Any) -> None:
        self.context = context
        self.allowed: set[bytes] = set()
        #: how many peers were admitted and refused
        self.accepted = 0
        self.denied = 0
        self._socket: Any = None
        self._runner: Any = None
        self._running = False
        self._green = _is_green(context)

    def allow(self, *public_keys: str | bytes) -> None:
        """Admit clients with these public keys (Z85 text or bytes, or 32 raw bytes)."""
        for key in public_keys:
            self.allowed.add(_z85(key))

    def allow_directory(self, directory: str) -> None:
        """Admit every public key found in the key files (``*.key``) of ``directory``."""
        self.allowed.update(load_curve_public_keys(directory))

    def is_allowed(self, public_key: str | bytes) -> bool:
        return _z85(public_key) in self.allowed

    def start(self) -> Authenticator:
        """Bind the ZAP endpoint and start answering; return self."""
        if self._running:
            return self
        # a plain socket in a zmq.asyncio context: the handler runs in a thread of its own
        self._socket = self.context.socket(zmq.REP) if self._green else zmq.Socket(self.context, zmq.REP)
        self._socket.linger = 0
        self._socket.bind(ZAP_ENDPOINT)
        self._running = True
        if self._green:
            import gevent

            self._runner = gevent.spawn(self._serve)
        else:
            thread_class = _original_thread_class()
            self._runner = thread_class(target=self._serve, name="agentzero-zap", daemon=True)
            self._runner.start()
        return self

    def stop(self) -> None:
        """Stop answering and free the ZAP endpoint."""
        if not self._running:
            return
        self._running = False
        self._runner.join(timeout=2)
        self._socket.close(linger=0)

    def __enter__(self) -> Authenticator:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _serve(self) -> None:
        while self._running:
            try:
                if not self._socket.poll(100):
                    continue
                request = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                continue
            except zmq.ZMQError:
                return  # context terminated or socket closed
            try:
                reply = self.answer(request)
            except Exception:  # a handler that dies would leave every handshake unanswered
                log.exception("ZAP request %r could not be answered", request[:6])
                reply = [
                    _ZAP_VERSION,
                    request[1] if len(request) > 1 else b"",
                    b"500",
                    b"internal error",
                    b"",
                    b"",
                ]
            self._socket.send_multipart(reply)

    def answer(self, request: list[bytes]) -> list[bytes]:
        """Return the ZAP reply to one request (RFC 27)."""
        if len(request) < 6 or request[0] != _ZAP_VERSION:
            request_id = request[1] if len(request) > 1 else b""
            self.denied += 1
            return [_ZAP_VERSION, request_id, b"400", b"malformed ZAP request", b"", b""]
        request_id, mechanism, credentials = request[1], request[5], request[6:]
        if mechanism == b"CURVE" and credentials and z85.encode(credentials[0]) in self.allowed:
            self.accepted += 1
            return [_ZAP_VERSION, request_id, b"200", b"OK", z85.encode(credentials[0]), b""]
        self.denied += 1
        reason = b"unknown key" if mechanism == b"CURVE" else b"CURVE required"
        return [_ZAP_VERSION, request_id, b"400", reason, b"", b""]


def _z85(key: str | bytes) -> bytes:
    key = key.encode("ascii") if isinstance(key, str) else bytes(key)
    if len(key) == 32:
        return z85.encode(key)
    if len(key) == 40:
        return key
    raise ValueError(f"a CURVE public key is 40 Z85 characters or 32 raw bytes, got {key!r}")


def _is_green(context: Any) -> bool:
    try:
        import zmq.green
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return isinstance(context, zmq.green.Context)


def _original_thread_class() -> type[threading.Thread]:
    """A real thread even when gevent has monkey-patched ``threading``."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover
        return threading.Thread
    return monkey.get_original("threading", "Thread")
