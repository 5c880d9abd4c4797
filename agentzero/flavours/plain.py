"""The plain flavour: block the calling thread in ``zmq_poll`` (level-triggered), in slices."""

from __future__ import annotations

import math
import time
from typing import Any

import zmq

from agentzero.flavours.base import Flavour
from agentzero.manager.backend import CLOSED_ERRNOS
from agentzero.manager.checks import closed_error
from agentzero.manager.table import SocketRecord

#: the longest single zmq_poll libzmq takes (a C int of milliseconds, about 24.8 days)
_MAX_POLL_MS = 2**31 - 1
_monotonic = time.monotonic


class PlainFlavour(Flavour):
    """Block the calling thread in ``zmq_poll``, in slices of at most ``polling_timeout``.

    A receive never blocks inside libzmq (``zmq.RCVTIMEO``): pyzmq restarts an
    interrupted blocking receive with its whole timeout, so a signal handler
    that runs more often than the timeout would make it wait for ever, while
    ``zmq_poll`` counts down what is left.
    """

    name = "plain"

    def wait(self, record: SocketRecord, mechanism: int, seconds: float, slice_ms: float) -> bool:
        """Wait up to ``seconds`` for ``record``'s socket to be ready for ``mechanism``; tell whether it is.

        Raises
        ------
        SocketClosed
            when the socket is closed (or its context terminated) meanwhile.
        """
        socket = record.socket
        deadline = _monotonic() + seconds
        while True:
            remaining_ms = (deadline - _monotonic()) * 1000.0
            try:
                slice_now = math.ceil(max(0.0, min(slice_ms, remaining_ms, _MAX_POLL_MS)))
                if zmq.zmq_poll([(socket, mechanism)], slice_now):
                    return True
            except zmq.ZMQError as exc:
                if exc.errno in CLOSED_ERRNOS:
                    raise closed_error(record.name, exc) from None
                raise
            if remaining_ms <= 0 or _monotonic() >= deadline:
                return False

    def poll(self, items: list[tuple[SocketRecord, int]], timeout_ms: float) -> list[tuple[Any, int]]:
        """Poll ``(record, mechanism)`` pairs once, up to ``timeout_ms``; return the ready ones."""
        if not items:
            return []
        polled = [(record.socket, mechanism) for record, mechanism in items]
        try:
            return list(zmq.zmq_poll(polled, min(math.ceil(timeout_ms), _MAX_POLL_MS)))
        except zmq.ZMQError as exc:
            if exc.errno in CLOSED_ERRNOS:
                raise closed_error("(engage)", exc) from None
            raise

    def nap(self, seconds: float) -> None:
        time.sleep(seconds)

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (a send that a ready socket refused: see ``Waits._send_steps``)."""
        time.sleep(seconds)
