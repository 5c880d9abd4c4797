"""How a step worker talks to its manager's status socket: one request at a time, and the probe.

:func:`ask_manager` sends one request on a REQ socket and waits for its
reply, renewing the socket after a request that got none (the manager died
or restarted). :class:`Probe` is the half of
:class:`~agentzero.pipeline.worker.StepWorker` that asks the manager for its
addresses every ``probe_interval`` seconds: it follows a restarted manager,
leaves a stopping one, and exits as an orphan when the manager does not
answer for ``orphan_timeout`` seconds.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent

from agentzero.core import SocketManager
from agentzero.zero import zmq

#: The worker's own lines (probe, orphan, exit), on its stderr: the manager may not be there to hear them.
own_log = logging.getLogger("pipeline.worker")


class ManagerUnreachable(RuntimeError):
    """The manager did not answer within the time given."""


def ask_manager(sockets: SocketManager, address: str, request: dict[str, Any], timeout: float) -> Any:
    """Send ``request`` to the manager's status socket (``manager``, a REQ) and return its reply.

    The REQ socket is made once per address; after a request that got no answer
    it is stuck, so :meth:`SocketManager.reset` renews it before the next try.

    Raises
    ------
    ManagerUnreachable
        when no reply came within ``timeout`` seconds.
    """
    if "manager" in sockets.sockets and sockets.get_record("manager").connects != [address]:
        sockets.close("manager", linger=0)
    if "manager" not in sockets.sockets:
        sockets.ensure_and_connect("manager", zmq.REQ, address, zmq.POLLIN | zmq.POLLOUT)
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ManagerUnreachable(f"the manager at {address} did not answer within {timeout:g}s")
        attempt = min(remaining, 2.0)
        if sockets.send_safe("manager", request, timeout=attempt):
            reply = sockets.recv_safe("manager", timeout=attempt)
            if reply is not None:
                return reply
        sockets.reset("manager")


class Probe:
    """The manager-watching half of :class:`~agentzero.pipeline.worker.StepWorker`."""

    # set by the worker
    sockets: SocketManager
    manager_address: str
    worker_id: str
    events_address: str
    orphan_timeout: float
    probe_interval: float
    left_because: str | None
    _stopping: bool

    def interrupt(self) -> None:
        raise NotImplementedError  # the worker stops at once

    def _publish_available(self, leaving: bool = False) -> None:
        raise NotImplementedError  # the worker's heartbeat

    def _probe_manager(self) -> None:
        """Ask the manager for its addresses every ``probe_interval`` seconds: follow it, or leave.

        A new events address means a restarted manager: the events socket
        connects there (the heartbeat then makes it take this worker in). No
        answer for ``orphan_timeout`` seconds, or an answer saying
        ``stopping``, makes the worker leave at once, as on Ctrl-C.
        """
        last_answer = time.monotonic()
        request = {"command": "addresses", "worker_id": self.worker_id}
        while not self._stopping:
            started = time.monotonic()
            wait = min(self.probe_interval, max(0.05, last_answer + self.orphan_timeout - started))
            try:
                reply = ask_manager(self.sockets, self.manager_address, request, wait)
            except ManagerUnreachable:
                reply = None
            now = time.monotonic()
            if isinstance(reply, dict) and isinstance(reply.get("events"), str):
                last_answer = now
                if reply.get("stopping") is True:
                    self._leave("manager stopping", "the manager at %s is stopping: this worker leaves")
                    return
                if reply["events"] != self.events_address:
                    self._follow(reply["events"])
            elif now - last_answer >= self.orphan_timeout:
                self._leave(
                    "orphan",
                    f"the manager at %s did not answer for {now - last_answer:.1f}s "
                    f"(orphan timeout {self.orphan_timeout:g}s): this worker exits",
                )
                return
            gevent.sleep(max(0.0, self.probe_interval - (time.monotonic() - started)))

    def _follow(self, events_address: str) -> None:
        """Connect the events socket to a restarted manager's new events address."""
        own_log.info("the manager at %s restarted: events now go to %s", self.manager_address, events_address)
        self.sockets.disconnect("events", self.events_address)
        self.sockets.connect("events", events_address, zmq.POLLOUT)
        self.events_address = events_address
        self._publish_available()

    def _leave(self, why: str, line: str) -> None:
        self.left_because = why
        own_log.warning(line, self.manager_address)
        self.interrupt()
