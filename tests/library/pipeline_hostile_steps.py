"""A step that misbehaves on request, for worker processes started by the tests.

Run it with ``python -m agentzero.pipeline step tests.library.pipeline_hostile_steps:Hostile``.
What it does comes from the job's data:

- ``{"result_size": N}``: return a result of about N bytes;
- ``{"unsendable": true}``: return a result JSON cannot carry (a lone surrogate);
- ``{"raise": NAME, "until_attempt": K}``: raise NAME (``SystemExit``, ``KeyboardInterrupt``,
  ``Abort``, a :class:`BaseException` that is not an :class:`Exception`, ``RuntimeError`` or
  ``JobFailed``) on the attempts up to K (every attempt without K), with a message of
  ``message_size`` characters when given;
- nothing of the above: return ``{"ok": attempt}``.
"""

from __future__ import annotations

from typing import Any

from agentzero.pipeline.steps import Job, JobFailed, Step


class Abort(BaseException):
    """Not an Exception: what a step's own control flow might raise."""


RAISED: dict[str, type[BaseException]] = {
    "SystemExit": SystemExit,
    "KeyboardInterrupt": KeyboardInterrupt,
    "Abort": Abort,
    "RuntimeError": RuntimeError,
    "JobFailed": JobFailed,
}


class Hostile(Step):
    """Does what the job's data asks, including what a step should not do."""

    job_type = "hostile"

    def process(self, data: dict[str, Any], job: Job) -> Any:
        if "result_size" in data:
            return {"blob": "x" * data["result_size"]}
        if data.get("unsendable"):
            return {"text": "lone \ud800 surrogate"}
        name = data.get("raise")
        until = data.get("until_attempt")
        if name is not None and (until is None or job.attempt <= until):
            size = data.get("message_size")
            message = "y" * size if size else f"{name} raised on purpose (attempt {job.attempt})"
            raise RAISED[name](message)
        return {"ok": job.attempt}


#: the pipelines of the tests that use this step
PIPELINES = {"hostile": ["hostile"], "noop": ["noop"]}
