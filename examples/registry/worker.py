"""The worker runtime: answers availability, runs assigned jobs, reports their status and its load."""

from __future__ import annotations

import logging
from typing import Any, Callable

import gevent

from examples.registry.connection import BackendConnection
from examples.registry.protocol import (
    AvailabilityRequest,
    AvailabilityResponse,
    JobAssignment,
    JobStatus,
    JobTermination,
    JobUpdate,
    WorkerMessage,
    WorkerStatus,
)

log = logging.getLogger("registry.worker")


def sleep_job(assignment: JobAssignment) -> None:
    """The default job: wait ``metadata["seconds"]`` (cooperatively); fail when asked to."""
    metadata = assignment.metadata or {}
    gevent.sleep(float(metadata.get("seconds", 0.05)))
    if metadata.get("fail"):
        raise RuntimeError(f"job {assignment.job_id} failed on purpose")


class WorkerRuntime:
    """Run assigned jobs (``job(assignment)``) up to ``max_processes`` at once.

    ``accept`` decides availability beyond the limits (a policy; the default accepts).
    """

    def __init__(
        self,
        connection: BackendConnection,
        job: Callable[[JobAssignment], Any] = sleep_job,
        accept: Callable[[AvailabilityRequest], bool] = lambda request: True,
    ) -> None:
        self.connection = connection
        self.job = job
        self.accept = accept
        self.running: dict[str, gevent.Greenlet] = {}
        self.peak = 0
        self.finished: dict[str, str] = {}
        connection.on_availability(self._on_availability)
        connection.on_assignment(self._on_assignment)
        connection.on_termination(self._on_termination)

    @property
    def load(self) -> float:
        return len(self.running) / self.connection.max_processes

    def _available(self) -> bool:
        limits = self.connection
        return len(self.running) < limits.max_processes and self.load < limits.load_threshold

    def _on_availability(self, request: AvailabilityRequest) -> None:
        available = self._available() and self.accept(request)
        self.connection.send_message(AvailabilityResponse(job_id=request.job_id, available=available))

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
        try:
            self.connection.send_message(update)
        except RuntimeError:
            log.warning("not connected: job update %s lost", update)

    def _report_load(self) -> None:
        status = WorkerStatus.BUSY.value if self.running else WorkerStatus.IDLE.value
        message = WorkerMessage(
            type="status_update",
            worker_id=self.connection.worker_id,
            status=status,
            load=self.load,
            job_count=len(self.running),
        )
        try:
            self.connection.send_message(message)
        except RuntimeError:
            pass
