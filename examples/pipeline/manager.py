"""The pipeline manager: takes jobs in, routes them through their steps, survives lost workers.

Sockets (all named, all in one SocketManager, polled together by ``engage()``):

- ``pipe-sub`` SUB, bound: heartbeats, job events, metrics and logs of every step worker;
- ``jobs-in`` PULL, bound: jobs submitted by clients;
- ``pipe-status`` REP, bound: job status, statistics and the manager's addresses;
- ``push:<job type>`` PUSH, one per job type, connected to each worker that announced itself.
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import gevent

from agentzero.core import SocketManager
from agentzero.errors import DeserializationError
from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.pipeline import protocol
from examples.pipeline.protocol import (
    COMPLETED,
    DISPATCHED,
    FAILED,
    FINAL_STATES,
    QUEUED,
    RUNNING,
    BadJob,
    check_job,
)
from examples.pipeline.steps import PIPELINES

log = logging.getLogger("pipeline.manager")


@dataclass
class JobRecord:
    """Everything the manager knows about one job."""

    id: str
    pipeline: str
    steps: list[str]
    data: dict[str, Any]
    state: str = QUEUED
    step_index: int = 0
    attempts: int = 0  # attempts at the current step
    retries: int = 0  # errors that were retried, over all steps
    redispatches: int = 0  # times it was sent again because a worker was lost
    token: int = 0  # identifies the current dispatch; events of older ones are stale
    worker_id: str | None = None
    result: Any = None
    error: Any = None
    submitted_at: float = field(default_factory=time.monotonic)
    dispatched_at: float = 0.0
    finished_at: float | None = None

    @property
    def job_type(self) -> str:
        return self.steps[min(self.step_index, len(self.steps) - 1)]

    def view(self) -> dict[str, Any]:
        """The job as the status socket reports it."""
        return {
            "job_id": self.id,
            "pipeline": self.pipeline,
            "state": self.state,
            "step": self.job_type,
            "attempts": self.attempts,
            "retries": self.retries,
            "redispatches": self.redispatches,
            "result": self.result,
            "error": self.error,
        }


@dataclass
class WorkerRecord:
    id: str
    job_type: str
    address: str
    concurrency: int
    pid: int | None
    last_seen: float
    running: set[str] = field(default_factory=set)
    done: int = 0


class PipelineManager:
    """Receive jobs, dispatch each step to a live worker of its type, and keep score.

    Parameters
    ----------
    bind_host : str
        the interface every socket binds to (loopback by default)
    status_port : int
        the port of the status socket, the manager's front door; 0 picks a free one
    pipelines : dict
        pipeline name -> ordered job types
    max_attempts : int
        how often a step that raises is tried before the job fails
    heartbeat_timeout : float
        seconds without an ``available`` event after which a worker counts as lost
    dispatch_timeout : float
        seconds a dispatched job may wait to start before it is sent again
    max_redispatches : int
        how many lost workers a job survives before it fails
    """

    def __init__(
        self,
        bind_host: str = "127.0.0.1",
        status_port: int = 0,
        pipelines: dict[str, list[str]] | None = None,
        max_attempts: int = 3,
        heartbeat_timeout: float = 3.0,
        dispatch_timeout: float = 60.0,
        max_redispatches: int = 5,
        context: Any = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.bind_host = bind_host
        self.status_port = status_port
        self.pipelines = dict(pipelines or PIPELINES)
        self.max_attempts = max_attempts
        self.heartbeat_timeout = heartbeat_timeout
        self.dispatch_timeout = dispatch_timeout
        self.max_redispatches = max_redispatches
        self.sockets = SocketManager(zmq, context or green_context)
        self.addresses: dict[str, str] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.workers: dict[str, WorkerRecord] = {}
        self.rejected: list[dict[str, Any]] = []
        self.logs: collections.deque[str] = collections.deque(maxlen=200)
        self.stale_events = 0
        self.completed_per_step: collections.Counter[str] = collections.Counter()
        self.first_dispatch: dict[str, float] = {}
        self.last_done: dict[str, float] = {}
        self._pending: dict[str, collections.deque[str]] = collections.defaultdict(collections.deque)
        self._in_flight: dict[str, set[str]] = collections.defaultdict(set)
        self._loop: gevent.Greenlet | None = None
        self._running = False
        self.started_at = time.monotonic()

    # -- life cycle -----------------------------------------------------------------------

    def bind(self) -> dict[str, str]:
        """Bind the three inbound sockets and return their addresses."""
        host = f"tcp://{self.bind_host}"
        self.sockets.ensure_and_bind("pipe-status", zmq.REP, f"{host}:{self.status_port or '*'}", zmq.POLLIN)
        for name, kind in (("pipe-sub", zmq.SUB), ("jobs-in", zmq.PULL)):
            self.sockets.create(name, kind)
            self.sockets.bind_to_random_port(name, zmq.POLLIN, local_address=host)
        self.sockets.set_topic("pipe-sub", "")
        self.addresses = {
            "status": self.sockets.addresses["pipe-status"],
            "events": self.sockets.addresses["pipe-sub"],
            "jobs": self.sockets.addresses["jobs-in"],
        }
        return self.addresses

    def start(self) -> dict[str, str]:
        """Bind (if needed) and run the manager's loop in a greenlet; return the addresses."""
        if not self.addresses:
            self.bind()
        self._running = True
        self.started_at = time.monotonic()
        self._loop = gevent.spawn(self.run)
        return self.addresses

    def run(self) -> None:
        """The manager's loop: wait on every inbound socket at once, handle what is ready."""
        self._running = True
        inbound = {
            self.sockets.sockets["pipe-sub"]: self._drain_events,
            self.sockets.sockets["jobs-in"]: self._drain_jobs,
            self.sockets.sockets["pipe-status"]: self._answer_status,
        }
        while self._running:
            for socket in self.sockets.engage(timeout=100):
                handler = inbound.get(socket)
                if handler is not None:
                    handler()
            self._check_workers()
            self._dispatch()

    def stop(self) -> None:
        """Stop the loop and close every socket."""
        self._running = False
        if self._loop is not None:
            self._loop.join(timeout=2)
            self._loop.kill()
        self.sockets.close_all(linger=0)

    # -- clients --------------------------------------------------------------------------

    def submit(self, job: Any) -> JobRecord | None:
        """Accept a job (as ``jobs-in`` would); a bad one is recorded in :attr:`rejected`."""
        try:
            job = check_job(job, self.pipelines)
            if job["id"] in self.jobs:
                raise BadJob(f"duplicate job id {job['id']!r}")
        except BadJob as problem:
            return self._reject(job, str(problem))
        record = JobRecord(
            id=job["id"],
            pipeline=job["pipeline"],
            steps=list(self.pipelines[job["pipeline"]]),
            data=dict(job.get("instructions") or {}),
        )
        self.jobs[record.id] = record
        self._pending[record.job_type].append(record.id)
        return record

    def done(self) -> bool:
        """True when every accepted job reached a final state."""
        return all(job.state in FINAL_STATES for job in self.jobs.values())

    def wait(self, count: int, timeout: float, on_tick: Callable[[], None] | None = None) -> bool:
        """Wait until ``count`` jobs are final; return False on time-out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if on_tick is not None:
                on_tick()
            if len(self.jobs) + len(self.rejected) >= count and self.done():
                return True
            gevent.sleep(0.05)
        return False

    def stats(self) -> dict[str, Any]:
        """Counts by state, retries, re-dispatches, workers and per-step throughput."""
        states = collections.Counter(job.state for job in self.jobs.values())
        throughput = {}
        for job_type, completed in self.completed_per_step.items():
            span = self.last_done[job_type] - self.first_dispatch.get(job_type, self.started_at)
            throughput[job_type] = completed / span if span > 0 else 0.0
        return {
            "jobs": len(self.jobs),
            "states": dict(states),
            "completed": states[COMPLETED],
            "failed": states[FAILED],
            "rejected": len(self.rejected),
            "retries": sum(job.retries for job in self.jobs.values()),
            "redispatches": sum(job.redispatches for job in self.jobs.values()),
            "stale_events": self.stale_events,
            "workers": collections.Counter(worker.job_type for worker in self.workers.values()),
            "completed_per_step": dict(self.completed_per_step),
            "throughput_per_step": throughput,
            "uptime": time.monotonic() - self.started_at,
        }

    # -- inbound sockets ---------------------------------------------------------------------

    def _drain_jobs(self) -> None:
        for _ in range(1000):  # bounded, so events and status requests get their turn
            try:
                job = self.sockets.recv_safe("jobs-in", timeout=0)
            except DeserializationError as error:
                self._reject(error.raw, f"unreadable job: {error.reason}")
                continue
            if job is None:
                return
            self.submit(job)

    def _drain_events(self) -> None:
        for _ in range(1000):
            try:
                event = self.sockets.recv_event_safe("pipe-sub", timeout=0)
            except DeserializationError as error:
                log.warning("skipped an unreadable event: %s", error)
                continue
            if event is None:
                return
            try:
                self._handle_event(event.topic.decode("utf-8", "replace"), event.data)
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                log.warning("skipped a malformed %r event: %r", event.topic, error)

    def _answer_status(self) -> None:
        try:
            request = self.sockets.recv_safe("pipe-status", timeout=0)
        except DeserializationError as error:
            self.sockets.send_safe("pipe-status", {"error": f"unreadable request: {error.reason}"})
            return
        if request is None:
            return
        self.sockets.send_safe("pipe-status", self._status_reply(request), timeout=1)

    def _status_reply(self, request: Any) -> dict[str, Any]:
        command = request.get("command") if isinstance(request, dict) else None
        if command == "addresses":
            return dict(self.addresses)
        if command == "stats":
            return self.stats()
        if command == "status":
            job = self.jobs.get(request.get("job_id"))
            if job is None:
                rejected = [entry for entry in self.rejected if entry.get("job_id") == request.get("job_id")]
                if rejected:
                    return {"job_id": request.get("job_id"), "state": "rejected", **rejected[-1]}
                return {"job_id": request.get("job_id"), "state": "unknown", "error": "no such job"}
            return job.view()
        if command == "submit":
            record = self.submit(request.get("job"))
            if record is None:
                return {"state": "rejected", "error": self.rejected[-1]["reason"]}
            return {"job_id": record.id, "state": record.state}
        return {"error": f"unknown request {request!r}; commands: addresses, stats, status, submit"}

    # -- step events ----------------------------------------------------------------------

    def _handle_event(self, topic: str, data: dict[str, Any]) -> None:
        if topic == protocol.AVAILABLE:
            self._worker_seen(data)
        elif topic == protocol.LOGS:
            self.logs.append(data["msg"])
        elif topic == protocol.METRIC:
            worker = self.workers.get(data["worker_id"])
            if worker is not None:
                worker.done = int(data["done"])
        elif topic.startswith("job:"):
            job = self.jobs.get(data["job_id"])
            if job is None or job.token != data["token"] or job.state in FINAL_STATES:
                self.stale_events += 1
                return
            worker = self.workers.get(data["worker_id"])
            if topic == protocol.JOB_STARTED:
                job.state, job.worker_id = RUNNING, data["worker_id"]
                if worker is not None:
                    worker.running.add(job.id)
                return
            if worker is not None:
                worker.running.discard(job.id)
            self._in_flight[job.job_type].discard(job.id)
            if topic == protocol.JOB_SUCCESS:
                self._step_succeeded(job, data.get("result"))
            elif topic == protocol.JOB_FAILED:
                self._finish(job, FAILED, error={"reason": data.get("reason"), "step": job.job_type})
            elif topic == protocol.JOB_ERROR:
                self._step_errored(job, data.get("error"))

    def _step_succeeded(self, job: JobRecord, result: Any) -> None:
        now = time.monotonic()
        step = job.job_type
        self.completed_per_step[step] += 1
        self.last_done[step] = now
        if job.step_index + 1 >= len(job.steps):
            self._finish(job, COMPLETED, result=result)
            return
        job.step_index += 1
        job.attempts = 0
        job.data = result if isinstance(result, dict) else {"value": result}
        self._queue(job)

    def _step_errored(self, job: JobRecord, error: Any) -> None:
        if job.attempts >= self.max_attempts:
            self._finish(job, FAILED, error={"step": job.job_type, "attempts": job.attempts, **(error or {})})
            return
        job.retries += 1
        self._queue(job)

    def _finish(self, job: JobRecord, state: str, result: Any = None, error: Any = None) -> None:
        job.state, job.result, job.error = state, result, error
        job.finished_at = time.monotonic()
        job.worker_id = None

    def _queue(self, job: JobRecord, first: bool = False) -> None:
        job.state, job.worker_id = QUEUED, None
        pending = self._pending[job.job_type]
        pending.appendleft(job.id) if first else pending.append(job.id)

    def _reject(self, job: Any, reason: str) -> None:
        job_id = job.get("id") if isinstance(job, dict) else None
        self.rejected.append({"job_id": job_id, "reason": reason})
        log.warning("rejected a job: %s", reason)
        return None

    # -- workers --------------------------------------------------------------------------

    def _worker_seen(self, data: dict[str, Any]) -> None:
        worker_id = data["worker_id"]
        if data.get("leaving"):
            worker = self.workers.get(worker_id)
            if worker is not None:
                self._drop_worker(worker, "left")
            return
        worker = self.workers.get(worker_id)
        if worker is not None:
            worker.last_seen = time.monotonic()
            return
        job_type = data["job_type"]
        worker = WorkerRecord(
            id=worker_id,
            job_type=job_type,
            address=data["address"],
            concurrency=max(1, int(data.get("concurrency", 1))),
            pid=data.get("pid"),
            last_seen=time.monotonic(),
        )
        push = f"push:{job_type}"
        if push not in self.sockets.sockets:
            self.sockets.create(push, zmq.PUSH)
            # queue only to connected workers: nothing waits in a pipe to a dead one
            self.sockets.set_socket_option(push, zmq.IMMEDIATE, 1)
            self.sockets.set_socket_option(push, zmq.LINGER, 0)
        self.sockets.connect(push, worker.address, 0)
        self.workers[worker_id] = worker
        log.info("worker %s (%s) joined at %s", worker_id, job_type, worker.address)

    def _check_workers(self) -> None:
        now = time.monotonic()
        for worker in list(self.workers.values()):
            if now - worker.last_seen > self.heartbeat_timeout:
                self._drop_worker(worker, f"silent for {now - worker.last_seen:.1f}s")
        for in_flight in self._in_flight.values():
            for job_id in list(in_flight):
                job = self.jobs[job_id]
                if job.state == DISPATCHED and now - job.dispatched_at > self.dispatch_timeout:
                    in_flight.discard(job_id)
                    self._redispatch(job)

    def _drop_worker(self, worker: WorkerRecord, why: str) -> None:
        """Forget a worker and send again every job it may have held."""
        del self.workers[worker.id]
        self.sockets.disconnect(f"push:{worker.job_type}", worker.address)
        level = logging.INFO if why == "left" else logging.WARNING
        log.log(level, "worker %s (%s) dropped: %s", worker.id, worker.job_type, why)
        in_flight = self._in_flight[worker.job_type]
        for job_id in list(in_flight):
            job = self.jobs[job_id]
            # a dispatched job may sit in the lost worker's queue: which one is unknown,
            # so all are sent again and the late results of the old copies are ignored.
            if job.state == DISPATCHED or (job.state == RUNNING and job.worker_id == worker.id):
                in_flight.discard(job_id)
                self._redispatch(job)

    def _redispatch(self, job: JobRecord) -> None:
        job.redispatches += 1
        job.attempts -= 1  # losing a worker is not the job's fault: not an attempt
        if job.redispatches > self.max_redispatches:
            self._finish(job, FAILED, error={"step": job.job_type, "reason": "lost too many workers"})
            return
        self._queue(job, first=True)

    def _capacity(self, job_type: str) -> int:
        return sum(2 * w.concurrency for w in self.workers.values() if w.job_type == job_type)

    def _dispatch(self) -> None:
        for job_type, pending in self._pending.items():
            in_flight = self._in_flight[job_type]
            room = self._capacity(job_type) - len(in_flight)
            push = f"push:{job_type}"
            while pending and room > 0:
                job = self.jobs[pending[0]]
                job.token += 1
                job.attempts += 1
                dispatch = {"job_id": job.id, "token": job.token, "attempt": job.attempts, "data": job.data}
                if not self.sockets.send_safe(push, dispatch, timeout=0):
                    job.token -= 1
                    job.attempts -= 1
                    break  # no worker connected yet: try again on the next turn
                pending.popleft()
                job.state, job.dispatched_at = DISPATCHED, time.monotonic()
                self.first_dispatch.setdefault(job_type, job.dispatched_at)
                in_flight.add(job.id)
                room -= 1
