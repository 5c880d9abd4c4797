"""The pipeline manager: takes jobs in, routes them through their steps, survives lost workers.

Sockets (all named, all in one SocketManager, polled together by ``engage()``):

- ``pipe-sub`` SUB, bound: heartbeats, job events, metrics and logs of every step worker;
- ``jobs-in`` PULL, bound: jobs submitted by clients;
- ``pipe-status`` REP, bound: job status, statistics and the manager's addresses;
- ``pipe-watch`` PUB, bound: job events and progress, for ``agentzero tail``
  (:mod:`agentzero.pipeline.watch`);
- ``push:<worker id>`` PUSH, one per worker, connected to the worker's PULL, so the
  manager knows which worker holds each job; its ``socket_events`` report the
  connection dropping (a killed worker) within a moment.

The manager accepts exactly one result per job and step: each dispatch carries
a fresh random token, cleared once its result is accepted
(:mod:`agentzero.pipeline.results`). Workers are handled in
:mod:`agentzero.pipeline.roster`.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from typing import Any, Callable

import gevent

from agentzero.core import SocketManager
from agentzero.errors import DeserializationError, MessageTooLarge
from agentzero.pipeline import protocol
from agentzero.pipeline.builtin_steps import PIPELINES
from agentzero.pipeline.desk import Desk
from agentzero.pipeline.protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    FINAL_STATES,
    BadMessage,
    finite_seconds,
)
from agentzero.pipeline.records import JobRecord
from agentzero.pipeline.results import Results
from agentzero.pipeline.roster import Roster
from agentzero.pipeline.watch import WATCH, Watch
from agentzero.zero import context as green_context
from agentzero.zero import zmq

log = logging.getLogger("pipeline.manager")


class PipelineManager(Results, Roster, Watch, Desk):
    """Receive jobs, dispatch each step to a live worker of its type, and keep score.

    Parameters
    ----------
    bind_host : str
        the interface every socket binds to (loopback by default)
    status_port : int
        the port of the status socket, the manager's front door; 0 picks a free one
    pipelines : dict, optional
        pipeline name -> ordered job types; defaults to the built-in pipelines
    max_attempts : int
        how often a step that raises is tried before the job fails
    heartbeat_timeout : float
        seconds without an ``available`` event after which a worker counts as lost
    dispatch_timeout : float
        seconds a dispatched job may wait to start before it is sent again
    max_redispatches : int
        how many lost workers a job survives before it fails
    max_message_size : int
        the largest event, job or request read, in bytes; larger ones are dropped and counted
    max_workers : int
        how many workers may be taken in at once; more ``available`` events are dropped and
        counted (each worker costs two sockets)
    context : zmq.Context, optional
        a green context; defaults to agentzero's
    progress_interval : float
        seconds between two progress lines (logged, and published on ``pipe-watch``)
    farewell : float
        at most how many seconds :meth:`stop` keeps answering, so that every
        worker hears the manager stops (and exits) before the manager is gone
    journal : str or path, optional
        the SQLite journal to write every job to, and to resume from (see
        :meth:`open_journal`); none by default

    Raises
    ------
    ValueError
        when a number is out of range (a timeout negative, infinite or NaN).
    agentzero.pipeline.journal.JournalError
        when ``journal`` is not a usable journal file (it is left as it was).
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
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_workers: int = 1000,
        context: Any = None,
        progress_interval: float = 5.0,
        farewell: float = 2.0,
        journal: str | os.PathLike[str] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if max_redispatches < 0:
            raise ValueError(f"max_redispatches must be >= 0, got {max_redispatches}")
        if max_message_size < 1:
            raise ValueError(f"max_message_size must be >= 1, got {max_message_size}")
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.bind_host = bind_host
        self.status_port = status_port
        self.pipelines = dict(pipelines or PIPELINES)
        self.job_types = {job_type for steps in self.pipelines.values() for job_type in steps}
        self.max_attempts = max_attempts
        self.heartbeat_timeout = finite_seconds("heartbeat_timeout", heartbeat_timeout)
        self.dispatch_timeout = finite_seconds("dispatch_timeout", dispatch_timeout)
        self.max_redispatches = max_redispatches
        self.max_message_size = max_message_size
        self.max_workers = max_workers
        self.progress_interval = finite_seconds("progress_interval", progress_interval)
        self.farewell = finite_seconds("farewell", farewell)
        #: set while :meth:`stop` tells the workers; the worker ids told so far
        self.stopping = False
        self._told: set[str] = set()
        self._probers: set[str] = set()
        self.sockets = SocketManager(zmq, context or green_context)
        self.addresses: dict[str, str] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.rejected: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        self.rejected_count = 0
        self.logs: collections.deque[str] = collections.deque(maxlen=200)
        self.stale_events = 0
        #: problem kind -> how many events or requests were dropped for it
        self.bad_messages: collections.Counter[str] = collections.Counter()
        self.completed_per_step: collections.Counter[str] = collections.Counter()
        self.first_dispatch: dict[str, float] = {}
        self.last_done: dict[str, float] = {}
        self._pending: dict[str, collections.deque[str]] = collections.defaultdict(collections.deque)
        self._loop: gevent.Greenlet | None = None
        self._running = False
        self._next_check = 0.0
        self.started_at = time.monotonic()
        Roster.__init__(self)
        Watch.__init__(self)
        Desk.__init__(self)
        if journal is not None:
            self.open_journal(journal)
        self._event_handlers: dict[bytes, Callable[[bytes, Any], None]] = {
            protocol.AVAILABLE.encode(): self._worker_seen,
            protocol.METRIC.encode(): self._metric,
            protocol.LOGS.encode(): self._log_line,
            **{topic.encode(): self._job_event for topic in protocol.JOB_EVENTS},
        }

    # -- life cycle -----------------------------------------------------------------------

    def bind(self) -> dict[str, str]:
        """Bind the three inbound sockets and return their addresses."""
        host = f"tcp://{self.bind_host}"
        self.sockets.ensure_and_bind("pipe-status", zmq.REP, f"{host}:{self.status_port or '*'}", zmq.POLLIN)
        for name, kind in (("pipe-sub", zmq.SUB), ("jobs-in", zmq.PULL)):
            self.sockets.create(name, kind)
            self.sockets.bind_to_random_port(name, zmq.POLLIN, local_address=host)
        self.sockets.set_topic("pipe-sub", "")
        self.sockets.create(WATCH, zmq.PUB)
        self.sockets.bind_to_random_port(WATCH, 0, local_address=host)  # written to, never polled
        for name in ("pipe-status", "pipe-sub", "jobs-in"):
            # libzmq drops a peer sending 4x the limit; between the two, the message is
            # read, counted and logged as too large
            self.sockets.set_socket_option(name, zmq.MAXMSGSIZE, 4 * self.max_message_size)
            self.sockets.get_record(name).max_size = self.max_message_size
        self.addresses = {
            "status": self.sockets.addresses["pipe-status"],
            "events": self.sockets.addresses["pipe-sub"],
            "jobs": self.sockets.addresses["jobs-in"],
            "watch": self.sockets.addresses[WATCH],
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
        """The manager's loop: wait on every inbound socket at once, handle what is ready.

        Events are handled before connection losses, so results a lost worker
        sent before it died are counted before its jobs are sent again.
        """
        if not self.addresses:
            self.bind()
        self._running = True
        events = self.sockets.sockets["pipe-sub"]
        jobs_in = self.sockets.sockets["jobs-in"]
        status = self.sockets.sockets["pipe-status"]
        while self._running:
            ready = self.sockets.engage(timeout=100)
            try:
                if events in ready:
                    self._drain_events()
                if jobs_in in ready:
                    self._drain_jobs()
                if status in ready:
                    self._answer_status()
                now = time.monotonic()
                if now >= self._next_check:
                    self._next_check = now + 0.1
                    self._check_workers(now)
                    self._maybe_report_progress(now)
                if self.journal is not None:
                    self.journal.commit_due(now)  # before any dispatch that follows from it
                if not self.stopping:
                    self._dispatch()
            except Exception:  # a bug must not stop the manager: say so loudly, keep serving
                self.bad_messages["internal error"] += 1
                log.exception("the manager's loop hit an unexpected error; it goes on")

    def stop(self) -> None:
        """Tell the workers the manager stops, stop the loop and close every socket.

        For up to :attr:`farewell` seconds, or until every worker that probes
        has asked, the manager answers its workers' probes with ``stopping``:
        they exit instead of waiting for it as orphans (see
        :class:`~agentzero.pipeline.worker.StepWorker`).
        """
        if self._running and self.workers and self.farewell > 0 and not self.stopping:
            self.stopping = True
            log.info("stopping: telling %d worker(s)", len(self.workers))
            deadline = time.monotonic() + self.farewell
            while time.monotonic() < deadline and not (set(self.workers) & self._probers) <= self._told:
                gevent.sleep(0.05)
        self._running = False
        if self._loop is not None:
            self._loop.join(timeout=2)
            self._loop.kill()
        for worker in self.workers.values():
            self._close_sockets_of(worker)
        self.sockets.close_all(linger=0)
        if self.journal is not None:
            self.journal.close()
            self.journal = None

    # -- waiting ------------------------------------------------------------------------------

    def done(self) -> bool:
        """True when every accepted job reached a final state."""
        return all(job.state in FINAL_STATES for job in self.jobs.values())

    def wait(self, count: int, timeout: float, on_tick: Callable[[], None] | None = None) -> bool:
        """Wait until ``count`` jobs are final (or rejected); return False on time-out.

        Raises
        ------
        ValueError
            when ``timeout`` is negative, infinite or NaN.
        """
        deadline = time.monotonic() + finite_seconds("timeout", timeout)
        while time.monotonic() < deadline:
            if on_tick is not None:
                on_tick()
            if len(self.jobs) + self.rejected_count >= count and self.done():
                return True
            gevent.sleep(0.05)
        return False

    # -- inbound sockets ---------------------------------------------------------------------

    def _bad(self, kind: str, detail: str) -> None:
        """Count a dropped event or request and log it once."""
        self.bad_messages[kind] += 1
        log.warning("dropped a message (%s): %s", kind, detail)

    def _drain_events(self) -> None:
        recv_event = self.sockets.recv_event_safe
        handlers = self._event_handlers
        for _ in range(1000):
            try:
                event = recv_event("pipe-sub", timeout=0)
            except MessageTooLarge as error:
                self._bad("oversized event", f"{error.size} bytes, the limit is {error.limit}")
                continue
            except DeserializationError as error:
                self._bad("unreadable event", error.reason)
                continue
            if event is None:
                return
            handler = handlers.get(event.topic)
            if handler is None:
                self._bad("unknown topic", repr(event.topic[:80]))
                continue
            try:
                handler(event.topic, event.data)
            except BadMessage as problem:
                self._bad(problem.kind, f"{event.topic.decode('utf-8', 'replace')}: {problem.detail}")
