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
import uuid
from typing import Any

import zmq
from zmq.utils import z85

from agentzero.errors import SocketBindError
from agentzero.patching import is_green_context, original
from agentzero.util import load_curve_public_keys

log = logging.getLogger("agentzero.auth")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
#: how often, at most, the runner checks whether it was stopped, in seconds
POLL_INTERVAL = 0.05
#: the longest :meth:`Authenticator.stop` waits for the runner by default, in seconds
STOP_TIMEOUT = 5.0
POLL_INTERVAL_MS = int(POLL_INTERVAL * 1000)
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
        self._stop_signal: Any = None  # a thread's runner is woken through it at once by stop()
        self._running = False
        self._green = is_green_context(context)

    def allow(self, *public_keys: str | bytes) -> None:
        """Admit clients with these public keys (Z85 text or bytes, or 32 raw bytes)."""
        for key in public_keys:
            self.allowed.add(_z85(key))

    def allow_directory(self, directory: str) -> None:
        """Admit every public key found in the key files (``*.key``) of ``directory``."""
        self.allowed.update(load_curve_public_keys(directory))

    def is_allowed(self, public_key: str | bytes) -> bool:
        return _z85(public_key) in self.allowed

    @property
    def running(self) -> bool:
        """Whether the authenticator holds the ZAP endpoint and answers requests."""
        return self._running

    def start(self) -> Authenticator:
        """Bind the ZAP endpoint and start answering; return self.

        Starting again after :meth:`stop`, on the same context or from a new
        one, works every time: :meth:`stop` frees the endpoint before it returns.

        Returns
        -------
        Authenticator
            self, running

        Raises
        ------
        SocketBindError
            when the endpoint is taken (another authenticator runs on this
            context); the socket made for it is closed, so the context can
            still terminate.
        """
        if self._running:
            return self
        # a plain socket in a zmq.asyncio context: the handler runs in a thread of its own
        socket = self.context.socket(zmq.REP) if self._green else zmq.Socket(self.context, zmq.REP)
        socket.linger = 0
        try:
            socket.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as exc:
            socket.close(linger=0)
            raise SocketBindError("zap", ZAP_ENDPOINT, exc) from None
        self._socket = socket
        self._running = True
        if self._green:
            import gevent

            self._runner = gevent.spawn(self._serve, socket)
        else:
            # the socket moves to the runner thread, which alone uses it (starting a thread is a
            # memory barrier, as ZeroMQ asks when a socket changes threads) and unbinds and closes it
            self._stop_signal, woken_by = _signal_pair(self.context)
            thread_class: type[threading.Thread] = original("threading", "Thread")
            self._runner = thread_class(
                target=self._serve, args=(socket, woken_by), name="agentzero-zap", daemon=True
            )
            self._runner.start()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop answering and free the ZAP endpoint, within ``timeout`` seconds.

        The runner notices within :data:`POLL_INTERVAL` seconds, unbinds the
        endpoint (at once, unlike ``close``, which frees an ``inproc`` endpoint
        in the background) and closes its socket before this returns.

        Parameters
        ----------
        timeout : float
            the longest wait for the runner; a runner still busy after it (a
            slow :meth:`answer`) closes its socket when it ends. A greenlet is
            killed instead.
        """
        if not self._running:
            return
        self._running = False
        runner, self._runner, self._socket = self._runner, None, None
        signal, self._stop_signal = self._stop_signal, None
        if signal is not None:  # the runner wakes at once instead of within POLL_INTERVAL
            try:
                signal.send(b"", zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # it is already gone (its context terminates)
            runner.join(timeout=timeout)
            signal.close(linger=0)
            return
        runner.join(timeout=timeout)
        if self._green and not runner.dead:
            runner.kill(block=True, timeout=timeout)

    def __enter__(self) -> Authenticator:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _serve(self, socket: Any, woken_by: Any = None) -> None:
        poller = zmq.Poller() if woken_by is not None else None
        if poller is not None:
            poller.register(socket, zmq.POLLIN)
            poller.register(woken_by, zmq.POLLIN)
        try:
            while self._running and self._socket is socket:
                try:
                    if poller is not None:
                        if socket not in dict(poller.poll(POLL_INTERVAL_MS)):
                            continue  # nothing to answer: stopped (woken_by) or nothing yet
                    elif not socket.poll(POLL_INTERVAL_MS):
                        continue
                    request = socket.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    continue
                except zmq.ZMQError:
                    return  # context terminated
                socket.send_multipart(self._answer_safely(request))
        finally:
            _release(socket)
            if woken_by is not None:
                woken_by.close(linger=0)

    def _answer_safely(self, request: list[bytes]) -> list[bytes]:
        try:
            return self.answer(request)
        except Exception:  # a handler that dies would leave every handshake unanswered
            log.exception("ZAP request %r could not be answered", request[:6])
            request_id = request[1] if len(request) > 1 else b""
            return [_ZAP_VERSION, request_id, b"500", b"internal error", b"", b""]

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


def _release(socket: Any) -> None:
    """Unbind the ZAP endpoint, so that it is free at once, and close the socket."""
    try:
        socket.unbind(ZAP_ENDPOINT)
    except zmq.ZMQError:
        pass  # the context is terminating: closing is all that is left
    socket.close(linger=0)


def _z85(key: str | bytes) -> bytes:
    key = key.encode("ascii") if isinstance(key, str) else bytes(key)
    if len(key) == 32:
        return z85.encode(key)
    if len(key) == 40:
        return key
    raise ValueError(f"a CURVE public key is 40 Z85 characters or 32 raw bytes, got {key!r}")


def _signal_pair(context: Any) -> tuple[Any, Any]:
    """Two connected inproc PAIR sockets (plain, even in an asyncio context): ``(sender, receiver)``."""
    endpoint = f"inproc://agentzero-zap-stop-{uuid.uuid4().hex}"
    sender, receiver = zmq.Socket(context, zmq.PAIR), zmq.Socket(context, zmq.PAIR)
    for socket in (sender, receiver):
        socket.linger = 0
    sender.bind(endpoint)
    receiver.connect(endpoint)
    return sender, receiver
