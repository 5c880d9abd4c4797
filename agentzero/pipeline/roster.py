"""The pipeline manager's workers: taking them in, dispatching to them, watching them, letting them go.

A worker announces itself with ``available`` events (its heartbeat). The
manager then gives it a PUSH socket of its own, connected to the worker's
PULL, and reads that PUSH's connection events (``sockets.socket_events``,
every 0.1 s). A worker is lost when

- its PUSH's connection dropped, ``disconnected`` (a killed process: about at once),
- no heartbeat came for ``heartbeat_timeout`` seconds (a frozen process or a cut link),
- or it says it leaves.

Only the jobs that worker held are queued again. A worker that comes back
(it was frozen, or the link healed) announces itself again and is taken in
as new; what it reports about its old jobs is stale.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from typing import Any

from agentzero.core import SocketManager
from agentzero.errors import SerializationError
from agentzero.pipeline import protocol
from agentzero.pipeline.protocol import DISPATCHED, FAILED, QUEUED, BadMessage, check_available
from agentzero.pipeline.records import JobRecord, WorkerRecord
from agentzero.zero import zmq

log = logging.getLogger("pipeline.manager")

#: How many dropped worker ids are remembered, so their late events count as stale, not forged.
FORMER_WORKERS_KEPT = 10000
_urandom = os.urandom


class Roster:
    """The worker half of :class:`~agentzero.pipeline.manager.PipelineManager`."""

    # set by the manager
    sockets: SocketManager
    jobs: dict[str, JobRecord]
    job_types: set[str]
    heartbeat_timeout: float
    dispatch_timeout: float
    max_workers: int

    first_dispatch: dict[str, float]
    _pending: dict[str, collections.deque[str]]

    def _redispatch(self, job: JobRecord) -> None:
        raise NotImplementedError  # the manager queues the job again

    def _finish(self, job: JobRecord, state: str, result: Any = None, error: Any = None) -> None:
        raise NotImplementedError  # the manager records the job's end

    def __init__(self) -> None:
        #: this manager process, in every dispatch with the worker's admission (see :meth:`_admit`)
        self.session = _urandom(8).hex()
        self._admissions = 0
        #: worker id -> record, for the workers taken in
        self.workers: dict[str, WorkerRecord] = {}
        #: job type -> its workers, in the order they joined
        self.by_type: dict[str, list[WorkerRecord]] = collections.defaultdict(list)
        #: ids of workers dropped lately (their late events are stale)
        self.former_workers: collections.OrderedDict[str, float] = collections.OrderedDict()
        #: how many workers were lost (not counting those that said they leave)
        self.workers_lost = 0
        self._turn = 0
        self._next_timeout_scan = 0.0

    def _worker_seen(self, topic: bytes, data: Any) -> None:
        worker_id, job_type, address, concurrency, pid, leaving = check_available(data, self.job_types)
        worker = self.workers.get(worker_id)
        if leaving:
            if worker is not None:
                self._drop_worker(worker, "left")
            return
        if worker is None:
            if len(self.workers) >= self.max_workers:
                raise BadMessage("too many workers", f"{worker_id!r} refused: {self.max_workers} already")
            self._admit(worker_id, job_type, address, concurrency, pid)
            return
        if (worker.job_type, worker.address) != (job_type, address):
            raise BadMessage(
                "conflicting worker",
                f"{worker_id!r} is a {worker.job_type} worker at {worker.address}, "
                f"an event says {job_type} at {address}",
            )
        worker.last_seen = time.monotonic()

    def _admit(self, worker_id: str, job_type: str, address: str, concurrency: int, pid: Any) -> None:
        worker = WorkerRecord(
            id=worker_id,
            job_type=job_type,
            address=address,
            concurrency=concurrency,
            pid=pid,
            last_seen=time.monotonic(),
            push=f"push:{worker_id}",
        )
        # a worker taken in again gets a higher admission: a dispatch of its former one, held up
        # in a cut link's TCP buffers and delivered after newer ones, is refused by the worker
        self._admissions += 1
        worker.admission = self._admissions
        sockets = self.sockets
        try:
            sockets.create(worker.push, zmq.PUSH)
            # queue only once connected, nothing lingers for a dead peer, and at most what it may hold
            sockets.set_socket_option(worker.push, zmq.IMMEDIATE, 1)
            sockets.set_socket_option(worker.push, zmq.LINGER, 0)
            sockets.set_socket_option(worker.push, zmq.SNDHWM, worker.capacity + 16)
            sockets.connect(worker.push, address, 0)
        except Exception:
            sockets.close(worker.push, linger=0)
            raise
        self.workers[worker_id] = worker
        self.by_type[job_type].append(worker)
        returning = " (again)" if self.former_workers.pop(worker_id, None) is not None else ""
        log.info("worker %s (%s) joined at %s%s", worker_id, job_type, address, returning)

    def _check_workers(self, now: float) -> None:
        """Drop the lost and the silent workers; once a second, queue again the jobs that waited too long."""
        socket_events = self.sockets.socket_events
        for worker in list(self.workers.values()):
            # every event since the last look: a connection up and down in between still counts
            if any(kind == "disconnected" for kind, _, _ in socket_events(worker.push)):
                self._drop_worker(worker, "connection lost")
                continue
            if now - worker.last_seen > self.heartbeat_timeout:
                self._drop_worker(worker, f"silent for {now - worker.last_seen:.1f}s")
        if now < self._next_timeout_scan:
            return
        self._next_timeout_scan = now + 1.0
        for worker in self.workers.values():
            for job_id in list(worker.held):
                job = self.jobs[job_id]
                if job.state == DISPATCHED and now - job.dispatched_at > self.dispatch_timeout:
                    worker.held.discard(job_id)
                    self._redispatch(job)

    def _close_sockets_of(self, worker: WorkerRecord) -> None:
        """Close the worker's PUSH (its monitor is the SocketManager's, stopped first by ``close``)."""
        self.sockets.close(worker.push, linger=0)

    def _drop_worker(self, worker: WorkerRecord, why: str) -> None:
        """Forget a worker, close its sockets, and queue again exactly the jobs it held."""
        del self.workers[worker.id]
        self.by_type[worker.job_type].remove(worker)
        self.former_workers[worker.id] = time.monotonic()
        while len(self.former_workers) > FORMER_WORKERS_KEPT:
            self.former_workers.popitem(last=False)
        self._close_sockets_of(worker)
        if why != "left":
            self.workers_lost += 1
        level = logging.INFO if why == "left" else logging.WARNING
        log.log(
            level,
            "worker %s (%s) dropped: %s; %d job(s) to send again",
            worker.id,
            worker.job_type,
            why,
            len(worker.held),
        )
        for job_id in sorted(worker.held):
            job = self.jobs[job_id]
            if job.worker_id == worker.id and job.token is not None:
                self._redispatch(job)
        worker.held.clear()

    # -- dispatching ------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Send queued jobs to workers of their type that have room, each to exactly one worker."""
        for job_type, pending in self._pending.items():
            if not pending:
                continue
            workers = self.by_type.get(job_type)
            if not workers:
                continue
            self._turn += 1
            start = self._turn % len(workers)
            for worker in workers[start:] + workers[:start]:
                if not pending:
                    break
                self._fill(worker, pending)

    def _fill(self, worker: WorkerRecord, pending: collections.deque[str]) -> None:
        send = self.sockets.send_safe
        jobs = self.jobs
        job_type, held = worker.job_type, worker.held
        room = worker.capacity - len(held)
        while room > 0 and pending:
            job = jobs[pending.popleft()]
            job.in_queue = False
            if job.state != QUEUED or job.job_type != job_type:
                continue  # moved on since it was queued: never run a step twice or two at once
            token = _urandom(protocol.TOKEN_BYTES).hex()  # unpredictable, as secrets.token_hex
            dispatch = {
                "job_id": job.id,
                "token": token,
                "attempt": job.attempts + 1,
                "data": job.data,
                "session": self.session,
                "admission": worker.admission,
            }
            try:
                sent = send(worker.push, dispatch, timeout=0)
            except SerializationError as error:
                self._finish(job, FAILED, error={"step": job_type, "reason": f"unserializable data: {error}"})
                continue
            if not sent:  # not connected yet, or its queue is full: next turn
                job.in_queue = True
                pending.appendleft(job.id)
                return
            job.attempts += 1
            job.state, job.token, job.worker_id = DISPATCHED, token, worker.id
            job.dispatched_at = now = time.monotonic()
            job.dispatches.append((job_type, worker.id))
            held.add(job.id)
            room -= 1
            if job_type not in self.first_dispatch:
                self.first_dispatch[job_type] = now
