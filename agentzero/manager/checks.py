"""Argument checks shared by every flavour: timeouts, polling mechanisms, linger; and closed-socket errors.

Timeouts are normalised here and nowhere else: :func:`check_seconds` and
:func:`check_milliseconds` accept finite, non-negative numbers only.
"""

from __future__ import annotations

import math
from typing import Any

import zmq

from agentzero.errors import PeerUnreachable, SocketClosed, WrongSocketType
from agentzero.manager.backend import CLOSED_ERRNOS, EHOSTUNREACH, ENOTSUP, POLLIN, POLLOUT

_BOTH = POLLIN | POLLOUT
#: the socket types that can send, and those that can receive (named when a socket cannot)
_SENDERS = "PUSH, PUB, XPUB, XSUB, PAIR, DEALER, ROUTER, REQ or REP"
_RECEIVERS = "PULL, SUB, XSUB, XPUB, PAIR, DEALER, ROUTER, REQ or REP"
#: the one-frame calls a ROUTER refuses -> the sockets they are made for
_NOT_ON_A_ROUTER = {
    "send_safe": "DEALER, REQ, REP, PAIR or PUSH",
    "recv_safe": "DEALER, REQ, REP, PAIR or PULL",
    "publish_safe": "PUB",
    "recv_event_safe": "SUB",
}


def _finite_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (not a bool) that is finite, however large."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def check_seconds(name: str, value: Any) -> float:
    """Return ``value`` if it is a finite number of seconds >= 0, else raise ``ValueError`` naming ``name``.

    >>> check_seconds('timeout', 0.5)
    0.5
    >>> check_seconds('timeout', float('nan'))
    Traceback (most recent call last):
    ...
    ValueError: timeout must be a number >= 0, got nan (a finite number of seconds)
    """
    if not _finite_number(value) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r} (a finite number of seconds)")
    seconds: float = value
    return seconds


