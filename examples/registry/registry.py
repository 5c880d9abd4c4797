"""The registry: authenticates workers, tracks their load, dispatches jobs, re-queues lost ones.

One ROUTER socket (``registry``) carries the whole protocol; the first frame of
each message is the worker's routing identity, the second its JSON payload.
"""

from __future__ import annotations

import collections
import logging
import time
import uuid
from typing import Any, Callable, Optional

import gevent
import gevent.event

from agentzero.core import SocketManager
from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.registry.checks import ProtocolError, check_json_object, check_text
from examples.registry.frames import MAX_MESSAGE_BYTES, TRANSPORT_LIMIT, decode, encode, read_message, send_to
from examples.registry.inbound import DRAINING, worker_message
from examples.registry.protocol import (
    AvailabilityRequest,
    AvailabilityResponse,
    JobAssignment,
    JobTermination,
    JobUpdate,
    ServerMessage,
    WorkerMessage,
    WorkerPong,
)
from examples.registry.state import (
    ASSIGNING,
    BUSY,
    COMPLETED,
    ERROR,
    FAILED,
    FINAL,
    IDLE,
    OFFLINE,
    PENDING,
    RUNNING,
    JobState,
    WorkerState,
)

log = logging.getLogger("registry")


class Registry:
    """Accept workers that know a token and keep every submitted job moving to completion.

    Every message is checked in full (:mod:`examples.registry.frames`,
    :mod:`examples.registry.inbound`) before it changes anything; one that fails
    is counted once (``skipped``, ``ignored`` or ``refusals``), logged once, and
    changes nothing.

    Parameters
    ----------
    tokens : set of str
        the auth tokens a ``register`` must carry
    address : str
        where the ROUTER binds (loopback tcp on a free port by default)
    heartbeat_timeout : float
        seconds without a message after which a worker is offline and its jobs re-queued;
        a worker that speaks again afterwards is taken back
    availability_timeout : float
        seconds a worker has to answer an ``availability_request``
    context : zmq.green.Context, optional
        defaults to :data:`agentzero.zero.context`
    max_message_size : int
        the largest message accepted, in bytes

    Raises
    ------
    ValueError
        when a timeout is not a finite positive number.

    Attributes
    ----------
    skipped : int
        malformed messages (frames, JSON, fields), and messages about jobs that do not exist
    ignored : int
        messages other than ``register`` from peers that are not registered
    refusals : int
        ``register`` messages with a token not in ``tokens``
    stale : int
        answers about a job that is no longer the sender's (late, or another worker's)
    unknown_fields : int
        fields ignored because the protocol does not declare them (newer peers)
    revived : int
        times a worker declared offline spoke again and was taken back
    """

    def __init__(
        self,
        tokens: set[str],
        address: str = "tcp://127.0.0.1:*",
        heartbeat_timeout: float = 3.0,
        availability_timeout: float = 1.0,
        context: Any = None,
        max_message_size: int = MAX_MESSAGE_BYTES,
    ) -> None:
        for name, value in (
            ("heartbeat_timeout", heartbeat_timeout),
            ("availability_timeout", availability_timeout),
        ):
            if not (isinstance(value, (int, float)) and 0 < value < float("inf")):
                raise ValueError(f"{name} must be a finite positive number of seconds, got {value!r}")
        self.tokens = set(tokens)
        self.heartbeat_timeout = heartbeat_timeout
        self.availability_timeout = availability_timeout
        self.max_message_size = max_message_size
        limit = max(TRANSPORT_LIMIT, max_message_size)
        self.sockets = SocketManager(zmq, context or green_context, max_message_size=limit)
        self.sockets.ensure_and_bind("registry", zmq.ROUTER, address, zmq.POLLIN)
        self.address = self.sockets.addresses["registry"]
        self.workers: dict[str, WorkerState] = {}
        self.jobs: dict[str, JobState] = {}
        self.skipped = 0
        self.ignored = 0
        self.refusals = 0
        self.stale = 0
        self.unknown_fields = 0
        self.revived = 0
        self._by_identity: dict[bytes, str] = {}
        self._pending: collections.deque[str] = collections.deque()
        self._changed = gevent.event.Event()
        self._running = True
        self._loop = gevent.spawn(self._serve)

    # -- clients ------------------------------------------------------------------------------

    def submit(
        self, job_type: str = "room", metadata: Optional[dict] = None, job_id: Optional[str] = None
    ) -> str:
        """Queue a job; it goes to the first worker that can take it and says it is available.

        Parameters
        ----------
        job_type : str
            sent in the ``availability_request`` and the ``job_assignment``
        metadata : dict, optional
            sent in the ``job_assignment``: a JSON object, at most ``MAX_DEPTH`` (32) levels deep
        job_id : str, optional
            defaults to a fresh random id

        Returns
        -------
        str
            the job's id

        Raises
        ------
        ValueError
            when a value cannot travel as strict JSON, or ``job_id`` is already taken.
        """
        job_id = uuid.uuid4().hex if job_id is None else check_text("job_id", job_id)
        if job_id in self.jobs:
            raise ValueError(f"job {job_id!r} was already submitted")
        metadata = check_json_object("metadata", dict(metadata or {}))
        job = JobState(job_id, check_text("job_type", job_type), metadata)
        self.jobs[job.job_id] = job
        self._pending.append(job.job_id)
        return job.job_id

    def terminate(self, job_id: str, reason: str = "terminated on request") -> bool:
        """Send ``job_termination`` to the worker running ``job_id``.

        Returns
        -------
        bool
            False when the job is not running (unknown, pending or finished).
        """
        job = self.jobs.get(job_id)
        if job is None or job.status != RUNNING:
            return False
        self._send(self.workers[job.worker_id], JobTermination(job_id=job_id, reason=reason).dict())
        return True

    def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Let the registry work until ``done()`` is true or ``timeout`` seconds passed.

        Returns
        -------
        bool
            whether ``done()`` became true in time.

        Raises
        ------
        ValueError
            when ``timeout`` is negative, infinite or NaN.
        """
        if not (isinstance(timeout, (int, float)) and 0 <= timeout < float("inf")):
            raise ValueError(f"timeout must be a finite non-negative number of seconds, got {timeout!r}")
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            self._changed.wait(min(remaining, 0.2))
        return True

    def all_final(self) -> bool:
        """True when every submitted job is completed, failed or cancelled."""
        return all(job.status in FINAL for job in self.jobs.values())

    @property
    def alive(self) -> bool:
        """True while the registry's loop runs."""
        return not self._loop.dead

    def close(self) -> None:
        """Stop the loop and close the ROUTER (linger 0)."""
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
                    received = read_message(router)
                    if received is None:
                        break
                    try:
                        self._receive(*received)
                    except Exception:  # a bug here must not stop the registry: count it, say it once
                        self.skipped += 1
                        log.exception("skipped a message that broke its handler")
            self._check_workers()
            self._check_requests()
            self._dispatch()
            self._changed.set()

    def _receive(self, frames: list[bytes], count: int) -> None:
        identity = frames[0]
        if count != 2:
            self.skipped += 1
            log.warning("skipped a message of %d frames from %r", count, identity[:32])
            return
        data = None
        try:
            data = decode(frames[1], self.max_message_size)
            message, unknown = worker_message(data)
        except ProtocolError as error:
            self.skipped += 1
            log.warning("skipped a malformed message from %r: %s", identity[:32], error)
            if data is not None and data["type"] == "register":
                self._refuse(identity, f"malformed register: {error}")
            return
        if unknown:
            self.unknown_fields += len(unknown)
            log.debug("ignored %d unknown field(s) of a %s: %s", len(unknown), data["type"], unknown)
        if message.type == "register":
            self._register(identity, message)
            return
        worker = self.workers.get(self._by_identity.get(identity, ""))
        if worker is None:
            self.ignored += 1  # refused, or never registered: nothing is accepted
            log.warning("ignored a %s from %r, a peer that is not registered", message.type, identity[:32])
            return
        self._handle(worker, message)

    def _refuse(self, identity: bytes, why: str) -> None:
        reply = ServerMessage(type="register", success=False, message=why).dict()
        send_to(self.sockets.sockets["registry"], identity, encode(reply))

    def _register(self, identity: bytes, message: WorkerMessage) -> None:
        if message.token not in self.tokens:
            self.refusals += 1
            log.warning("refused a register from %r: invalid auth token", identity[:32])
            self._by_identity.pop(identity, None)
            self._refuse(identity, "invalid auth token")
            return
        worker_id = message.worker_id or ""
        worker = self.workers.get(worker_id) if worker_id else None
        if worker is not None and worker.online and worker.identity != identity:
            # that id belongs to a live worker on another connection: this peer gets its own
            log.warning("register presented the id of live worker %s: a fresh id is given", worker_id)
            worker, worker_id = None, ""
        if worker is None:
            worker_id = worker_id if worker_id and worker_id not in self.workers else uuid.uuid4().hex
            worker = WorkerState(
                worker_id=worker_id,
                identity=identity,
                agent_name=message.agent_name or "",
                load_threshold=message.load_threshold or 0.75,
                max_processes=message.max_processes or 1,
            )
            self.workers[worker_id] = worker
        else:  # a reconnecting worker keeps its id
            if not worker.online:
                self.revived += 1
                log.warning("worker %s is back, on a new connection", worker_id)
            self._by_identity.pop(worker.identity, None)
            worker.identity = identity
            worker.status, worker.draining = IDLE, False
        worker.last_seen = time.monotonic()
        self._by_identity[identity] = worker_id
        reply = ServerMessage(type="register", success=True, worker_id=worker_id).dict()
        reply["payload"] = {"registry": "agentzero", "heartbeat_timeout": self.heartbeat_timeout}
        self._send(worker, reply)
        log.info("worker %s registered (%s)", worker_id, worker.agent_name)

    def _handle(self, worker: WorkerState, message: Any) -> None:
        kind = message.type
        if kind == "status_update" and message.worker_id not in (None, "", worker.worker_id):
            self.skipped += 1
            log.warning(
                "skipped a status_update from %s naming worker %r", worker.worker_id, message.worker_id
            )
            return
        worker.last_seen = time.monotonic()
        if not worker.online and not (kind == "status_update" and message.status == "offline"):
            # it was lost (silent past the heartbeat timeout) and speaks again: take it back
            worker.status = IDLE
            self.revived += 1
            log.warning("worker %s is back", worker.worker_id)
        if kind == "ping":
            self._send(worker, WorkerPong(timestamp=message.timestamp).dict())
        elif kind == "status_update":
            self._status_update(worker, message)
        elif kind == "availability_response":
            self._availability_response(worker, message)
        else:
            self._job_update(worker, message)

    def _status_update(self, worker: WorkerState, message: WorkerMessage) -> None:
        if message.load is not None:
            worker.load = message.load
        if message.job_count is not None:
            worker.job_count = message.job_count
        status = message.status
        if status == OFFLINE:
            if worker.online:
                self._lose(worker, "went offline")
            return
        worker.draining = status == DRAINING
        if status == ERROR:
            worker.status = status
        else:
            busy = worker.job_count > 0 or status == BUSY
            worker.status = BUSY if busy else IDLE

    def _job_of(self, worker: WorkerState, message: Any) -> Optional[JobState]:
        job = self.jobs.get(message.job_id)
        if job is None:
            self.skipped += 1
            log.warning(
                "skipped a %s from %s for unknown job %r", message.type, worker.worker_id, message.job_id
            )
            return None
        if job.worker_id != worker.worker_id:
            self.stale += 1  # a late answer about a job that moved on, or another worker's job
            log.debug(
                "ignored a %s from %s about job %s, not its job", message.type, worker.worker_id, job.job_id
            )
            return None
        return job

    def _availability_response(self, worker: WorkerState, message: AvailabilityResponse) -> None:
        job = self._job_of(worker, message)
        if job is None:
            return
        if job.status != ASSIGNING or job.job_id not in worker.asking:
            self.stale += 1
            log.debug("ignored a late availability_response from %s for job %s", worker.worker_id, job.job_id)
            return
        worker.asking.discard(job.job_id)
        if message.available:
            self._assign(worker, job)
        else:
            log.debug("worker %s refused job %s: %s", worker.worker_id, job.job_id, message.error)
            self._requeue(job, tried=worker.worker_id)

    def _job_update(self, worker: WorkerState, message: JobUpdate) -> None:
        job = self._job_of(worker, message)
        if job is None or job.status in FINAL:
            return
        status = message.status
        if status in FINAL and job.job_id in worker.running:
            job.status, job.error = status, message.error
            worker.running.discard(job.job_id)
            if status == COMPLETED:
                worker.completed += 1
            elif status == FAILED:
                worker.failed += 1
        elif status == "error":
            job.error = message.error

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
        job.status = RUNNING
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
        job.status, job.worker_id = PENDING, None
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
        worker.status = OFFLINE
        log.warning("worker %s offline: %s", worker.worker_id, why)
        for job_id in list(worker.running) + list(worker.asking):
            self._requeue(self.jobs[job_id], lost=True)
        worker.running.clear()
        worker.asking.clear()

    def _send(self, worker: WorkerState, data: dict) -> None:
        send_to(self.sockets.sockets["registry"], worker.identity, encode(data))
