"""The pipeline manager writes every job to an SQLite journal and resumes from it (issue 21).

Managers and workers in this process (green); the journal is a real file. A
restarted manager is a new :class:`PipelineManager` on the same journal and
the same status port.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import gevent
import pytest
import zmq.green

from agentzero.core import SocketManager
from agentzero.pipeline import PipelineManager, StepWorker, load_step
from agentzero.pipeline.journal import Journal, JournalError
from agentzero.pipeline.protocol import COMPLETED, DISPATCHED, QUEUED, new_job
from agentzero.pipeline.worker import ask_manager
from agentzero.util import get_free_tcp_port
from agentzero.zero import context as green_context
from tests.library.pipeline_fakes import HandWorker, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


def _manager(journal: Path, port: int = 0, **options) -> PipelineManager:
    options.setdefault("heartbeat_timeout", 2)
    options.setdefault("farewell", 0)
    manager = PipelineManager(status_port=port, journal=journal, **options)
    manager.start()
    return manager


def _noop_worker(manager: PipelineManager) -> tuple[StepWorker, gevent.Greenlet]:
    worker = StepWorker(load_step("noop"), manager.addresses["status"], concurrency=4, probe_interval=0.2)
    worker.connect(timeout=5)
    running = gevent.spawn(worker.run)
    wait_until(lambda: worker.worker_id in manager.workers, what="the worker joining")
    return worker, running


def _leave(worker: StepWorker, running: gevent.Greenlet) -> None:
    worker.stop()
    running.join(timeout=5)
    running.kill()
    worker.close()


def _ask(manager: PipelineManager, request: dict) -> dict:
    with SocketManager(zmq.green, green_context) as client:
        reply = ask_manager(client, manager.addresses["status"], request, timeout=5)
        client.close("manager", linger=0)
    return reply


def _rows(path: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT id, state FROM jobs"))


def test_a_restarted_manager_resumes_queued_and_running_jobs_and_knows_finished_ones(tmp_path):
    journal, port = tmp_path / "journal.sqlite3", get_free_tcp_port("127.0.0.1")
    first = _manager(journal, port)
    worker, running = _noop_worker(first)
    first.submit(new_job("noop", {"n": 0}, job_id="finished"))
    assert first.wait(1, timeout=10)
    _leave(worker, running)
    wait_until(lambda: not first.workers, what="the worker leaving")
    hand = HandWorker(first, "noop", "hand").announce()
    first.submit(new_job("noop", {"n": 1}, job_id="running"))
    old_dispatch = hand.take()
    assert old_dispatch["job_id"] == "running" and first.jobs["running"].state == DISPATCHED
    first.submit(new_job("noop", {"n": 2}, job_id="queued"))
    gevent.sleep(0.3)  # one turn of the loop at least: written down
    first.stop()
    hand.close()

    second = _manager(journal, port)
    try:
        assert second.jobs["finished"].state == COMPLETED
        assert [step for step, _ in second.jobs["finished"].passed] == ["noop"], "its steps, from the journal"
        assert second.jobs["running"].state == QUEUED and second.jobs["queued"].state == QUEUED
        assert _ask(second, {"command": "status", "job_id": "finished"})["state"] == COMPLETED
        worker, running = _noop_worker(second)
        try:
            assert second.wait(3, timeout=10), second.stats()
            assert all(job.state == COMPLETED for job in second.jobs.values())
            passed = second.jobs["running"].passed
            assert len(passed) == 1 and passed[0][1] == worker.worker_id, "ran again, once, with a new token"
        finally:
            _leave(worker, running)
    finally:
        second.stop()
    assert _rows(journal) == {"finished": COMPLETED, "running": COMPLETED, "queued": COMPLETED}


def test_a_submitted_job_is_acknowledged_only_once_it_is_in_the_journal(tmp_path):
    journal = tmp_path / "journal.sqlite3"
    manager = _manager(journal)
    try:
        for number in range(5):
            reply = _ask(manager, {"command": "submit", "job": new_job("noop", job_id=f"job-{number}")})
            assert reply == {"job_id": f"job-{number}", "state": QUEUED}
            assert _rows(journal).get(f"job-{number}") == QUEUED  # read by another connection, at once
    finally:
        manager.stop()


def test_submitting_a_client_chosen_job_id_again_is_idempotent_across_a_restart(tmp_path):
    journal, port = tmp_path / "journal.sqlite3", get_free_tcp_port("127.0.0.1")
    job = new_job("noop", {"text": "once"}, job_id="mine")
    first = _manager(journal, port)
    try:
        for _ in range(3):
            assert _ask(first, {"command": "submit", "job": job})["job_id"] == "mine"
        assert len(first.jobs) == 1 and first.stats()["resubmitted"] == 2
        other = _ask(first, {"command": "submit", "job": new_job("noop", {"text": "other"}, job_id="mine")})
        assert other["state"] == "rejected" and "duplicate job id 'mine'" in other["error"]
    finally:
        first.stop()
    second = _manager(journal, port)
    try:
        assert _ask(second, {"command": "submit", "job": job}) == {"job_id": "mine", "state": QUEUED}
        assert len(second.jobs) == 1
    finally:
        second.stop()
    assert _rows(journal) == {"mine": QUEUED}


def test_commits_are_grouped(tmp_path):
    journal = tmp_path / "journal.sqlite3"
    manager = _manager(journal)
    try:
        with SocketManager(zmq.green, green_context) as client:
            client.ensure_and_connect("jobs", zmq.green.PUSH, manager.addresses["jobs"], 0)
            for number in range(500):
                assert client.send_safe("jobs", new_job("noop", job_id=f"job-{number}"), timeout=5)
            wait_until(lambda: len(manager.jobs) == 500 and manager.journal.rows_written >= 500)
            client.close("jobs", linger=0)
        assert manager.journal.commits < 50, manager.journal.commits
    finally:
        manager.stop()
    assert len(_rows(journal)) == 500


# -- hostile journal files ------------------------------------------------------------------------


def _journal_with_jobs(path: Path, count: int = 300) -> None:
    journal = Journal.open(path)
    manager = PipelineManager(farewell=0)
    for number in range(count):
        record = manager.submit(new_job("noop", {"pad": "x" * 200}, job_id=f"job-{number}"))
        journal.save(record)
    journal.commit()
    journal.close()
    manager.sockets.close_all(linger=0)


def _truncated(path: Path) -> None:
    _journal_with_jobs(path)
    data = path.read_bytes()
    assert len(data) > 8192
    path.write_bytes(data[: len(data) // 2 + 100])


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
        db.execute("INSERT INTO contacts VALUES ('ada', '123')")
    db.close()


def _text(path: Path) -> None:
    path.write_text("these are my notes, not a journal\n" * 10)


def _read_only(path: Path) -> None:
    _journal_with_jobs(path, 3)
    path.chmod(0o444)


HOSTILE = {
    "truncated": (_truncated, "is truncated"),
    "another program's database": (_foreign, "another program's SQLite database"),
    "a text file": (_text, "is not an SQLite database"),
    "read-only": (_read_only, "is read-only"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_journal_stops_the_manager_with_one_line_and_exit_code_2_untouched(tmp_path, kind):
    make, message = HOSTILE[kind]
    path = tmp_path / "journal.sqlite3"
    make(path)
    before = (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_mode)
    with pytest.raises(JournalError, match=message):
        Journal.open(path)
    done = subprocess.run(
        [sys.executable, "-m", "agentzero.pipeline", "manager", "--journal", str(path)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr, done.stderr
    assert "the file was left as it was" in done.stderr
    assert (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_mode) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.sqlite3"], "no -wal or -shm beside it"


def test_a_journal_round_trips_a_job(tmp_path):
    path = tmp_path / "journal.sqlite3"
    _journal_with_jobs(path, 2)
    journal = Journal.open(path)
    try:
        job, second = journal.jobs()
    finally:
        journal.close()
    assert (job.id, job.state, job.pipeline, job.steps) == ("job-0", QUEUED, "noop", ["noop"])
    assert job.data == {"pad": "x" * 200} and second.id == "job-1" and job.digest