def check_milliseconds(name: str, value: Any, positive: bool = False) -> float:
    """Return ``value`` if it is a finite number of milliseconds (> 0 when ``positive``), else raise.

    >>> check_milliseconds('polling_timeout', 0, positive=True)
    Traceback (most recent call last):
    ...
    ValueError: polling_timeout must be a number > 0, got 0 (a finite number of milliseconds)
    """
    if not _finite_number(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a number {bound}, got {value!r} (a finite number of milliseconds)")
    milliseconds: float = value
    return milliseconds


def wait_arguments(manager: Any, timeout: float | None, polling_timeout: float | None) -> tuple[float, float]:
    """Return ``(seconds, slice_ms)`` for a wait: the given timeouts, checked, or the manager's defaults."""
    seconds = manager.timeout if timeout is None else check_seconds("timeout", timeout)
    if polling_timeout is None:
        return seconds, manager.polling_timeout
    return seconds, check_milliseconds("polling_timeout", polling_timeout, positive=True)


def check_mechanism(polling_mechanism: Any, registering: bool = False) -> int:
    """Return ``polling_mechanism`` if it is ``POLLIN``, ``POLLOUT`` or both (or 0 when ``registering``)."""
    if (
        not isinstance(polling_mechanism, int)
        or isinstance(polling_mechanism, bool)
        or polling_mechanism & ~_BOTH
        or (polling_mechanism == 0 and not registering)
    ):
        allowed = "0, " if registering else ""
        raise ValueError(
            f"polling_mechanism must be {allowed}zmq.POLLIN, zmq.POLLOUT or zmq.POLLIN | zmq.POLLOUT, "
            f"got {polling_mechanism!r}"
        )
    return int(polling_mechanism)


def closed_error(name: Any, error: zmq.ZMQError) -> SocketClosed:
    """The library error for a ``ZMQError`` that means the socket is gone."""
    reason = "its context was terminated" if error.errno == zmq.ETERM else "the socket was closed"
    return SocketClosed(name, reason)


def translate(record: Any, error: zmq.ZMQError, sending: bool, first: Any = None) -> Exception:
    """The library error for a ``ZMQError`` of a ``*_safe`` call; errors it cannot name as they are.

    Only the error path calls it, so what it looks up costs the hot path nothing.

    Parameters
    ----------
    record : SocketRecord
        the socket's record (its ``name`` and ``type_name`` are named in the error)
    error : zmq.ZMQError
        what libzmq said
    sending : bool
        whether the call was sending (else receiving)
    first : bytes, optional
        the first frame of the message being sent: on a ROUTER, the identity of its peer

    Returns
    -------
    Exception
        :class:`SocketClosed` for a closed socket or a terminated context,
        :class:`WrongSocketType` when the socket cannot send (or receive) at
        all (``ENOTSUP``: a PULL asked to send, a PUSH asked to receive),
        :class:`PeerUnreachable` when a ROUTER (with ``ROUTER_MANDATORY``) has
        no peer of the identity ``first`` (``EHOSTUNREACH``), or ``error`` itself.
    """
    if error.errno in CLOSED_ERRNOS:
        return closed_error(record.name, error)
    if error.errno == EHOSTUNREACH:
        return PeerUnreachable(record.name, first)
    if error.errno == ENOTSUP:
        if sending:
            return WrongSocketType(record.name, record.type_name, "sending", _SENDERS, can="only receives")
        return WrongSocketType(record.name, record.type_name, "receiving", _RECEIVERS, can="only sends")
    return error


def refused_by_router(record: Any, call: str) -> WrongSocketType:
    """The error for a one-frame ``call`` (``send_safe``...) on a ROUTER, naming the calls that route.

    A ROUTER's messages start with a peer's identity: a one-frame send would be
    taken for an identity and dropped, a one-frame receive would split a message.

    >>> from types import SimpleNamespace
    >>> print(refused_by_router(SimpleNamespace(name='server', type_name='ROUTER'), 'recv_safe'))
    ... # doctest: +NORMALIZE_WHITESPACE
    socket 'server' is a ROUTER socket, which routes by identity: recv_safe needs a DEALER, REQ, REP,
    PAIR or PULL socket. Use recv_request_safe and send_reply_safe (or recv_multipart_safe and
    send_multipart_safe) instead.
    """
    return WrongSocketType(
        record.name,
        record.type_name,
        call,
        _NOT_ON_A_ROUTER[call],
        can="routes by identity",
        instead="recv_request_safe and send_reply_safe (or recv_multipart_safe and send_multipart_safe)",
    )


def check_linger(linger: Any) -> None:
    """Refuse a ``linger`` libzmq cannot take *before* anything is closed (it is a C int)."""
    if linger is not None and (not isinstance(linger, int) or isinstance(linger, bool)):
        raise TypeError(f"linger must be a whole number of milliseconds or None, got {linger!r}")
    if linger is not None and not -(2**31) <= linger < 2**31:
        raise ValueError(f"linger must fit in 32 bits (milliseconds), got {linger!r}")


def closing_linger(
    socket: Any, options: dict[int, Any], linger: int | None, default: int | None
) -> int | None:
    """The linger a socket closes with: ``linger`` if given, else its own bounded one, else ``default``.

    A socket's own ``zmq.LINGER`` counts when it was set through the manager
    (it is in ``options``) or is bounded (``>= 0``: set on the context or by
    hand); libzmq's ``-1`` (for ever) gives way to the manager's ``default``,
    so that terminating the context cannot hang on an unread message.
    """
    if linger is not None:
        return linger
    if zmq.LINGER in options:
        chosen: int = options[zmq.LINGER]
        return chosen
    try:
        own = int(socket.getsockopt(zmq.LINGER))
    except (zmq.ZMQError, AttributeError, TypeError, ValueError):  # closed behind the manager's back
        return default
    return own if own >= 0 or default is None else default
