"""The steps of the guide's pipeline, and the pipelines made of them.

Each is idempotent: run twice for the same job, it gives the same result and
leaves the same files. ``generate-file`` writes a file whose name and content
follow from the job (a temporary name first, then an atomic rename);
``calculate-hash`` only reads; ``delete-file`` finds the file gone and still
reports the hash. A ``delay`` in the data makes the worker wait that many
seconds first: simulated work.

Files live in the directory named by the ``AGENTZERO_PIPELINE_DIR``
environment variable (default: ``agentzero-pipeline`` in the temporary
directory); ``delete-file`` removes nothing outside it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from agentzero.pipeline.steps import Job, JobFailed, Step

#: Where ``generate-file`` writes, unless AGENTZERO_PIPELINE_DIR says otherwise.
DEFAULT_DIRECTORY = os.path.join(tempfile.gettempdir(), "agentzero-pipeline")
MAX_FILE_SIZE = 64 * 1024 * 1024


def file_directory() -> Path:
    """The directory of the generated files (created if needed)."""
    directory = Path(os.environ.get("AGENTZERO_PIPELINE_DIR") or DEFAULT_DIRECTORY)
    directory.mkdir(parents=True, exist_ok=True)
    return directory.resolve()


def file_content(seed: str, size: int) -> bytes:
    """The deterministic content of a generated file, so results can be checked anywhere."""
    block = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).digest()
    return (block * (size // len(block) + 1))[:size]


def file_path(job_id: str) -> Path:
    """The file of a job: its name follows from the job id, so a replay finds the same file."""
    digest = hashlib.sha256(job_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return file_directory() / f"job-{digest}.bin"


class GenerateFile(Step):
    """Write ``size`` bytes derived from ``seed`` into the job's file."""

    job_type = "generate-file"

    def process(self, data: dict[str, Any], job: Job) -> dict[str, Any]:
        size = data.get("size", 1024)
        if type(size) is not int or not 0 <= size <= MAX_FILE_SIZE:
            raise JobFailed(f"size must be an integer from 0 to {MAX_FILE_SIZE}, got {size!r}")
        seed = str(data.get("seed", ""))
        path = file_path(job.id)
        partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial")
        try:
            partial.write_bytes(file_content(seed, size))
            os.replace(partial, path)  # atomic: readers see the whole file or none
        finally:
            partial.unlink(missing_ok=True)
        return {**data, "path": str(path), "size": size, "seed": seed}


class CalculateHash(Step):
    """Compute the SHA-256 of the file the previous step wrote."""

    job_type = "calculate-hash"

    def process(self, data: dict[str, Any], job: Job) -> dict[str, Any]:
        try:
            with open(_own_file(data), "rb") as source:
                digest = hashlib.sha256(source.read()).hexdigest()
        except FileNotFoundError as error:
            raise JobFailed(f"no file to hash: {error}") from error
        return {**data, "sha256": digest}


class DeleteFile(Step):
    """Remove the file; the hash travels on as the job's result (also when the file is gone already)."""

    job_type = "delete-file"

    def process(self, data: dict[str, Any], job: Job) -> dict[str, Any]:
        _own_file(data).unlink(missing_ok=True)
        return {"sha256": data.get("sha256"), "size": data.get("size"), "deleted": True}


def _own_file(data: dict[str, Any]) -> Path:
    """The job's file, refusing paths outside :func:`file_directory`."""
    path = data.get("path")
    if not isinstance(path, str) or not path:
        raise JobFailed(f"no file to work on: 'path' is {path!r}")
    resolved = Path(path).resolve()
    if resolved.parent != file_directory():
        raise JobFailed(f"refusing a file outside {file_directory()}: {path!r}")
    return resolved


class NoOp(Step):
    """Do nothing: measures the pipeline's own overhead."""

    job_type = "noop"

    def process(self, data: dict[str, Any], job: Job) -> dict[str, Any]:
        return data


class Flaky(Step):
    """Raise on the first ``fail_times`` attempts (every attempt when ``always``)."""

    job_type = "flaky"

    def process(self, data: dict[str, Any], job: Job) -> dict[str, Any]:
        fail_times = data.get("fail_times", 0)
        if data.get("always") or (type(fail_times) is int and job.attempt <= fail_times):
            raise RuntimeError(f"flaky step failed on purpose (attempt {job.attempt})")
        return {**data, "succeeded_on_attempt": job.attempt}


STEPS: dict[str, type[Step]] = {
    step.job_type: step for step in (GenerateFile, CalculateHash, DeleteFile, NoOp, Flaky)
}

#: pipeline name -> the job types its jobs go through, in order
PIPELINES: dict[str, list[str]] = {
    "file-hash": ["generate-file", "calculate-hash", "delete-file"],
    "noop": ["noop"],
    "flaky": ["flaky"],
}
