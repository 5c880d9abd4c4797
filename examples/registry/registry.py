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
from agentzero.errors import MessageTooLarge, PeerUnreachable
from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.registry.checks import ProtocolError, check_json_object, check_text
from examples.registry.frames import MAX_MESSAGE_BYTES, TRANSPORT_LIMIT, decode, encode
from examples.registry.inbound import DRAINING, worker_message
from examples.registry.jobs import JobFlow
from examples.registry.protocol import (
    JobTermination,
    ServerMessage,
    WorkerMessage,
    WorkerPong,
)
from examples.registry.roster import Refused, Roster
from examples.registry.state import (
    BUSY,
    ERROR,
    FINAL,
    IDLE,
    OFFLINE,
    RUNNING,
    JobState,
    WorkerState,
)
from examples.registry.throttle import DEBUG, INFO, WARNING, ThrottledLog

log = logging.getLogger("registry")


class Registry(JobFlow):
    """Accept workers that know a token and keep every submitted job moving to completion.

    Every message is checked in full (:mod:`examples.registry.frames`,
    :mod:`examples.registry.inbound`) before it changes anything; one that fails
    is counted once (``skipped``, ``ignored``, ``refusals``, ``over_limit``),
    logged once, and changes nothing. The log lines about peers are rate-limited
    (:mod:`examples.registry.throttle`): at most ``log_burst`` about one peer and
    ``log_limit`` in all per ``log_interval`` seconds, then one summary line of
    what was left out; the counters count every message.

    What a peer can make the registry keep is bounded (:mod:`examples.registry.roster`):
    a connection holds at most one worker; at most ``max_workers`` workers are
    kept, offline ones forgotten ``forget_after`` seconds after they were last
    heard from (or sooner, to make room); past the bound a ``register`` is
    refused on the wire. Of the finished jobs (completed, failed, cancelled),
    only the ``max_finished_jobs`` that finished last are kept in ``jobs``.

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
    max_workers : int
        the most workers kept, live or offline
    forget_after : float
        seconds after an offline worker was last heard from that it is forgotten
    max_finished_jobs : int
        how many finished jobs ``jobs`` keeps, the ones that finished last
    log_interval : float
        the window of the log's rate limit, in seconds
    log_burst : int
        the most log lines about one peer per window
    log_limit : int
        the most log lines about all peers together per window

    Raises
    ------
    ValueError
        when a timeout, ``forget_after`` or ``log_interval`` is not a finite positive
        number, or a count not a positive integer (``max_finished_jobs`` may be 0).

    Attributes
    ----------
    skipped : int
        malformed messages (frames, JSON, fields), and messages about jobs that do not exist
    ignored : int
        messages other than ``register`` from peers that are not registered
    refusals : int
        ``register`` messages with a token not in ``tokens``
    over_limit : int
        ``register`` messages refused by the bounds: the registry full of live workers,
        or the connection already holding another worker
    stale : int
        answers about a job that is no longer the sender's (late, or another worker's)
    unknown_fields : int
        fields ignored because the protocol does not declare them (newer peers)
    revived : int
        times a worker declared offline spoke again and was taken back
    forgotten : int
        offline workers forgotten
    pruned : int
        finished jobs dropped from ``jobs`` to keep ``max_finished_jobs``
    """

    def __init__(
        self,
        tokens: set[str],
        address: str = "tcp://127.0.0.1:*",
        heartbeat_timeout: float = 3.0,
        availability_timeout: float = 1.0,
        context: Any = None,
        max_message_size: int = MAX_MESSAGE_BYTES,
        max_workers: int = 1024,
        forget_after: float = 300.0,
        max_finished_jobs: int = 10_000,
        log_interval: float = 10.0,
        log_burst: int = 32,
        log_limit: int = 128,
    ) -> None:
        for name, value in (
            ("heartbeat_timeout", heartbeat_timeout),
            ("availability_timeout", availability_timeout),
            ("forget_after", forget_after),
        ):
            if not (isinstance(value, (int, float)) and 0 < value < float("inf")):
                raise ValueError(f"{name} must be a finite positive number of seconds, got {value!r}")
        for name, value, least in (
            ("max_workers", max_workers, 1),
            ("max_finished_jobs", max_finished_jobs, 0),
        ):
            if type(value) is not int or value < least:
                raise ValueError(f"{name} must be an integer of at least {least}, got {value!r}")
        self.notes = ThrottledLog(log, log_interval, log_burst, log_limit)
        self.tokens = set(tokens)
        self.heartbeat_timeout = heartbeat_timeout
        self.availability_timeout = availability_timeout
        self.forget_after = forget_after
        self.max_finished_jobs = max_finished_jobs
        self.max_message_size = max_message_size
        limit = max(TRANSPORT_LIMIT, max_message_size)
        self.sockets = SocketManager(zmq, context or green_context, max_message_size=limit)
        self.sockets.ensure_and_bind("registry", zmq.ROUTER, address, zmq.POLLIN)
        self.address = self.sockets.addresses["registry"]
        self.roster = Roster(max_workers, self.notes)
        # the roster's own dicts, under the names the registry has always had
        self.workers: dict[str, WorkerState] = self.roster.workers
        self._by_identity: dict[bytes, str] = self.roster.by_identity
        self.jobs: dict[str, JobState] = {}
        self.skipped = 0
        self.ignored = 0
        self.refusals = 0
        self.over_limit = 0
        self.stale = 0
        self.unknown_fields = 0
        self.revived = 0
        self.pruned = 0
        self._finished: collections.deque[str] = collections.deque()  # job ids, in the order they finished
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
            when a value cannot travel as strict JSON, or ``job_id`` is already taken
            (in ``jobs``: the id of a finished job pruned from it may be used again).
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
        """True when every submitted job is completed, failed or cancelled (pruned ones were)."""
        return all(job.status in FINAL for job in self.jobs.values())

    @property
    def alive(self) -> bool:
        """True while the registry's loop runs."""
        return not self._loop.dead

    @property
    def forgotten(self) -> int:
        """Offline workers forgotten so far (see ``forget_after`` and ``max_workers``)."""
        return self.roster.forgotten

    def close(self) -> None:
        """Stop the loop, log the summary of any log lines left out, close the ROUTER (linger 0)."""
        self._running = False
        self._loop.join(timeout=1)
        self._loop.kill()
        self.notes.flush(force=True)
        self.sockets.close_all(linger=0)

    # -- the loop ------------------------------------------------------------------------------

    def _serve(self) -> None:
        while self._running:
            if self.sockets.wait_until_ready("registry", zmq.POLLIN, timeout=0.05) is not None:
                self._read_messages(1000)
            now = time.monotonic()
            self._check_workers(now)
            self._check_requests(now)
            self._dispatch()
            self.notes.flush(now)
            self._changed.set()

    def _read_messages(self, limit: int) -> None:
        """Handle at most ``limit`` waiting messages; one over the bounds is refused and counted."""
        while limit > 0:
            try:
                for frames in self.sockets.drain_multipart_safe("registry", limit):
                    limit -= 1
                    self._receive_safely(frames[:2], len(frames))
                return
            except MessageTooLarge as refused:  # more frames or bytes than a peer may send: drop it
                limit -= 1
                self._receive_safely(refused.raw[:1], refused.frames or 0)

    def _receive_safely(self, frames: list[bytes], count: int) -> None:
        try:
            self._receive(frames, count)
        except Exception:  # a bug here must not stop the registry: count it, say it once
            self.skipped += 1
            self.notes.log(
                logging.ERROR, frames[0], "skipped", "skipped a message that broke its handler", exc_info=True
            )

    def _receive(self, frames: list[bytes], count: int) -> None:
        identity = frames[0]
        note = self.notes.log
        if count != 2:
            self.skipped += 1
            note(WARNING, identity, "skipped", "skipped a message of %d frames from %r", count, identity[:32])
            return
        data = None
        try:
            data = decode(frames[1], self.max_message_size)
            message, unknown = worker_message(data)
        except ProtocolError as error:
            self.skipped += 1
            note(
                WARNING, identity, "skipped", "skipped a malformed message from %r: %s", identity[:32], error
            )
            if data is not None and data["type"] == "register":
                self._refuse(identity, f"malformed register: {error}")
            return
        if unknown:
            self.unknown_fields += len(unknown)
            note(
                DEBUG,
                identity,
                "unknown fields",
                "ignored %d unknown field(s) of a %s: %s",
                len(unknown),
                data["type"],
                unknown,
            )
        if message.type == "register":
            self._register(identity, message)
            return
        worker = self.workers.get(self._by_identity.get(identity, ""))
        if worker is None:
            self.ignored += 1  # refused, or never registered: nothing is accepted
            note(
                WARNING,
                identity,
                "ignored",
                "ignored a %s from %r, a peer that is not registered",
                message.type,
                identity[:32],
            )
            return
        self._handle(worker, message)

    def _refuse(self, identity: bytes, why: str) -> None:
        reply = ServerMessage(type="register", success=False, message=why).dict()
        try:
            self.sockets.send_multipart_safe("registry", [identity, encode(reply)], timeout=0)
        except PeerUnreachable:  # the peer left already: nobody to tell
            pass

    def _register(self, identity: bytes, message: WorkerMessage) -> None:
        if message.token not in self.tokens:
            self.refusals += 1
            self.notes.log(
                WARNING, identity, "refusals", "refused a register from %r: invalid auth token", identity[:32]
            )
            held = self.roster.held_by(identity)
            if held is not None:  # the connection is no longer trusted: its worker is gone
                if held.online:
                    self._lose(held, "its connection sent an invalid auth token")
                self.roster.forget(held)
            self._refuse(identity, "invalid auth token")
            return
        try:
            worker, revived = self.roster.admit(identity, message)
        except Refused as refusal:
            self.over_limit += 1
            self.notes.log(
                WARNING, identity, "over_limit", "refused a register from %r: %s", identity[:32], refusal
            )
            self._refuse(identity, str(refusal))
            return
        if revived:
            self.revived += 1
            self.notes.log(
                WARNING, identity, "revived", "worker %s is back: it registered again", worker.worker_id
            )
        reply = ServerMessage(type="register", success=True, worker_id=worker.worker_id).dict()
        reply["payload"] = {"registry": "agentzero", "heartbeat_timeout": self.heartbeat_timeout}
        self._send(worker, reply)
        self.notes.log(
            INFO,
            identity,
            "registered",
            "worker %s registered (%s)",
            worker.worker_id,
            worker.agent_name,
        )

    def _handle(self, worker: WorkerState, message: Any) -> None:
        kind = message.type
        if kind == "status_update" and message.worker_id not in (None, "", worker.worker_id):
            self.skipped += 1
            self.notes.log(
                WARNING,
                worker.identity,
                "skipped",
                "skipped a status_update from %s naming worker %r",
                worker.worker_id,
                message.worker_id,
            )
            return
        worker.last_seen = time.monotonic()
        if not worker.online and not (kind == "status_update" and message.status == "offline"):
            # it was lost (silent past the heartbeat timeout) and speaks again: take it back
            worker.status = IDLE
            self.revived += 1
            self.notes.log(WARNING, worker.identity, "revived", "worker %s is back", worker.worker_id)
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

    def _check_workers(self, now: float) -> None:
        forget = None
        for worker in self.workers.values():
            if worker.online:
                if now - worker.last_seen > self.heartbeat_timeout:
                    self._lose(worker, f"silent for {now - worker.last_seen:.1f}s")
            elif now - worker.last_seen > self.forget_after:
                forget = forget or []
                forget.append(worker)
        for worker in forget or ():
            self.roster.forget(worker)

    def _send(self, worker: WorkerState, data: dict) -> None:
        try:
            self.sockets.send_multipart_safe("registry", [worker.identity, encode(data)], timeout=0)
        except PeerUnreachable:  # the worker left: its heartbeat timeout will tell the roster
            pass
