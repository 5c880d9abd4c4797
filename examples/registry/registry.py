"""The registry: authenticates workers, tracks their load, dispatches jobs, re-queues lost ones.

One ROUTER socket (``registry``) carries the whole protocol; the first frame of
each message is the worker's routing identity, the second its JSON payload.
"""

from __future__ import annotations

import collections
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

import gevent
import gevent.event

from agentzero.core import SocketManager
from agentzero.serializers import JSON
from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.registry.protocol import (
    AvailabilityRequest,
    JobAssignment,
    JobStatus,
    JobTermination,
    ServerMessage,
    WorkerPong,
    WorkerStatus,
)

log = logging.getLogger("registry")
FINAL = (JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)
ASSIGNING = "assigning"  # an availability request is out for the job


@dataclass
class WorkerState:
    worker_id: str
    identity: bytes
    agent_name: str
    load_threshold: float
    max_processes: int
    status: str = WorkerStatus.IDLE.value
    load: float = 0.0
    job_count: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    running: set[str] = field(default_factory=set)
    asking: set[str] = field(default_factory=set)
    peak: int = 0
    completed: int = 0
    failed: int = 0

    @property
    def online(self) -> bool:
        return self.status != WorkerStatus.OFFLINE.value

    def can_take(self) -> bool:
        """Under its process limit and its load threshold, counting requests in flight."""
        committed = len(self.running) + len(self.asking)
        return (
            self.online
            and committed < self.max_processes
            and committed / self.max_processes < self.load_threshold
            and self.load < self.load_threshold
        )


@dataclass
class JobState:
    job_id: str
    job_type: str
    metadata: dict[str, Any]
    status: str = JobStatus.PENDING.value
    worker_id: Optional[str] = None
    tried: set[str] = field(default_factory=set)
    asked_at: float = 0.0
    requeued: int = 0
    error: Optional[str] = None
    history: list[str] = field(default_factory=list)  # the workers it was assigned to


