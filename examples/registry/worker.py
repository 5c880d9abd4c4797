"""The worker runtime: answers availability, runs assigned jobs, reports their status and its load."""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

import gevent

from examples.registry.connection import BackendConnection
from examples.registry.inbound import AVAILABLE, DRAINING
from examples.registry.protocol import (
    AvailabilityRequest,
    AvailabilityResponse,
    JobAssignment,
    JobStatus,
    JobTermination,
    JobUpdate,
    WorkerMessage,
)

log = logging.getLogger("registry.worker")


def sleep_job(assignment: JobAssignment) -> None:
    """The default job: wait ``metadata["seconds"]`` (cooperatively); fail when asked to."""
    metadata = assignment.metadata or {}
    gevent.sleep(float(metadata.get("seconds", 0.05)))
    if metadata.get("fail"):
        raise RuntimeError(f"job {assignment.job_id} failed on purpose")


#: how often a worker sends its status even when nothing changed, in seconds (upstream: 30)
STATUS_INTERVAL = 30.0
#: upstream's reason for refusing a job at capacity
AT_CAPACITY = "Worker at capacity or draining"


class WorkerRuntime:
    """Run assigned jobs (``job(assignment)``) up to ``max_processes`` at once.

    As upstream's worker does, it reports ``status_update`` (``available``, or
    ``draining`` after :meth:`drain`, with its ``agent_name``, ``load`` and
    ``job_count``) whenever its jobs change and every ``status_interval``
    seconds; it accepts an availability request with its auth ``token`` and
    refuses one with an ``error`` saying why.

    Parameters
    ----------
    connection : BackendConnection
        the link to the registry
    job : callable
        runs one assignment; raising fails the job
    accept : callable
        decides availability beyond the limits (a policy; the default accepts)
    status_interval : float
        seconds between two periodic status updates

    Raises
    ------
    ValueError
        when ``status_interval`` is not a finite positive number.
    """

    def __init__(
        self,
        connection: BackendConnection,
        job: Callable[[JobAssignment], Any] = sleep_job,
        accept: Callable[[AvailabilityRequest], bool] = lambda request: True,
        status_interval: float = STATUS_INTERVAL,
    ) -> None:
        if not (isinstance(status_interval, (int, float)) and 0 < status_interval < float("inf")):
            raise ValueError(
                f"status_interval must be a finite positive number of seconds, got {status_interval!r}"
            )
        self.connection = connection
        self.job = job
        self.accept = accept
        self.status_interval = status_interval
        self.draining = False
        self.running: dict[str, gevent.Greenlet] = {}
        self.peak = 0
        self.finished: dict[str, str] = {}
        connection.on_availability(self._on_availability)
        connection.on_assignment(self._on_assignment)
        connection.on_termination(self._on_termination)
        self._status_loop = gevent.spawn(self._report_periodically)

    @property
    def load(self) -> float:
        return min(len(self.running) / self.connection.max_processes, 1.0)

    def drain(self) -> None:
        """Take no more jobs; the running ones finish. The registry is told at once."""
        self.draining = True
        self._report_load()

    def stop(self) -> None:
        """Stop the periodic status updates (the connection is the caller's to close)."""
        self._status_loop.kill(block=False)

    def _refusal(self, request: AvailabilityRequest) -> Optional[str]:
        limits = self.connection
        if self.draining or len(self.running) >= limits.max_processes or self.load >= limits.load_threshold:
            return AT_CAPACITY
        if not self.accept(request):
            return "Job refused by the worker's policy"
        return None

    def _on_availability(self, request: AvailabilityRequest) -> None:
        refusal = self._refusal(request)
        if refusal is None:
            response = AvailabilityResponse(
                job_id=request.job_id, available=True, token=self.connection.auth_token
            )
        else:
            response = AvailabilityResponse(job_id=request.job_id, available=False, error=refusal)
        self.connection.send_message(response)

    def _on_assignment(self, assignment: JobAssignment) -> None:
        if assignment.job_id in self.running:
            return
        self.running[assignment.job_id] = gevent.spawn(self._run, assignment)
        self.peak = max(self.peak, len(self.running))
        self._report_load()

    def _on_termination(self, termination: JobTermination) -> None:
        greenlet = self.running.get(termination.job_id)
        if greenlet is not None:
            greenlet.kill(block=False)

    def _run(self, assignment: JobAssignment) -> None:
        job_id = assignment.job_id
        status, error = JobStatus.COMPLETED.value, None
        try:
            self._update(JobUpdate(job_id=job_id, status=JobStatus.RUNNING.value))
            self.job(assignment)
        except gevent.GreenletExit:
            status = JobStatus.CANCELLED.value
        except Exception as failure:
            status, error = JobStatus.FAILED.value, f"{type(failure).__name__}: {failure}"
        finally:
            self.running.pop(job_id, None)
            self.finished[job_id] = status
            self._update(JobUpdate(job_id=job_id, status=status, error=error))
            self._report_load()

    def _update(self, update: JobUpdate) -> None:
        if update.error is not None:  # a job's own error text may hold what strict JSON refuses
            update.error = update.error.encode("utf-8", "backslashreplace").decode("utf-8")
        try:
            self.connection.send_message(update)
        except RuntimeError:
            log.warning("not connected: job update %s lost", update)

    def status_message(self) -> WorkerMessage:
        """The ``status_update`` this worker sends now (upstream's shape)."""
        return WorkerMessage(
            type="status_update",
            worker_id=self.connection.worker_id,
            agent_name=self.connection.agent_id,
            status=DRAINING if self.draining else AVAILABLE,
            load=self.load,
            job_count=len(self.running),
        )

    def _report_load(self) -> None:
        if self.connection.is_connected:
            try:
                self.connection.send_message(self.status_message())
            except RuntimeError:
                pass

    def _report_periodically(self) -> None:
        while True:
            gevent.sleep(self.status_interval)
            self._report_load()
