"""The one place where agentzero reaches below pyzmq's ``Socket`` sugar layer.

Private to the package: examples and users go through the manager's public calls.

agentzero's hot paths call the backend socket's ``send``, ``recv`` and
``get`` directly, with plain ``int`` flags: pyzmq's sugar layer (and, for
``zmq.green``, its per-operation bookkeeping) re-checks arguments agentzero
has already checked and turns every flag into an enum, which costs more than
the operation itself. Every socket pyzmq makes, green or not, is an instance
of ``zmq.backend.Socket``, so the unbound backend methods work on all of them.

Frames are always received copied (``copy=True``), never as ``zmq.Frame``:
pyzmq's ``Frame.__dealloc__`` checks for pending signals where an exception
cannot propagate, so a Ctrl-C that lands just before a Frame is freed is
printed as "Exception ignored" and lost, and a loop around ``recv_safe`` never
stops. Whether more frames follow is read with ``zmq.RCVMORE`` after each
frame. pyzmq's ``get`` looks every option up in its ``SocketOption`` enum,
which costs more (about 0.7 us) than receiving a small frame; so the hot
paths read it with :func:`more_reader`, which calls libzmq's own
``zmq_getsockopt`` through :mod:`ctypes` on the socket's ``underlying``
handle (the interoperability pyzmq documents for it), in the very libzmq
pyzmq's backend is linked to (about 0.25 us), and falls back to pyzmq's
``get`` wherever that library cannot be found or the socket is closed. The one exception is
the large buffers of a serializer's message of several frames, received
(and sent) without a copy: :mod:`agentzero.manager.buffers` keeps their
Frames from ever being freed where a Ctrl-C could be lost.

Only ``zmq.backend.Socket`` is used, a public name of pyzmq, and libzmq's
``zmq_getsockopt`` and ``zmq_version`` (its public C API). The test
``tests/library/test_backend.py`` fails loudly if a pyzmq release changes what
this module relies on; the tested range is pinned in ``setup.py``.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any, Callable

import zmq
import zmq.backend

_BackendSocket: Any = zmq.backend.Socket

#: ``send(socket, data, flags)``: the backend's send, with no sugar and no green wait
raw_send: Callable[..., Any] = _BackendSocket.send
#: ``recv(socket, flags)``: the backend's recv, returning ``bytes`` (never pass ``copy=False``: see above)
raw_recv: Callable[..., Any] = _BackendSocket.recv
#: ``get(socket, option)``: the backend's getsockopt, returning a plain ``int`` or ``bytes``
raw_get: Callable[..., Any] = _BackendSocket.get

NOBLOCK = int(zmq.NOBLOCK)
SNDMORE = int(zmq.SNDMORE)
POLLIN = int(zmq.POLLIN)
POLLOUT = int(zmq.POLLOUT)
EVENTS = int(zmq.EVENTS)
RCVMORE = int(zmq.RCVMORE)
FD = int(zmq.FD)
EAGAIN = int(zmq.EAGAIN)
EFSM = int(zmq.EFSM)
ENOTSOCK = int(zmq.ENOTSOCK)
ETERM = int(zmq.ETERM)
ENOTSUP = int(zmq.ENOTSUP)
#: a ROUTER with ``ROUTER_MANDATORY`` has no peer of the identity it was asked to send to
EHOSTUNREACH = int(zmq.EHOSTUNREACH)

#: errors that mean "not possible right now, wait for the socket"; EFSM is a REQ/REP
#: socket whose turn it is not (0.4.6 waited for it, and returned False/None on time-out)
NOT_READY_ERRNOS = frozenset((EAGAIN, EFSM))
#: errors that mean the socket is gone: closed, or its context terminated
CLOSED_ERRNOS = frozenset((ENOTSOCK, ETERM))


def events(socket: Any) -> int:
    """Return the socket's ``zmq.EVENTS`` as a plain ``int`` (``POLLIN``/``POLLOUT`` bits)."""
    return int(raw_get(socket, EVENTS))


def _libzmq_getsockopt() -> Any:
    """Return libzmq's ``zmq_getsockopt`` as pyzmq's backend links it (ctypes); ``None`` when not found.

    ``dlsym`` on the backend's extension module searches it and the libraries
    it was linked to, so this finds the very libzmq pyzmq calls (bundled in
    its wheel or the system's), never another copy. Its version must be the
    one pyzmq reports, else ``None``. ``PyDLL``: the call keeps the GIL,
    which is cheaper for an option read that never blocks.
    """
    try:
        library = ctypes.PyDLL(sys.modules[_BackendSocket.__module__].__file__)
        getsockopt = library.zmq_getsockopt
        version = library.zmq_version
    except (AttributeError, KeyError, OSError, TypeError, ValueError):
        return None
    numbers = [ctypes.c_int(0) for _ in range(3)]
    version.restype = None
    version(*(ctypes.byref(number) for number in numbers))
    if tuple(number.value for number in numbers) != zmq.zmq_version_info():
        return None
    getsockopt.restype = ctypes.c_int
    return getsockopt


_getsockopt: Any = _libzmq_getsockopt()


def more_reader(socket: Any) -> Callable[[], int]:
    """Return a function that reads ``socket``'s ``zmq.RCVMORE`` (non-zero: more frames follow).

    One per socket: it keeps the socket's libzmq handle and its own
    ``int`` to read into (a socket is used by one thread at a time, so two
    threads never share one). A closed socket, or a libzmq that refuses,
    gets pyzmq's ``get``, which raises the ``ZMQError`` that says why.
    """
    if _getsockopt is None:
        return lambda: raw_get(socket, RCVMORE)
    getsockopt = _getsockopt
    handle = ctypes.c_void_p(socket.underlying)
    value = ctypes.c_int(0)
    size = ctypes.c_size_t(ctypes.sizeof(value))
    into, length = ctypes.pointer(value), ctypes.pointer(size)

    def more() -> int:
        if socket._closed or getsockopt(handle, RCVMORE, into, length):
            return raw_get(socket, RCVMORE)  # type: ignore[no-any-return]
        return value.value

    return more


def fileno(socket: Any) -> int:
    """Return the socket's ``zmq.FD``: readable whenever ``EVENTS`` may have changed (edge-triggered)."""
    return int(raw_get(socket, FD))


def monitor_socket_of(socket: Any) -> Any:
    """Return the open PAIR socket pyzmq's ``get_monitor_socket()`` made for ``socket``, or ``None``.

    pyzmq keeps it as ``socket._monitor_socket`` (a private name, used here
    only; ``tests/library/test_backend.py`` checks it).
    """
    monitor = getattr(socket, "_monitor_socket", None)
    if monitor is None or getattr(monitor, "closed", True):
        return None
    return monitor
