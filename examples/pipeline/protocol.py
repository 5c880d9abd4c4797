"""What travels between the pipeline manager, its step workers and its clients.

Workers publish events on topics: ``available`` (the heartbeat),
``job:started``, ``job:success``, ``job:failed``, ``job:error``, ``metric`` and
``logs``. The manager pushes dispatches to the workers of a job type, and
answers requests on its status socket.
"""

from __future__ import annotations

import uuid
from typing import Any

AVAILABLE = "available"
JOB_STARTED = "job:started"
JOB_SUCCESS = "job:success"
JOB_FAILED = "job:failed"
JOB_ERROR = "job:error"
METRIC = "metric"
LOGS = "logs"

#: The states a job goes through; the last two are final.
QUEUED, DISPATCHED, RUNNING, COMPLETED, FAILED = "queued", "dispatched", "running", "completed", "failed"
FINAL_STATES = (COMPLETED, FAILED)


class BadJob(ValueError):
    """A submitted job that cannot be accepted; the message says why."""


def new_job(pipeline: str, instructions: dict[str, Any] | None = None, job_id: str | None = None) -> dict:
    """Build a job to submit: ``{"id", "pipeline", "instructions"}``."""
    return {"id": job_id or uuid.uuid4().hex, "pipeline": pipeline, "instructions": instructions or {}}


def check_job(job: Any, pipelines: dict[str, list[str]]) -> dict:
    """Return ``job`` if it is well formed for one of ``pipelines``, else raise :class:`BadJob`."""
    if not isinstance(job, dict):
        raise BadJob(f"a job must be an object, got {type(job).__name__}")
    job_id = job.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise BadJob(f"a job needs a non-empty string 'id', got {job_id!r}")
    pipeline = job.get("pipeline")
    if pipeline not in pipelines:
        raise BadJob(f"unknown pipeline {pipeline!r} for job {job_id!r}; known: {sorted(pipelines)}")
    if not isinstance(job.get("instructions", {}), dict):
        raise BadJob(f"'instructions' of job {job_id!r} must be an object")
    return job
