"""The registry's workers, bounded: who may register, under which id, and when a worker is forgotten.

Seed 002's worker sends one ``register`` right after it connects, and opens a
new connection (here: a new DEALER, so a new routing identity) to register
again. So a connection holds at most one worker: a repeated ``register`` on it
renews that worker (same id) and one naming another worker is refused. At most
``max_workers`` workers are kept. An offline worker is forgotten
``forget_after`` seconds after it was last heard from, or sooner, the longest
silent first, when a new worker needs its room; a forgotten worker that comes
back registers again and gets its id back (it presents it) unless another
worker took it meanwhile. Live workers are never forgotten: when all
``max_workers`` are live, a new worker is refused, the way the protocol
refuses (``register`` with ``success: false`` and a ``message`` saying why).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Dict, Optional, Tuple

from examples.registry.protocol import WorkerMessage
from examples.registry.state import IDLE, WorkerState
from examples.registry.throttle import ThrottledLog


class Refused(Exception):
    """A ``register`` the bounds refuse; the text is the refusal's ``message`` on the wire."""


class ConnectionTaken(Refused):
    """The connection already holds another worker."""

    def __init__(self, held: str, asked: str) -> None:
        super().__init__(f"this connection is registered as worker {held}, not {asked[:40]}")


class RegistryFull(Refused):
    """Every place is taken by a live worker."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(f"the registry is full ({max_workers} live workers)")


class Roster:
    """The registered workers by id, and by the routing identity of the connection that holds them.

    Parameters
    ----------
    max_workers : int
        the most workers kept, live or offline
    notes : ThrottledLog
        where lines about peers go

    Attributes
    ----------
    workers : dict
        worker id -> :class:`~examples.registry.state.WorkerState`
    by_identity : dict
        routing identity -> worker id, for the connections that hold a worker
    forgotten : int
        offline workers forgotten (by :meth:`forget`, or to make room)
    """

    def __init__(self, max_workers: int, notes: ThrottledLog) -> None:
        self.max_workers = max_workers
        self.notes = notes
        self.workers: Dict[str, WorkerState] = {}
        self.by_identity: Dict[bytes, str] = {}
        self.forgotten = 0

    def held_by(self, identity: bytes) -> Optional[WorkerState]:
        """The worker the connection ``identity`` holds, if any."""
        return self.workers.get(self.by_identity.get(identity, ""))

    def admit(self, identity: bytes, message: WorkerMessage) -> Tuple[WorkerState, bool]:
        """Register the worker behind ``identity``, whose ``register`` carried a valid token.

        Parameters
        ----------
        identity : bytes
            the connection's routing identity
        message : WorkerMessage
            the checked ``register``

        Returns
        -------
        tuple
            ``(worker, revived)``: the worker, new or known, and whether it was offline
            until now (renewed: ``idle``, not draining, held by ``identity``)

        Raises
        ------
        ConnectionTaken
            when the connection already holds a worker other than the one named.
        RegistryFull
            when a new worker would be one too many and no offline worker can make room.
        """
        asked = message.worker_id or ""
        worker = self.held_by(identity)
        if worker is not None:
            if asked not in ("", worker.worker_id):
                raise ConnectionTaken(worker.worker_id, asked)
        elif asked:
            worker = self.workers.get(asked)
            if worker is not None and worker.online and worker.identity != identity:
                # that id belongs to a live worker on another connection: this peer gets its own
                self.notes.log(
                    logging.WARNING,
                    identity,
                    "fresh id",
                    "register presented the id of live worker %s: a fresh id is given",
                    asked,
                )
                worker, asked = None, ""
        if worker is None:
            if len(self.workers) >= self.max_workers and not self._make_room():
                raise RegistryFull(self.max_workers)
            worker = WorkerState(
                worker_id=asked if asked and asked not in self.workers else uuid.uuid4().hex,
                identity=identity,
                agent_name=message.agent_name or "",
                load_threshold=message.load_threshold or 0.75,
                max_processes=message.max_processes or 1,
            )
            self.workers[worker.worker_id] = worker
            revived = False
        else:  # a known worker: renewed on this connection, its id kept
            revived = not worker.online
            if worker.identity != identity:
                self.by_identity.pop(worker.identity, None)
                worker.identity = identity
            worker.status, worker.draining = IDLE, False
        worker.last_seen = time.monotonic()
        self.by_identity[identity] = worker.worker_id
        return worker, revived

    def forget(self, worker: WorkerState) -> None:
        """Drop an offline worker: its id, and its connection's hold on it (it must hold no jobs)."""
        del self.workers[worker.worker_id]
        if self.by_identity.get(worker.identity) == worker.worker_id:
            del self.by_identity[worker.identity]
        self.forgotten += 1

    def _make_room(self) -> bool:
        offline = [worker for worker in self.workers.values() if not worker.online]
        if not offline:
            return False
        self.forget(min(offline, key=lambda worker: worker.last_seen))
        return True
