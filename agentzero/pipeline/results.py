"""What the step workers' events do to the jobs: each dispatch's one result accepted, then the job goes on."""

from __future__ import annotations

import collections
import time
from typing import TYPE_CHECKING, Any

from agentzero.pipeline import protocol
from agentzero.pipeline.journal import Journal
from agentzero.pipeline.protocol import (
    COMPLETED,
    DISPATCHED,
    FAILED,
    MAX_REASON_CHARS,
    QUEUED,
    RUNNING,
    BadMessage,
    check_job_event,
)
from agentzero.pipeline.records import JobRecord, WorkerRecord


class Results:
    """The results half of :class:`~agentzero.pipeline.manager.PipelineManager`."""

    # set by the manager
    jobs: dict[str, JobRecord]
    workers: dict[str, WorkerRecord]
    former_workers: collections.OrderedDict[str, float]
    journal: Journal | None
    logs: collections.deque[str]
    stale_events: int
    completed_per_step: collections.Counter[str]
    last_done: dict[str, float]
    max_attempts: int
    max_redispatches: int
    _pending: dict[str, collections.deque[str]]

    if TYPE_CHECKING:  # Watch's, after this class in the manager's bases: a stub here would hide it

        def _watch_event(self, topic: str, job: JobRecord, **extra: Any) -> None: ...

    def _metric(self, topic: bytes, data: Any) -> None:
        worker_id, done = protocol.check_metric(data)
        worker = self.workers.get(worker_id)
        if worker is not None:
            worker.done = done

    def _log_line(self, topic: bytes, data: Any) -> None:
        self.logs.append(protocol.check_log(data))

    def _job_event(self, topic: bytes, data: Any) -> None:
        job_id, token, worker_id = check_job_event(data)
        worker = self.workers.get(worker_id)
        job = self.jobs.get(job_id)
        if worker is None:
            if worker_id in self.former_workers:  # a late result of a worker that was dropped
                self.stale_events += 1
                return
            raise BadMessage("unknown worker", f"{worker_id!r} never announced itself")
        if job is None or job.token != token or job.worker_id != worker_id:
            self.stale_events += 1  # a late or duplicate result, or a guess
            return
        if topic == b"job:started":
            if job.state == DISPATCHED:
                job.state = RUNNING
            return
        # the one result of this dispatch: later ones with the same token are stale
        job.token = None
        worker.held.discard(job_id)
        if topic == b"job:success":
            self._step_succeeded(job, worker_id, data.get("result"))
        elif topic == b"job:failed":
            reason = data.get("reason")
            reason = (reason if isinstance(reason, str) else repr(reason))[:MAX_REASON_CHARS]
            self._finish(job, FAILED, error={"reason": reason, "step": job.job_type})
        elif topic == b"job:error":
            error = data.get("error")
            self._step_errored(job, error if isinstance(error, dict) else {"error": repr(error)[:2000]})
        else:  # job:refused: the worker did not run it (it was frozen); not the job's fault
            job.attempts -= 1
            self._queue(job, first=True)

    def _step_succeeded(self, job: JobRecord, worker_id: str, result: Any) -> None:
        step = job.job_type
        job.passed.append((step, worker_id))
        self.completed_per_step[step] += 1
        self.last_done[step] = time.monotonic()
        if job.step_index + 1 >= len(job.steps):
            self._finish(job, COMPLETED, result=result)
            return
        job.step_index += 1
        job.attempts = 0
        job.data = result if isinstance(result, dict) else {"value": result}
        self._queue(job)

    def _step_errored(self, job: JobRecord, error: dict[str, Any]) -> None:
        if job.attempts >= self.max_attempts:
            self._finish(job, FAILED, error={**error, "step": job.job_type, "attempts": job.attempts})
            return
        job.retries += 1
        self._queue(job)

    def _finish(self, job: JobRecord, state: str, result: Any = None, error: Any = None) -> None:
        job.state, job.result, job.error = state, result, error
        if self.journal is not None:
            self.journal.save(job)
        job.finished_at = time.monotonic()
        job.token = job.worker_id = None
        if state == FAILED:
            self._watch_event("job.failed", job, error=error)
        else:
            self._watch_event("job.completed", job)

    def _queue(self, job: JobRecord, first: bool = False) -> None:
        """Queue the job for its current step; a stale token can no longer be accepted."""
        job.state, job.token, job.worker_id = QUEUED, None, None
        if self.journal is not None:
            self.journal.save(job)
        if job.in_queue:
            return
        job.in_queue = True
        pending = self._pending[job.job_type]
        pending.appendleft(job.id) if first else pending.append(job.id)

    def _redispatch(self, job: JobRecord) -> None:
        job.redispatches += 1
        job.attempts -= 1  # losing a worker is not the job's fault: not an attempt
        if job.redispatches > self.max_redispatches:
            self._finish(job, FAILED, error={"step": job.job_type, "reason": "lost too many workers"})
            return
        self._queue(job, first=True)
        self._watch_event("job.requeued", job)