class Registry:
    """Accept workers that know a token and keep every submitted job moving to completion.

    Parameters
    ----------
    tokens : set of str
        the auth tokens a ``register`` must carry
    address : str
        where the ROUTER binds (loopback tcp on a free port by default)
    heartbeat_timeout : float
        seconds without a message after which a worker is offline and its jobs re-queued
    availability_timeout : float
        seconds a worker has to answer an ``availability_request``
    """

    def __init__(
        self,
        tokens: set[str],
        address: str = "tcp://127.0.0.1:*",
        heartbeat_timeout: float = 3.0,
        availability_timeout: float = 1.0,
        context: Any = None,
    ) -> None:
        self.tokens = set(tokens)
        self.heartbeat_timeout = heartbeat_timeout
        self.availability_timeout = availability_timeout
        self.sockets = SocketManager(zmq, context or green_context)
        self.sockets.ensure_and_bind("registry", zmq.ROUTER, address, zmq.POLLIN)
        self.address = self.sockets.addresses["registry"]
        self.serializer = JSON()
        self.workers: dict[str, WorkerState] = {}
        self.jobs: dict[str, JobState] = {}
        self.skipped = 0  # malformed frames
        self.refused: set[bytes] = set()  # identities that failed to authenticate
        self.ignored = 0  # messages from peers that are not registered
        self._by_identity: dict[bytes, str] = {}
        self._pending: collections.deque[str] = collections.deque()
        self._changed = gevent.event.Event()
        self._running = True
        self._loop = gevent.spawn(self._serve)

    # -- clients ------------------------------------------------------------------------------

    def submit(
        self, job_type: str = "room", metadata: Optional[dict] = None, job_id: Optional[str] = None
    ) -> str:
        job = JobState(job_id or uuid.uuid4().hex, job_type, dict(metadata or {}))
        self.jobs[job.job_id] = job
        self._pending.append(job.job_id)
        return job.job_id

    def terminate(self, job_id: str, reason: str = "terminated on request") -> bool:
        """Ask the worker running ``job_id`` to stop it; False when it is not running."""
        job = self.jobs.get(job_id)
        if job is None or job.status != JobStatus.RUNNING.value:
            return False
        self._send(self.workers[job.worker_id], JobTermination(job_id=job_id, reason=reason).dict())
        return True

    def wait(self, done: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            self._changed.wait(min(remaining, 0.2))
        return True

    def all_final(self) -> bool:
        return all(job.status in FINAL for job in self.jobs.values())

    def close(self) -> None:
        self._running = False
        self._loop.join(timeout=1)
        self._loop.kill()
        self.sockets.close_all(linger=0)

    # -- the loop ------------------------------------------------------------------------------

    def _serve(self) -> None:
        router = self.sockets.sockets["registry"]
        while self._running:
            if self.sockets.wait_until_ready("registry", zmq.POLLIN, timeout=0.05) is not None:
                for _ in range(1000):
                    try:
                        frames = router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._receive(frames)
            self._check_workers()
            self._check_requests()
            self._dispatch()
            self._changed.set()

    def _receive(self, frames: list[bytes]) -> None:
        if len(frames) != 2:
            self.skipped += 1
            log.warning("skipped a message of %d frames", len(frames))
            return
        identity, payload = frames
        try:
            data = self.serializer.unpack(payload)
            if not isinstance(data, dict) or not isinstance(data.get("type"), str):
                raise ValueError(f"not a message object: {data!r:.60}")
        except Exception as error:
            self.skipped += 1
            log.warning("skipped a malformed frame from %r: %s", identity, error)
            return
        kind = data["type"]
        if kind == "register":
            self._register(identity, data)
            return
        worker = self.workers.get(self._by_identity.get(identity, ""))
        if worker is None:
            self.ignored += 1  # refused, or never registered: nothing is accepted
            return
        worker.last_seen = time.monotonic()
        try:
            self._handle(worker, kind, data)
        except (KeyError, TypeError, ValueError) as error:
            self.skipped += 1
            log.warning("skipped a malformed %s from %s: %r", kind, worker.worker_id, error)

    def _register(self, identity: bytes, data: dict) -> None:
        if data.get("token") not in self.tokens:
            self.refused.add(identity)
            self._by_identity.pop(identity, None)
            reply = ServerMessage(type="register", success=False, message="invalid auth token")
            self.sockets.sockets["registry"].send_multipart(
                [identity, self.serializer.pack_bytes(reply.dict())]
            )
            return
        self.refused.discard(identity)
        worker_id = data.get("worker_id") or uuid.uuid4().hex
        worker = self.workers.get(worker_id)
        if worker is None:
            worker = WorkerState(
                worker_id=worker_id,
                identity=identity,
                agent_name=str(data.get("agent_name", "")),
                load_threshold=float(data.get("load_threshold") or 0.75),
                max_processes=max(1, int(data.get("max_processes") or 1)),
            )
            self.workers[worker_id] = worker
        else:  # a reconnecting worker keeps its id
            self._by_identity.pop(worker.identity, None)
            worker.identity = identity
            worker.status = WorkerStatus.IDLE.value
        worker.last_seen = time.monotonic()
        self._by_identity[identity] = worker_id
        reply = ServerMessage(type="register", success=True, worker_id=worker_id).dict()
        reply["payload"] = {"registry": "agentzero", "heartbeat_timeout": self.heartbeat_timeout}
        self._send(worker, reply)
        log.info("worker %s registered (%s)", worker_id, worker.agent_name)

    def _handle(self, worker: WorkerState, kind: str, data: dict) -> None:
        if kind == "ping":
            self._send(worker, WorkerPong(timestamp=data.get("timestamp")).dict())
        elif kind == "status_update":
            worker.status = str(data.get("status") or worker.status)
            worker.load = float(data.get("load") or 0.0)
            worker.job_count = int(data.get("job_count") or 0)
            if worker.status == WorkerStatus.OFFLINE.value:
                self._lose(worker, "went offline")
        elif kind == "availability_response":
            job = self.jobs[data["job_id"]]
            worker.asking.discard(job.job_id)
            if job.status != ASSIGNING or job.worker_id != worker.worker_id:
                return  # a late answer to a request that timed out
            if data.get("available"):
                self._assign(worker, job)
            else:
                self._requeue(job, tried=worker.worker_id)
        elif kind == "job_update":
            job = self.jobs[data["job_id"]]
            status = str(data["status"])
            if job.worker_id != worker.worker_id or job.status in FINAL:
                return
            if status in FINAL:
                job.status, job.error = status, data.get("error")
                worker.running.discard(job.job_id)
                if status == JobStatus.COMPLETED.value:
                    worker.completed += 1
                elif status == JobStatus.FAILED.value:
                    worker.failed += 1
        else:
            log.warning("unknown message type %r from %s", kind, worker.worker_id)

    # -- dispatching ----------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while self._pending:
            job = self.jobs[self._pending[0]]
            able = [worker for worker in self.workers.values() if worker.can_take()]
            if not able:
                return  # every worker is busy, at its threshold or offline: wait
            # skip the workers that refused this job, unless all of them did: then ask again
            candidates = [worker for worker in able if worker.worker_id not in job.tried] or able
            worker = min(candidates, key=lambda w: (len(w.running) + len(w.asking), w.load))
            self._pending.popleft()
            job.status, job.worker_id, job.asked_at = ASSIGNING, worker.worker_id, time.monotonic()
            worker.asking.add(job.job_id)
            request = AvailabilityRequest(
                job_id=job.job_id, job_type=job.job_type, agent_name=worker.agent_name
            )
            self._send(worker, request.dict())

    def _assign(self, worker: WorkerState, job: JobState) -> None:
        job.status = JobStatus.RUNNING.value
        job.history.append(worker.worker_id)
        worker.running.add(job.job_id)
        worker.peak = max(worker.peak, len(worker.running))
        assignment = JobAssignment(
            job_id=job.job_id,
            job_type=job.job_type,
            agent_name=worker.agent_name,
            token=uuid.uuid4().hex,
            metadata=job.metadata,
        )
        self._send(worker, assignment.dict())

    def _requeue(self, job: JobState, tried: Optional[str] = None, lost: bool = False) -> None:
        if tried:
            job.tried.add(tried)
        if lost:
            job.requeued += 1
            job.tried.clear()
        job.status, job.worker_id = JobStatus.PENDING.value, None
        self._pending.appendleft(job.job_id) if lost else self._pending.append(job.job_id)

    def _check_requests(self) -> None:
        now = time.monotonic()
        for worker in self.workers.values():
            for job_id in list(worker.asking):
                job = self.jobs[job_id]
                if now - job.asked_at > self.availability_timeout:
                    worker.asking.discard(job_id)
                    self._requeue(job, tried=worker.worker_id)

    def _check_workers(self) -> None:
        now = time.monotonic()
        for worker in self.workers.values():
            if worker.online and now - worker.last_seen > self.heartbeat_timeout:
                self._lose(worker, f"silent for {now - worker.last_seen:.1f}s")

    def _lose(self, worker: WorkerState, why: str) -> None:
        worker.status = WorkerStatus.OFFLINE.value
        log.warning("worker %s offline: %s", worker.worker_id, why)
        for job_id in list(worker.running) + list(worker.asking):
            self._requeue(self.jobs[job_id], lost=True)
        worker.running.clear()
        worker.asking.clear()

    def _send(self, worker: WorkerState, data: dict) -> None:
        self.sockets.sockets["registry"].send_multipart([worker.identity, self.serializer.pack_bytes(data)])
