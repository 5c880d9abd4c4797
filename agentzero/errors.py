"""Exceptions raised by agentzero.

Every error agentzero raises derives from :class:`AgentZeroSocketError`, so one
``except AgentZeroSocketError`` (or ``except Exception``) catches them all. Each
message is built in ``__init__`` from structured arguments, which stay
available as attributes.
"""

from __future__ import annotations

from typing import Any

#: How many bytes of an undecodable payload are shown in an error message.
_RAW_PREVIEW_BYTES = 64
#: How many bytes of a peer's identity :class:`PeerUnreachable` shows (in hex).
_IDENTITY_PREVIEW_BYTES = 32


class AgentZeroSocketError(Exception):
    """Base exception class for errors originated in SocketManager."""


class SocketAlreadyExists(AgentZeroSocketError):
    """Raised by SocketManager when trying to create a named socket that already exists.

    >>> import zmq
    >>> from agentzero.core import SocketManager
    >>> sockets = SocketManager(zmq, zmq.Context())
    >>> _ = sockets.create('foo', zmq.REP)
    >>> sockets.create('foo', zmq.REP)
    Traceback (most recent call last):
    ...
    agentzero.errors.SocketAlreadyExists: SocketManager(sockets=['foo']) already has a socket named 'foo'.
    >>> sockets.close_all(); sockets.context.term()
    """

    def __init__(self, manager: Any, socket_name: Any) -> None:
        self.manager = manager
        self.socket_name = socket_name
        super().__init__(f"{manager!r} already has a socket named {socket_name!r}.")


class SocketNotFound(AgentZeroSocketError, KeyError):
    """Raised by SocketManager when trying to retrieve an unexisting socket.

    >>> import zmq
    >>> from agentzero.core import SocketManager
    >>> sockets = SocketManager(zmq, zmq.Context())
    >>> sockets.get_by_name('some-name')
    Traceback (most recent call last):
    ...
    agentzero.errors.SocketNotFound: SocketManager(sockets=[]) has no sockets named 'some-name'.
    >>> sockets.context.term()
    """

    def __init__(self, manager: Any, socket_name: Any) -> None:
        self.manager = manager
        self.socket_name = socket_name
        super().__init__(f"{manager!r} has no sockets named {socket_name!r}.")

    def __str__(self) -> str:
        # KeyError would quote the message; keep it readable.
        return str(self.args[0])


class _AddressError(AgentZeroSocketError):
    _verb = ""

    def __init__(self, socket_name: Any, address: Any, reason: Any) -> None:
        self.socket_name = socket_name
        self.address = address
        self.reason = reason
        #: The ``errno`` of the underlying ZMQError, when there is one.
        self.errno = getattr(reason, "errno", None)
        super().__init__(
            f"cannot {self._verb} socket {socket_name!r} to address {address!r}: {_strip_zmq_addr(reason)}"
        )


class SocketBindError(_AddressError):
    """Raised by SocketManager when a ``bind()`` operation fails.

    Attributes ``socket_name``, ``address``, ``reason`` and ``errno`` say which
    socket, which address and why.
    """

    _verb = "bind"


class SocketConnectError(_AddressError):
    """Raised by SocketManager when a ``connect()`` operation fails.

    Attributes ``socket_name``, ``address``, ``reason`` and ``errno`` say which
    socket, which address and why.
    """

    _verb = "connect"


class SerializationError(AgentZeroSocketError):
    """Raised when a serializer cannot pack a payload; nothing was sent."""

    def __init__(self, serializer: Any, data: Any, reason: Any) -> None:
        self.serializer = serializer
        self.data = data
        self.reason = reason
        super().__init__(
            f"{type(serializer).__name__} cannot pack a value of type {type(data).__name__}: {reason}"
        )


class DeserializationError(AgentZeroSocketError):
    """Raised when a received payload cannot be unpacked.

    The message was consumed; the socket stays usable and the next message is
    received normally.

    Attributes
    ----------
    raw : bytes or list of bytes
        the payload exactly as it was received.
    socket_name : str or None
        the socket it arrived on, when known.
    reason : object
        what the serializer (or the frame check) objected to.
    """

    def __init__(self, raw: Any, reason: Any, socket_name: Any = None) -> None:
        self.raw = raw
        self.reason = reason
        self.socket_name = socket_name
        where = f" on socket {socket_name!r}" if socket_name is not None else ""
        super().__init__(f"cannot unpack the message received{where}: {reason} (raw={_preview(raw)})")


class MessageTooLarge(DeserializationError):
    """Raised when a received message is larger than the socket's ``max_message_size``.

    libzmq's ``MAXMSGSIZE`` limits each frame (and only over tcp and ipc); this
    limits the whole message, frames added up, on every transport. The message
    was consumed and dropped, without keeping more than the limit in memory;
    the next message is received normally.
    """

    def __init__(
        self,
        raw: Any,
        size: int,
        limit: int | None,
        socket_name: Any = None,
        frames: int | None = None,
        max_frames: int | None = None,
    ) -> None:
        self.size = size
        self.limit = limit
        #: how many frames the message had, when it had too many (``None`` otherwise)
        self.frames = frames
        self.max_frames = max_frames
        if frames is not None and max_frames is not None and frames > max_frames:
            reason = f"message of {frames} frames exceeds max_frames={max_frames}"
        else:
            reason = f"message of at least {size} bytes exceeds max_message_size={limit}"
        super().__init__(raw, reason, socket_name)


