"""Socket options, applied and remembered: what ``set_socket_option`` and ``set_topic`` decide.

An option is checked (text encoded, subscriptions on SUB sockets only), set,
and remembered on the socket's record, so that ``reset`` can set it again;
an option libzmq refuses is a :class:`~agentzero.errors.SocketOptionError`
naming the socket, the option and the value (a secret only by its length),
and nothing is recorded.
"""

from __future__ import annotations

from typing import Any

import zmq

from agentzero.errors import SocketOptionError, WrongSocketType
from agentzero.manager.backend import CLOSED_ERRNOS
from agentzero.manager.checks import closed_error
from agentzero.manager.table import SocketRecord

_SUBSCRIBERS = (zmq.SUB,)


def apply_option(record: SocketRecord, option: int, value: Any) -> None:
    """Set ``option`` on ``record``'s socket and remember it (see ``SocketManager.set_socket_option``)."""
    name = record.name
    socket = record.socket
    if isinstance(value, str) and option != zmq.HWM:
        try:
            value = value.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate
            raise SocketOptionError(name, _option_name(option), _shown(option, value), exc) from None
    if option in (zmq.SUBSCRIBE, zmq.UNSUBSCRIBE) and record.socket_type not in _SUBSCRIBERS:
        raise WrongSocketType(name, record.type_name, "subscribing to a topic", "SUB")
    try:
        if option == zmq.HWM:
            socket.hwm = value
        else:
            socket.setsockopt(option, value)
    except zmq.ZMQError as exc:
        if exc.errno in CLOSED_ERRNOS:
            raise closed_error(name, exc) from None
        raise SocketOptionError(name, _option_name(option), _shown(option, value), exc.strerror) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise SocketOptionError(name, _option_name(option), _shown(option, value), exc) from None
    if option == zmq.HWM:
        record.options[option] = value
        return
    if option == zmq.SUBSCRIBE:
        record.subscriptions.add(value)
    elif option == zmq.UNSUBSCRIBE:
        record.subscriptions.discard(value)
    else:
        record.options[option] = value
        if option == zmq.MAXMSGSIZE:
            record.max_size = value if isinstance(value, int) and value >= 0 else None


def encoded_topic(name: Any, topic: Any) -> bytes:
    """``topic`` as the bytes a SUB socket subscribes to: text is encoded as UTF-8.

    Raises
    ------
    TypeError
        when ``topic`` is neither text nor bytes.
    SocketOptionError
        when ``topic`` is text that UTF-8 cannot encode (a lone surrogate).
    """
    if isinstance(topic, str):
        try:
            return topic.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate
            raise SocketOptionError(name, "SUBSCRIBE", topic, exc) from None
    if isinstance(topic, (bytes, bytearray, memoryview)):
        return bytes(topic)
    raise TypeError(f"a topic is str or bytes, got {topic!r} ({type(topic).__name__})")


def _option_name(option: Any) -> str:
    """``SNDHWM`` for ``zmq.SNDHWM``; the number itself for an option pyzmq does not know."""
    if option == zmq.HWM:
        return "HWM"
    try:
        return str(zmq.SocketOption(option).name)
    except (ValueError, TypeError):
        return repr(option)


#: options whose value is a secret: an error names the option, never the value
_SECRET_OPTIONS = frozenset((int(zmq.CURVE_SECRETKEY), int(zmq.PLAIN_PASSWORD)))


def _shown(option: Any, value: Any) -> Any:
    """What an error may show of ``value``: a secret only as its length."""
    if option in _SECRET_OPTIONS and isinstance(value, (bytes, str)):
        return f"<secret of {len(value)} characters>"
    return value
