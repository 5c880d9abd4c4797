"""The pipeline manager's journal: every job written down in SQLite, so a restarted manager resumes.

One row per job, rewritten each time the job moves on (accepted, a step
passed, retried, sent again, finished). The manager writes the jobs that
moved in one transaction per turn of its loop, before it dispatches
anything or answers a submitter: what a worker or a client was told is
always in the journal. The file is in WAL mode, so a reader never blocks
the manager and a SIGKILL loses nothing that was committed.

A file that is not a journal is never written to: :meth:`Journal.open`
checks the SQLite header (truncated? another program's database?) and
whether the file may be written before SQLite opens it for writing.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Iterable, Iterator

import orjson

from agentzero.pipeline.protocol import FINAL_STATES
from agentzero.pipeline.records import JobRecord

#: ``PRAGMA application_id`` of a journal: "azpj"
APPLICATION_ID = 0x617A706A
#: ``PRAGMA user_version``: the layout of the rows
SCHEMA_VERSION = 1
_HEADER = b"SQLite format 3\x00"
#: Seconds a job's end may wait to be written down with others (see :meth:`Journal.commit_due`).
FINISHED_DELAY = 0.05
#: what the journal keeps of a job, beside its id and state
_FIELDS = (
    "pipeline",
    "steps",
    "data",
    "step_index",
    "attempts",
    "retries",
    "redispatches",
    "result",
    "error",
    "digest",
    "passed",
)


class JournalError(Exception):
    """A journal file that cannot be used; the file was left as it was.

    Parameters
    ----------
    path : str
        the journal's path
    problem : str
        what is wrong with it
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"journal {path}: {problem}; the file was left as it was")


def default_path(directory: Path, port: int) -> Path:
    """The journal of the manager whose status port is ``port``, in ``directory``.

    A manager restarted on the same port finds the same journal.
    """
    return directory / f"journal-{port}.sqlite3"


def check_file(path: Path) -> None:
    """Refuse, without writing anything, a file that is not a usable journal.

    Raises
    ------
    JournalError
        when the file is not an SQLite database, is another program's
        database, is shorter than its header says (truncated), or may not
        be written.
    """
    name = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    except OSError as error:
        raise JournalError(name, f"cannot be read: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise JournalError(name, "is not a regular file")
    if info.st_size == 0:
        return
    try:
        with open(path, "rb") as file:
            header = file.read(100)
    except OSError as error:
        raise JournalError(name, f"cannot be read: {error.strerror}") from None
    if len(header) < 100 or not header.startswith(_HEADER):
        raise JournalError(name, "is not an SQLite database (another program's file, or a damaged one)")
    application_id = int.from_bytes(header[68:72], "big")
    if application_id != APPLICATION_ID:
        raise JournalError(
            name, f"is another program's SQLite database (application_id {application_id:#x}), not a journal"
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    wal = path.with_name(path.name + "-wal")
    # killed mid-checkpoint, the file may be shorter than its header says: the WAL beside it has the rest
    pending = wal.exists() and wal.stat().st_size > 0
    if page_size < 512 or info.st_size % page_size or (info.st_size < page_size * pages and not pending):
        raise JournalError(
            name, f"is truncated: {info.st_size} bytes, its header says {pages} pages of {page_size} bytes"
        )
    if not info.st_mode & 0o222 or not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        raise JournalError(name, "is read-only (the manager must write to it and beside it)")


class Journal:
    """The journal at ``path``; use :meth:`open`."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._dirty: dict[str, JobRecord] = {}
        self._urgent = False
        self._last_commit = 0.0
        #: how many transactions were committed, and how many job rows they wrote
        self.commits = 0
        self.rows_written = 0

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Journal:
        """Open the journal at ``path``, creating it (and its directory) when missing.

        Raises
        ------
        JournalError
            for a file that is not a usable journal (see :func:`check_file`),
            or that SQLite finds damaged; the file is left as it was.
        """
        path = Path(path)
        check_file(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not path.exists() or path.stat().st_size == 0
            db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise JournalError(str(path), f"cannot be opened: {error}") from None
        try:
            if not fresh:
                (verdict,) = db.execute("PRAGMA quick_check").fetchone()
                if verdict != "ok":
                    raise JournalError(str(path), f"is damaged: {verdict}")
                (version,) = db.execute("PRAGMA user_version").fetchone()
                if version != SCHEMA_VERSION:
                    raise JournalError(
                        str(path), f"has layout {version}, this manager reads {SCHEMA_VERSION}"
                    )
            if fresh:  # before WAL mode: the header on disk says "journal" at once, also after a SIGKILL
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                db.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, state TEXT, job TEXT)")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives a killed process
        except sqlite3.Error as error:
            db.close()
            raise JournalError(str(path), f"is damaged: {error}") from None
        except JournalError:
            db.close()
            raise
        return cls(path, db)

    def jobs(self) -> Iterator[JobRecord]:
        """Every job written down, in the order they were first accepted."""
        for job_id, state, text in self._db.execute("SELECT id, state, job FROM jobs ORDER BY rowid"):
            fields = orjson.loads(text)
            fields["passed"] = [tuple(step) for step in fields["passed"]]  # (job type, worker id)
            yield JobRecord(id=job_id, state=state, **{name: fields[name] for name in _FIELDS})

    def save(self, job: JobRecord) -> None:
        """Write ``job`` down at the next :meth:`commit`."""
        self._dirty[job.id] = job
        if job.state not in FINAL_STATES:
            self._urgent = True

    def commit_due(self, now: float) -> int:
        """Commit when a job waits to be dispatched, or the oldest change is ``FINISHED_DELAY`` old.

        A job queued (accepted, or at its next step) must be written down before
        it is dispatched. A job's end may wait a little, so that more share a
        transaction: lost in a crash, it is run again at its last step
        (idempotent) and ends once in the journal.
        """
        if self._urgent or (self._dirty and now - self._last_commit >= FINISHED_DELAY):
            return self.commit()
        return 0

    def commit(self) -> int:
        """Write every job saved since the last commit, in one transaction; return how many."""
        if not self._dirty:
            return 0
        rows = list(self._rows(self._dirty.values()))
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT INTO jobs (id, state, job) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET state = excluded.state, job = excluded.job",
                rows,
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self._dirty.clear()
        self._urgent = False
        self._last_commit = time.monotonic()
        self.commits += 1
        self.rows_written += len(rows)
        return len(rows)

    @staticmethod
    def _rows(jobs: Iterable[JobRecord]) -> Iterator[tuple[str, str, bytes]]:
        dumps = orjson.dumps
        for job in jobs:
            fields = {name: getattr(job, name) for name in _FIELDS}
            if job.state in FINAL_STATES:
                fields["data"] = None  # the next step's data: no step follows
            yield job.id, job.state, dumps(fields, default=repr)

    def close(self) -> None:
        """Write what is left, then close the file."""
        try:
            self.commit()
        finally:
            self._db.close()