class SocketClosed(AgentZeroSocketError):
    """Raised when a socket is closed (or its context terminated) while a call uses or waits on it.

    ``create`` raises it too when the manager's context was terminated.

    A ``*_safe`` call waiting on a socket that another greenlet closes through
    the manager raises it at once; closed behind the manager's back, it is
    noticed within a second.
    """

    def __init__(self, socket_name: Any, reason: Any = "the socket was closed") -> None:
        self.socket_name = socket_name
        self.reason = reason
        super().__init__(f"socket {socket_name!r} cannot be used: {reason}")


class WrongSocketType(AgentZeroSocketError, TypeError):
    """Raised when an operation needs another type of socket, e.g. ``subscribe`` on a PUSH.

    ``can``, when given, says what the socket can do instead. Nothing was sent
    or received; the socket keeps working for what it can do.

    >>> raise WrongSocketType('jobs', 'PUSH', 'set_topic', 'SUB')
    Traceback (most recent call last):
    ...
    agentzero.errors.WrongSocketType: socket 'jobs' is a PUSH socket: set_topic needs a SUB socket.
    >>> print(WrongSocketType('in', 'PULL', 'sending', 'PUSH', can='only receives'))
    socket 'in' is a PULL socket, which only receives: sending needs a PUSH socket.

    ``instead``, when given, names the calls to use instead.
    """

    def __init__(
        self,
        socket_name: Any,
        actual: str,
        operation: str,
        expected: str,
        can: str | None = None,
        instead: str | None = None,
    ) -> None:
        self.socket_name = socket_name
        self.actual = actual
        self.operation = operation
        self.expected = expected
        self.can = can
        self.instead = instead
        which = f", which {can}" if can else ""
        use = f" Use {instead} instead." if instead else ""
        super().__init__(
            f"socket {socket_name!r} is a {actual} socket{which}: {operation} needs a {expected} socket.{use}"
        )


class PeerUnreachable(AgentZeroSocketError):
    """Raised when a ROUTER socket is asked to send to a peer it is not connected to.

    The peer named by the message's first frame (its identity) is gone
    (disconnected, or its process died) or was never connected. Nothing was
    sent; the socket keeps working for the other peers. ROUTER sockets created
    by a SocketManager have ``zmq.ROUTER_MANDATORY`` set, so such a message is
    refused at once instead of being dropped silently.

    Attributes ``socket_name`` and ``identity`` (the whole first frame) say
    which socket and which peer; the message shows at most the identity's
    first 32 bytes, in hex.

    >>> print(PeerUnreachable('server', b'\\x00k\\x8bEg'))
    socket 'server' cannot reach peer 006b8b4567 (it left, or never connected); nothing was sent.
    """

    def __init__(self, socket_name: Any, identity: Any) -> None:
        self.socket_name = socket_name
        self.identity = identity
        try:
            shown = bytes(identity[:_IDENTITY_PREVIEW_BYTES]).hex()
        except (TypeError, ValueError):  # not bytes-like: show what it is
            shown = _preview(identity)
        else:
            if len(identity) > _IDENTITY_PREVIEW_BYTES:
                shown += f"... ({len(identity)} bytes)"
        super().__init__(
            f"socket {socket_name!r} cannot reach peer {shown} (it left, or never connected); "
            "nothing was sent."
        )


class PeersNotVisible(AgentZeroSocketError):
    """Raised when the manager cannot see a socket's peers: ``reason`` says why.

    libzmq reports no connection over ``inproc://``, and a socket whose
    monitor could not be started (the context's ``MAX_SOCKETS`` reached) has
    nobody to report them. The socket itself keeps working.

    >>> raise PeersNotVisible('jobs', 'it is bound over inproc:// only')
    Traceback (most recent call last):
    ...
    agentzero.errors.PeersNotVisible: cannot see the peers of socket 'jobs': it is bound over inproc:// only
    """

    def __init__(self, socket_name: Any, reason: Any) -> None:
        self.socket_name = socket_name
        self.reason = reason
        super().__init__(f"cannot see the peers of socket {socket_name!r}: {reason}")


class SocketOptionError(AgentZeroSocketError, ValueError):
    """Raised when a socket option cannot be set: libzmq refused it, or the value does not fit it.

    The socket is unchanged and keeps working.

    >>> raise SocketOptionError('jobs', 'SNDHWM', -5, 'Invalid argument')
    Traceback (most recent call last):
    ...
    agentzero.errors.SocketOptionError: socket 'jobs' refused option SNDHWM=-5: Invalid argument
    """

    def __init__(self, socket_name: Any, option: Any, value: Any, reason: Any) -> None:
        self.socket_name = socket_name
        self.option = option
        self.value = value
        self.reason = reason
        super().__init__(f"socket {socket_name!r} refused option {option}={_preview(value)}: {reason}")


def _preview(raw: Any) -> str:
    text = repr(raw)
    if len(text) > _RAW_PREVIEW_BYTES:
        return text[:_RAW_PREVIEW_BYTES] + "..."
    return text


def _strip_zmq_addr(reason: Any) -> str:
    # pyzmq appends "(addr='...')" to bind/connect errors; our message names the address already.
    text = str(reason)
    marker = " (addr="
    cut = text.find(marker)
    return text[:cut] if cut > 0 else text
