"""A step worker: pulls jobs of one type, runs them in a gevent pool, publishes what happens.

Sockets (all named, all in one SocketManager):

- ``manager`` REQ, connected to the manager's status socket, asked once for its addresses;
- ``jobs`` PULL, bound to a random port; the manager's PUSH for this job type connects to it;
- ``events`` PUB, connected to the manager's SUB: heartbeats, job events, metrics and logs.
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
from agentzero.errors import DeserializationError
from agentzero.util import serialized_exception
from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.pipeline import protocol
from examples.pipeline.steps import JobFailed, Step


class ManagerUnreachable(RuntimeError):
    """The manager did not answer within the time given."""


def ask_manager(sockets: SocketManager, address: str, request: dict, timeout: float) -> Any:
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


class StepWorker:
    """Run one :class:`Step` for the pipeline manager at ``manager_address``.

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
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
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
        self.busy_seconds = 0.0
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
        self.sockets.close("manager", linger=0)
        self.sockets.create("jobs", zmq.PULL)
        _, self.address = self.sockets.bind_to_random_port(
            "jobs", zmq.POLLIN, local_address=f"tcp://{self.bind_host}"
        )
        self.sockets.ensure_and_connect("events", zmq.PUB, addresses["events"], zmq.POLLOUT)
        self.logger = self.sockets.get_logger(
            "events", topic_name=protocol.LOGS, logger_name=self.logger.name
        )
        self.logger.propagate = False

    def run(self) -> None:
        """Heartbeat and work until :meth:`stop` is called."""
        beating = gevent.spawn(self._heartbeat)
        self.logger.info("%s worker %s pulling jobs on %s", self.job_type, self.worker_id, self.address)
        try:
            while not self._stopping:
                if self.pool.full():
                    self.pool.wait_available(timeout=0.5)
                    continue
                try:
                    job = self.sockets.recv_safe("jobs", timeout=0.2)
                except DeserializationError as error:
                    self.logger.error("dropped an unreadable dispatch: %s", error)
                    continue
                if job is not None:
                    self.pool.spawn(self._run_job, job)
        finally:
            self.pool.join(timeout=5)
            self._publish_available(leaving=True)
            beating.kill()

    def stop(self) -> None:
        """Finish the running jobs, tell the manager this worker leaves, and stop."""
        self._stopping = True

    def close(self) -> None:
        self.sockets.close_all(linger=500)

    def _heartbeat(self) -> None:
        while True:
            self._publish_available()
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

    def _run_job(self, dispatch: dict) -> None:
        try:
            job_id, token, attempt = dispatch["job_id"], dispatch["token"], int(dispatch["attempt"])
            data = dispatch.get("data") or {}
        except (KeyError, TypeError, ValueError) as error:
            self.logger.error("dropped a malformed dispatch %r: %s", dispatch, error)
            return
        header = {"job_id": job_id, "token": token, "worker_id": self.worker_id, "job_type": self.job_type}
        self.sockets.publish_safe("events", protocol.JOB_STARTED, header)
        started = time.perf_counter()
        try:
            delay = float(data.get("delay") or 0)  # simulated work, cooperative
            if delay > 0:
                gevent.sleep(delay)
            result = self.step.process(data, attempt)
        except JobFailed as failure:
            self.errors += 1
            self.sockets.publish_safe("events", protocol.JOB_FAILED, {**header, "reason": str(failure)})
        except Exception as error:
            self.errors += 1
            self.logger.warning("job %s raised %r on attempt %d", job_id, error, attempt)
            self.sockets.publish_safe(
                "events", protocol.JOB_ERROR, {**header, "error": serialized_exception(error)}
            )
        else:
            self.done += 1
            self.sockets.publish_safe("events", protocol.JOB_SUCCESS, {**header, "result": result})
        finally:
            self.busy_seconds += time.perf_counter() - started
