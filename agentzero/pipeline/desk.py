"""The pipeline manager's front desk: jobs coming in, the status socket, and the journal behind them.

A job is accepted from ``jobs-in`` (PUSH, no reply) or from a ``submit``
request on the status socket (REQ, answered once the job is in the
journal). With a journal (:mod:`agentzero.pipeline.journal`), a manager
restarted on it resumes: the finished jobs are known to ``status``, the
others are queued again at the step they reached, and sent with fresh
tokens.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import time
from typing import Any

from agentzero.core import SocketManager
from agentzero.errors import DeserializationError, MessageTooLarge, SerializationError
from agentzero.pipeline.journal import Journal
from agentzero.pipeline.protocol import (
    COMPLETED,
    FAILED,
    FINAL_STATES,
    BadJob,
    BadMessage,
    check_job,
    check_request,
    is_clean_text,
)
from agentzero.pipeline.records import JobRecord, WorkerRecord

log = logging.getLogger("pipeline.manager")


def job_digest(job: dict[str, Any]) -> str:
    """What makes two submissions the same job: its pipeline and its instructions."""
    text = json.dumps([job["pipeline"], job.get("instructions") or {}], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:32]


class Desk:
    """The client half of :class:`~agentzero.pipeline.manager.PipelineManager`."""

    # set by the manager
    sockets: SocketManager
    jobs: dict[str, JobRecord]
    pipelines: dict[str, list[str]]
    addresses: dict[str, str]
    rejected: collections.deque[dict[str, Any]]
    rejected_count: int
    bad_messages: collections.Counter[str]
    heartbeat_timeout: float
    max_message_size: int
    stopping: bool
    _told: set[str]
    _probers: set[str]
    completed_per_step: collections.Counter[str]
    first_dispatch: dict[str, float]
    last_done: dict[str, float]
    started_at: float
    stale_events: int
    workers: dict[str, WorkerRecord]
    workers_lost: int

    def __init__(self) -> None:
        #: the journal, once :meth:`open_journal` opened one
        self.journal: Journal | None = None
        #: how many submissions were a job already known (a client retrying)
        self.resubmitted = 0

    def _queue(self, job: JobRecord, first: bool = False) -> None:
        raise NotImplementedError  # the manager queues

    def _watch_event(self, topic: str, job: JobRecord, **extra: Any) -> None:
        raise NotImplementedError  # the manager publishes

    def _bad(self, kind: str, detail: str) -> None:
        raise NotImplementedError  # the manager counts

    def stats(self) -> dict[str, Any]:
        """Counts by state, retries, re-dispatches, workers, dropped messages and per-step throughput."""
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
            "rejected": self.rejected_count,
            "retries": sum(job.retries for job in self.jobs.values()),
            "redispatches": sum(job.redispatches for job in self.jobs.values()),
            "stale_events": self.stale_events,
            "bad_messages": dict(self.bad_messages),
            "workers": collections.Counter(worker.job_type for worker in self.workers.values()),
            "workers_lost": self.workers_lost,
            "completed_per_step": dict(self.completed_per_step),
            "throughput_per_step": throughput,
            "uptime": time.monotonic() - self.started_at,
            "resubmitted": self.resubmitted,
            "journal": None
            if self.journal is None
            else {
                "path": str(self.journal.path),
                "commits": self.journal.commits,
                "rows_written": self.journal.rows_written,
            },
        }

    def open_journal(self, path: str | os.PathLike[str]) -> dict[str, int]:
        """Open (or create) the journal at ``path`` and resume the jobs written in it.

        Returns
        -------
        dict
            ``{"finished": n, "resumed": n}``: the jobs known from the journal

        Raises
        ------
        agentzero.pipeline.journal.JournalError
            when the file is not a usable journal; it is left as it was.
        """
        journal = Journal.open(path)
        counts = {"finished": 0, "resumed": 0}
        for record in journal.jobs():
            self.jobs[record.id] = record
            if record.state in FINAL_STATES:
                counts["finished"] += 1
            else:
                counts["resumed"] += 1
                self._queue(record)  # at the step it reached; sent with a fresh token
        self.journal = journal
        if counts["finished"] or counts["resumed"]:
            log.info(
                "journal %s: %d finished job(s) known, %d resumed",
                path,
                counts["finished"],
                counts["resumed"],
            )
        return counts

    def submit(self, job: Any) -> JobRecord | None:
        """Accept a job (as ``jobs-in`` would); a bad one is recorded in :attr:`rejected`.

        Parameters
        ----------
        job : dict
            ``{"id", "pipeline", "instructions"}`` (see :func:`~agentzero.pipeline.protocol.new_job`)

        The job's id is the client's: the same job (same id, pipeline and
        instructions) submitted again is the job already known, not a new
        one, so a client may re-send after a lost reply or a manager's
        restart. Another job under a known id is rejected.

        Returns
        -------
        JobRecord or None
            the job's record, or ``None`` when it was rejected.
        """
        try:
            job = check_job(job, self.pipelines)
            digest = job_digest(job)
            known = self.jobs.get(job["id"])
            if known is not None and known.digest != digest:
                raise BadJob(f"duplicate job id {job['id']!r}")
        except BadJob as problem:
            self._reject(job, str(problem))
            return None
        if known is not None:  # the same job submitted again (a client retrying): one job
            self.resubmitted += 1
            return known
        record = JobRecord(
            id=job["id"],
            pipeline=job["pipeline"],
            steps=list(self.pipelines[job["pipeline"]]),
            data=dict(job.get("instructions") or {}),
            digest=digest,
        )
        self.jobs[record.id] = record
        self._queue(record)
        self._watch_event("job.accepted", record)
        return record

    def _drain_jobs(self) -> None:
        for _ in range(1000):  # bounded, so events and status requests get their turn
            try:
                job = self.sockets.recv_safe("jobs-in", timeout=0)
            except MessageTooLarge as error:
                self._reject(None, f"job too large: {error.size} bytes, the limit is {error.limit}")
                continue
            except DeserializationError as error:
                self._reject(None, f"unreadable job: {error.reason}")
                continue
            if job is None:
                return
            self.submit(job)

    def _answer_status(self) -> None:
        if self.journal is not None:
            self.journal.commit()  # what a client is told is written down
        try:
            request = self.sockets.recv_safe("pipe-status", timeout=0)
        except DeserializationError as error:  # a REP must answer, also this
            self._bad("unreadable request", error.reason)
            self.sockets.send_safe("pipe-status", {"error": f"unreadable request: {error.reason}"}, timeout=1)
            return
        if request is None:
            return
        try:
            reply = self._status_reply(request)
        except BadMessage as problem:
            self._bad(problem.kind, problem.detail)
            reply = {"error": str(problem)}
        try:
            self.sockets.send_safe("pipe-status", reply, timeout=1)
        except SerializationError as error:
            self.bad_messages["unsendable reply"] += 1
            log.warning("could not send a status reply: %s", error)
            self.sockets.send_safe("pipe-status", {"error": "the reply could not be serialized"}, timeout=1)

    def _status_reply(self, request: Any) -> dict[str, Any]:
        command, argument = check_request(request)
        if command == "addresses":
            worker_id = request.get("worker_id")
            if not is_clean_text(worker_id):
                return {**self.addresses, "stopping": True} if self.stopping else dict(self.addresses)
            if len(self._probers) >= 10000:  # bounded: ids of workers long gone are forgotten
                self._probers.clear()
            self._probers.add(worker_id)  # a worker that probes: stop() waits until it heard
            if not self.stopping:
                return dict(self.addresses)
            self._told.add(worker_id)
            return {**self.addresses, "stopping": True}
        if command == "settings":
            return {"heartbeat_timeout": self.heartbeat_timeout, "max_message_size": self.max_message_size}
        if command == "stats":
            return self.stats()
        if command == "status":
            job = self.jobs.get(argument)
            if job is not None:
                return job.view()
            rejected = [entry for entry in self.rejected if entry.get("job_id") == argument]
            if rejected:
                return {"job_id": argument, "state": "rejected", **rejected[-1]}
            return {"job_id": argument, "state": "unknown", "error": "no such job"}
        record = self.submit(argument)
        if self.journal is not None:
            self.journal.commit()  # acknowledged only once written down
        if record is None:
            return {"state": "rejected", "error": self.rejected[-1]["reason"]}
        return {"job_id": record.id, "state": record.state}

    def _reject(self, job: Any, reason: str) -> None:
        job_id = job.get("id") if isinstance(job, dict) else None
        self.rejected.append({"job_id": job_id if isinstance(job_id, str) else None, "reason": reason})
        self.rejected_count += 1
        log.warning("rejected a job: %s", reason)
