"""The registry's jobs: answers about them, who gets which, what happens when they finish or a worker is lost.

:class:`JobFlow` is the part of :class:`~examples.registry.registry.Registry`
that moves jobs: it asks a worker that can take a job whether it will
(``availability_request``), assigns it on a yes, asks another on a no or no
answer, follows the worker's ``job_update`` messages to the end, and re-queues
a lost worker's jobs. Of the finished jobs (completed, failed, cancelled), only
the ``max_finished_jobs`` that finished last stay in ``jobs``, so a long-running
registry's memory stays flat; a message about a job pruned since is a message
about an unknown job (counted in ``skipped``).
"""

from __future__ import annotations

import collections
import time
import uuid
from typing import Any, Dict, Optional

from examples.registry.protocol import AvailabilityRequest, AvailabilityResponse, JobAssignment, JobUpdate
from examples.registry.state import (
    ASSIGNING,
    COMPLETED,
    FAILED,
    FINAL,
    OFFLINE,
    PENDING,
    RUNNING,
    JobState,
    WorkerState,
)
from examples.registry.throttle import DEBUG, WARNING, ThrottledLog


class JobFlow:
    """What the registry does with jobs; a mixin of :class:`~examples.registry.registry.Registry`."""

    jobs: Dict[str, JobState]
    workers: Dict[str, WorkerState]
    notes: ThrottledLog
    availability_timeout: float
    max_finished_jobs: int
    skipped: int
    stale: int
    pruned: int
    _pending: collections.deque[str]
    _finished: collections.deque[str]

    def _send(self, worker: WorkerState, data: dict) -> None:
        raise NotImplementedError

    def _job_of(self, worker: WorkerState, message: Any) -> Optional[JobState]:
        job = self.jobs.get(message.job_id)
        if job is None:
            self.skipped += 1  # never submitted, or finished and pruned
            self.notes.log(
                WARNING,
                worker.identity,
                "skipped",
                "skipped a %s from %s for unknown job %r",
                message.type,
                worker.worker_id,
                message.job_id,
            )
            return None
        if job.worker_id != worker.worker_id:
            self.stale += 1  # a late answer about a job that moved on, or another worker's job
            self.notes.log(
                DEBUG,
                worker.identity,
                "stale",
                "ignored a %s from %s about job %s, not its job",
                message.type,
                worker.worker_id,
                job.job_id,
            )
            return None
        return job

    def _availability_response(self, worker: WorkerState, message: AvailabilityResponse) -> None:
        job = self._job_of(worker, message)
        if job is None:
            return
        if job.status != ASSIGNING or job.job_id not in worker.asking:
            self.stale += 1
            self.notes.log(
                DEBUG,
                worker.identity,
                "stale",
                "ignored a late availability_response from %s for job %s",
                worker.worker_id,
                job.job_id,
            )
            return
        worker.asking.discard(job.job_id)
        if message.available:
            self._assign(worker, job)
        else:
            self.notes.log(
                DEBUG,
                worker.identity,
                "refused jobs",
                "worker %s refused job %s: %s",
                worker.worker_id,
                job.job_id,
                message.error,
            )
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
            self._finish(job)
        elif status == "error":
            job.error = message.error

    def _finish(self, job: JobState) -> None:
        """Keep the finished ``job``, and drop the one that finished first when that is too many."""
        finished = self._finished
        finished.append(job.job_id)
        if len(finished) > self.max_finished_jobs:
            del self.jobs[finished.popleft()]
            self.pruned += 1

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

    def _check_requests(self, now: float) -> None:
        for worker in self.workers.values():
            for job_id in list(worker.asking):
                job = self.jobs[job_id]
                if now - job.asked_at > self.availability_timeout:
                    worker.asking.discard(job_id)
                    self._requeue(job, tried=worker.worker_id)

    def _lose(self, worker: WorkerState, why: str) -> None:
        worker.status = OFFLINE
        self.notes.log(WARNING, worker.identity, "offline", "worker %s offline: %s", worker.worker_id, why)
        for job_id in list(worker.running) + list(worker.asking):
            self._requeue(self.jobs[job_id], lost=True)
        worker.running.clear()
        worker.asking.clear()
