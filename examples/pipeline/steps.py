"""The steps of the guide's pipeline, and the pipelines made of them.

A step is a class with a ``job_type`` and a ``process(data, attempt)`` method
that returns the data for the next step (a ``delay`` in the data makes the
worker wait that many seconds first: simulated work). Raising :class:`JobFailed` fails the
job for good; any other exception is an error the manager retries.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Any, ClassVar


class JobFailed(Exception):
    """Raised by a step when a job cannot succeed, however often it is retried."""


class Step:
    """Base class of every step."""

    job_type: ClassVar[str] = ""

    def process(self, data: dict[str, Any], attempt: int) -> dict[str, Any]:
        """Do the work of this step and return the data for the next one."""
        raise NotImplementedError(f"{type(self).__name__} must implement process()")


def file_content(seed: str, size: int) -> bytes:
    """The deterministic content of a generated file, so results can be checked anywhere."""
    block = hashlib.sha256(seed.encode("utf-8")).digest()
    return (block * (size // len(block) + 1))[:size]


class GenerateFile(Step):
    """Write ``size`` bytes derived from ``seed`` into a new temporary file."""

    job_type = "generate-file"

    def process(self, data: dict[str, Any], attempt: int) -> dict[str, Any]:
        size = int(data.get("size", 1024))
        if size < 0:
            raise JobFailed(f"size must be >= 0, got {size}")
        seed = str(data.get("seed", ""))
        descriptor, path = tempfile.mkstemp(prefix="agentzero-pipeline-")
        with os.fdopen(descriptor, "wb") as output:
            output.write(file_content(seed, size))
        return {**data, "path": path, "size": size, "seed": seed}


class CalculateHash(Step):
    """Compute the SHA-256 of the file the previous step wrote."""

    job_type = "calculate-hash"

    def process(self, data: dict[str, Any], attempt: int) -> dict[str, Any]:
        try:
            with open(data["path"], "rb") as source:
                digest = hashlib.sha256(source.read()).hexdigest()
        except (KeyError, FileNotFoundError) as error:
            raise JobFailed(f"no file to hash: {error}") from error
        return {**data, "sha256": digest}


class DeleteFile(Step):
    """Remove the file; the hash travels on as the job's result."""

    job_type = "delete-file"

    def process(self, data: dict[str, Any], attempt: int) -> dict[str, Any]:
        try:
            os.remove(data["path"])
        except FileNotFoundError:
            pass  # a re-dispatched job may find it gone already
        return {"sha256": data.get("sha256"), "size": data.get("size"), "deleted": True}


class NoOp(Step):
    """Do nothing: measures the pipeline's own overhead."""

    job_type = "noop"

    def process(self, data: dict[str, Any], attempt: int) -> dict[str, Any]:
        return data


class Flaky(Step):
    """Raise on the first ``fail_times`` attempts (every attempt when ``always``)."""

    job_type = "flaky"

    def process(self, data: dict[str, Any], attempt: int) -> dict[str, Any]:
        if data.get("always") or attempt <= int(data.get("fail_times", 0)):
            raise RuntimeError(f"flaky step failed on purpose (attempt {attempt})")
        return {**data, "succeeded_on_attempt": attempt}


STEPS: dict[str, type[Step]] = {
    step.job_type: step for step in (GenerateFile, CalculateHash, DeleteFile, NoOp, Flaky)
}

#: pipeline name -> the job types its jobs go through, in order
PIPELINES: dict[str, list[str]] = {
    "file-hash": ["generate-file", "calculate-hash", "delete-file"],
    "noop": ["noop"],
    "flaky": ["flaky"],
}
