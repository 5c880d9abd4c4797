"""A step worker: pulls jobs of one type, runs them in a gevent pool, publishes what happens.

Sockets (all named, all in one SocketManager):

- ``manager`` REQ, connected to the manager's status socket, asked for its addresses
  when the worker starts, then every ``probe_interval`` seconds: the probe;
- ``jobs`` PULL, bound to a random port; the manager's PUSH for this job type connects to it;
- ``events`` PUB, connected to the manager's SUB: heartbeats, job events, metrics and logs.

A step's result or error travels in one event, which the manager reads only
up to its ``max_message_size``: the worker asks for that limit when it
connects, and reports a result or error that would not fit as a
:class:`ReportTooLarge` error of the job instead of sending it.

Ctrl-C (SIGINT, with the command line's handler) stops the worker at once:
its running jobs are ended unfinished and the manager hands them, with the
ones still waiting, to other workers. SIGTERM lets the running jobs finish.

A worker that was frozen (SIGSTOP, a swapped-out machine) for longer than the
manager's heartbeat timeout has been dropped by then, and its jobs given to
others: for a moment after it wakes, it refuses (``job:refused``) the
dispatches it still finds, instead of running them a second time.

The probe keeps the worker with its manager. A manager restarted on the same
status port answers with its new addresses, and the worker connects its
events socket there and carries on; a manager that stops on SIGTERM answers
``stopping``, and the worker leaves; a manager that does not answer for
``orphan_timeout`` seconds leaves an orphan, which exits. Each of these is one
log line of the ``pipeline.worker`` logger.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

import gevent
import gevent.pool

from agentzero.core import SocketManager
from agentzero.errors import DeserializationError, SerializationError
from agentzero.pipeline import protocol
from agentzero.pipeline.probe import ManagerUnreachable as ManagerUnreachable  # re-exported
from agentzero.pipeline.probe import Probe
from agentzero.pipeline.probe import ask_manager as ask_manager  # re-exported
from agentzero.pipeline.protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    MAX_REASON_CHARS,
    TOKEN_BYTES,
    excerpt,
    finite_seconds,
    is_clean_text,
)
from agentzero.pipeline.steps import Job, JobFailed, Step
from agentzero.serializers import frame_packer
from agentzero.util import serialized_exception
from agentzero.zero import context as green_context
from agentzero.zero import zmq

#: Seconds after waking from a freeze during which dispatches are refused.
REFUSE_AFTER_FREEZE = 0.5
#: Seconds a worker goes on without its manager by default (``step --orphan-timeout``).
DEFAULT_ORPHAN_TIMEOUT = 60.0
#: The most characters of a step's traceback a worker sends: its start and its end.
MAX_TRACEBACK_CHARS = 8000


class ReportTooLarge(Exception):
    """A job's result or error that the manager would drop for its size; the worker sends this instead.

    Parameters
    ----------
    job_id : str
        the job
    what : str
        ``"result"`` or ``"error"``
    size : int
        the event's size, in bytes
    limit : int
        the manager's ``max_message_size``
    """

    def __init__(self, job_id: str, what: str, size: int, limit: int) -> None:
        self.job_id, self.what, self.size, self.limit = job_id, what, size, limit
        super().__init__(
            f"the {what} of job {job_id!r} makes an event of {size} bytes, "
            f"over the manager's max_message_size of {limit} bytes: it was not sent"
        )


class StepWorker(Probe):
    """Run one :class:`~agentzero.pipeline.steps.Step` for the pipeline manager at ``manager_address``.

    Parameters
    ----------
    step : Step
        what this worker does
    manager_address : str
        the manager's status address, ``tcp://host:port``
    concurrency : int
        how many jobs run at once (in a gevent pool)
    bind_host : str
        where the jobs PULL binds; it is also the host announced to the manager
    heartbeat_interval : float
        seconds between two ``available`` events
    context : zmq.Context, optional
        a green context; defaults to agentzero's
    worker_id : str, optional
        defaults to ``<job type>-<pid>-<random>``
    orphan_timeout : float
        seconds without an answer from the manager after which the worker exits (an orphan)
    probe_interval : float
        seconds between two probes of the manager's status socket

    Raises
    ------
    ValueError
        when ``concurrency`` is below 1, or ``heartbeat_interval``, ``orphan_timeout`` or
        ``probe_interval`` is not a positive finite number.
    """

    def __init__(
        self,
        step: Step,
        manager_address: str,
        concurrency: int = 4,
        bind_host: str = "127.0.0.1",
        heartbeat_interval: float = 0.5,
        context: Any = None,
        worker_id: str | None = None,
        orphan_timeout: float = DEFAULT_ORPHAN_TIMEOUT,
        probe_interval: float = 0.5,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if not 0 < finite_seconds("heartbeat_interval", heartbeat_interval):
            raise ValueError(f"heartbeat_interval must be above 0, got {heartbeat_interval!r}")
        for name, value in (("orphan_timeout", orphan_timeout), ("probe_interval", probe_interval)):
            if not 0 < finite_seconds(name, value):
                raise ValueError(f"{name} must be above 0, got {value!r}")
        self.orphan_timeout = float(orphan_timeout)
        self.probe_interval = float(probe_interval)
        #: why the worker stopped by itself ("orphan", "manager stopping"), or None
        self.left_because: str | None = None
        self.events_address = ""
        self.step = step
        self.job_type = step.job_type
        self.manager_address = manager_address
        self.concurrency = concurrency
        self.bind_host = bind_host
        self.heartbeat_interval = heartbeat_interval
        self.worker_id = worker_id or f"{step.job_type}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.sockets = SocketManager(zmq, context or green_context)
        self.pool = gevent.pool.Pool(concurrency)
        self.address = ""
        self.done = 0
        self.errors = 0
        self.refused = 0
        self.malformed = 0
        self.busy_seconds = 0.0
        #: seconds of silence after which the manager drops a worker (it says so when asked)
        self.lease = 3.0
        #: the largest event the manager reads, in bytes (it says so when asked)
        self.max_event_size = DEFAULT_MAX_MESSAGE_SIZE
        self._pack = frame_packer(self.sockets.serialization_backend)
        self._interrupted = False
        self._last_beat = time.monotonic()
        self._refusing_until = 0.0
        self._admissions = protocol.Admissions()
        self._unannounced: dict[str, dict[str, Any]] = {}
        self._stopping = False
        self.logger = logging.getLogger(f"pipeline.worker.{self.worker_id}")

    def connect(self, timeout: float = 10.0) -> None:
        """Find the manager, bind the jobs socket and connect the events socket.

        Raises
        ------
        ManagerUnreachable
            when the manager does not answer within ``timeout`` seconds.
        """
        addresses = ask_manager(self.sockets, self.manager_address, {"command": "addresses"}, timeout)
        settings = ask_manager(self.sockets, self.manager_address, {"command": "settings"}, timeout)
        if not isinstance(addresses, dict) or not isinstance(addresses.get("events"), str):
            raise ManagerUnreachable(f"{self.manager_address} answered {addresses!r}, not its addresses")
        if not isinstance(settings, dict):
            settings = {}
        lease, limit = settings.get("heartbeat_timeout"), settings.get("max_message_size")
        if isinstance(lease, (int, float)) and not isinstance(lease, bool) and 0 < lease < 3600:
            self.lease = float(lease)
        if type(limit) is int and limit > 0:
            self.max_event_size = limit
        self.sockets.create("jobs", zmq.PULL)
        _, self.address = self.sockets.bind_to_random_port(
            "jobs", zmq.POLLIN, local_address=f"tcp://{self.bind_host}"
        )
        self.events_address = addresses["events"]
        self.sockets.ensure_and_connect("events", zmq.PUB, self.events_address, zmq.POLLOUT)
        self.logger = self.sockets.get_logger(
            "events", topic_name=protocol.LOGS, logger_name=self.logger.name
        )
        self.logger.propagate = False

    def run(self) -> None:
        """Heartbeat and work until :meth:`stop` or :meth:`interrupt` is called.

        A ``KeyboardInterrupt`` raised inside a step is that job's error, like
        any other exception: to stop on Ctrl-C, call :meth:`interrupt` from a
        SIGINT handler, ``gevent.signal_handler(signal.SIGINT, worker.interrupt)``,
        as the command line does.
        """
        self._last_beat = time.monotonic()
        beating = gevent.spawn(self._heartbeat)
        probing = gevent.spawn(self._probe_manager)
        self.logger.info("%s worker %s pulling jobs on %s", self.job_type, self.worker_id, self.address)
        try:
            while not self._stopping:
                if self.pool.full():
                    self.pool.wait_available(timeout=0.5)
                    continue
                try:
                    dispatch = self.sockets.recv_safe("jobs", timeout=0.2)
                except DeserializationError as error:
                    self.malformed += 1
                    self.logger.error("dropped an unreadable dispatch: %s", error)
                    continue
                if dispatch is not None:
                    self._take(dispatch)
        finally:
            if self._interrupted:
                self.pool.kill(timeout=1)
            self.pool.join(timeout=5)
            self._publish_available(leaving=True)
            beating.kill()
            probing.kill()

    def stop(self) -> None:
        """Finish the running jobs, tell the manager this worker leaves, and stop."""
        self._stopping = True

    def interrupt(self) -> None:
        """Stop now (Ctrl-C): end the running jobs unfinished and leave; the manager sends them again.

        Steps are idempotent (see :doc:`/steps`), so running such a job again
        elsewhere is safe. The command line calls this on SIGINT. A step that
        never yields to gevent (pure computation) ends only when it returns.
        """
        self._stopping = self._interrupted = True
        self.pool.kill(block=False)

    def close(self) -> None:
        """Close the sockets, giving the last events half a second to leave."""
        self.sockets.close_all(linger=500)

    def _woke_from_freeze(self, now: float) -> bool:
        """True while dispatches must be refused: this process was frozen past its lease."""
        frozen = now - self._last_beat
        if frozen > self.lease:
            self._refusing_until = now + REFUSE_AFTER_FREEZE
            self._last_beat = now
            self.logger.warning("woke after %.1fs frozen: refusing old dispatches for a moment", frozen)
        return now < self._refusing_until

    def _heartbeat(self) -> None:
        while True:
            self._woke_from_freeze(time.monotonic())
            self._last_beat = time.monotonic()
            self._publish_available()
            self._announce_started()
            self.sockets.publish_safe(
                "events",
                protocol.METRIC,
                {
                    "worker_id": self.worker_id,
                    "job_type": self.job_type,
                    "done": self.done,
                    "errors": self.errors,
                    "busy_seconds": round(self.busy_seconds, 6),
                },
            )
            gevent.sleep(self.heartbeat_interval)

    def _publish_available(self, leaving: bool = False) -> None:
        self.sockets.publish_safe(
            "events",
            protocol.AVAILABLE,
            {
                "worker_id": self.worker_id,
                "job_type": self.job_type,
                "address": self.address,
                "concurrency": self.concurrency,
                "running": len(self.pool),
                "pid": os.getpid(),
                "leaving": leaving,
            },
        )

    def _take(self, dispatch: Any) -> None:
        """Check a dispatch, then run it in the pool, or refuse it after a freeze."""
        job_id = dispatch.get("job_id") if type(dispatch) is dict else None
        token = dispatch.get("token") if job_id is not None else None
        attempt = dispatch.get("attempt") if job_id is not None else None
        if not (
            is_clean_text(job_id)
            and type(token) is str
            and len(token) == 2 * TOKEN_BYTES
            and type(attempt) is int
            and attempt >= 1
        ):
            self.malformed += 1
            self.logger.error("dropped a malformed dispatch: %.200r", dispatch)
            return
        if self._stopping:
            return  # held for this worker: the manager sends it again when this worker leaves
        header = {"job_id": job_id, "token": token, "worker_id": self.worker_id, "job_type": self.job_type}
        if self._woke_from_freeze(time.monotonic()) or self._admissions.outdated(dispatch):
            self.refused += 1
            self.sockets.publish_safe("events", protocol.JOB_REFUSED, header)
            return
        self.pool.spawn(self._run_job, header, Job(job_id, attempt), dispatch.get("data"))

    def _announce_started(self) -> None:
        """Publish ``job:started`` for the jobs running since the last heartbeat.

        Jobs that end before the next heartbeat are never announced: their result
        says it all, and the manager reads one event less per job.
        """
        for header in self._unannounced.values():
            self.sockets.publish_safe("events", protocol.JOB_STARTED, header)
        self._unannounced.clear()

    def _run_job(self, header: dict[str, Any], job: Job, data: Any) -> None:
        token = header["token"]
        self._unannounced[token] = header
        started = time.perf_counter()
        try:
            topic, outcome = self._outcome(job, data)
            self._report(header, topic, outcome, job)
        finally:
            self._unannounced.pop(token, None)
            self.busy_seconds += time.perf_counter() - started

    def _outcome(self, job: Job, data: Any) -> tuple[str, dict[str, Any]]:
        """Run the step for ``job``; return the topic and the fields of the event that says how it went."""
        try:
            delay = data.get("delay") if isinstance(data, dict) else None
            if isinstance(delay, (int, float)) and 0 < delay < 3600:  # simulated work, cooperative
                gevent.sleep(delay)
            result = self.step.process(data if isinstance(data, dict) else {"value": data}, job)
        except gevent.GreenletExit:
            raise  # interrupted: no outcome; the manager sends the job again
        except JobFailed as failure:
            return protocol.JOB_FAILED, {"reason": excerpt(_text_of(failure), MAX_REASON_CHARS)}
        except BaseException as error:  # SystemExit, KeyboardInterrupt...: the job's error, not the worker's
            # the log handler sends its arguments too: only a bounded excerpt
            said = excerpt(f"{type(error).__name__}: {_text_of(error)}", 300)
            self.logger.warning("job %s raised %s on attempt %d", job.id, said, job.attempt)
            described = serialized_exception(error)
            described["traceback"] = excerpt(described["traceback"], MAX_TRACEBACK_CHARS)
            return protocol.JOB_ERROR, {"error": described}
        return protocol.JOB_SUCCESS, {"result": result}

    def _report(self, header: dict[str, Any], topic: str, outcome: dict[str, Any], job: Job) -> None:
        """Publish a job's outcome, or an error of the job when the manager could not read it.

        An outcome that cannot be serialized, or whose event is larger than the
        manager's ``max_message_size``, becomes a ``job:error`` (retried by the
        manager like any error) instead of an event the manager would drop.
        """
        try:
            size = len(topic.encode()) + len(self._pack({**header, **outcome}))
        except SerializationError as error:
            topic, outcome = protocol.JOB_ERROR, {"error": serialized_exception(error)}
        else:
            if size > self.max_event_size:
                what = "result" if topic == protocol.JOB_SUCCESS else "error"
                problem = ReportTooLarge(job.id, what, size, self.max_event_size)
                self.logger.error("%s", problem)
                topic, outcome = protocol.JOB_ERROR, {"error": serialized_exception(problem)}
        if topic == protocol.JOB_SUCCESS:
            self.done += 1
        else:
            self.errors += 1
        self.sockets.publish_safe("events", topic, {**header, **outcome})


def _text_of(error: BaseException) -> str:
    """``str(error)``, or a note that it failed when the exception's ``__str__`` raises."""
    try:
        return str(error)
    except Exception:
        return f"<{type(error).__name__} whose str() failed>"
