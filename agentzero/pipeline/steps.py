"""Writing your own steps and pipelines.

A step is a subclass of :class:`Step` with a ``job_type`` and one method,
:meth:`Step.process`, which takes the job's data and returns the data for
the next step (or the job's result, after the last step). Raising
:class:`JobFailed` fails the job for good; any other exception is an error
the manager retries, up to its ``max_attempts``.

Delivery is *at least once*: a worker may die after doing the work but
before reporting it, and then the manager sends the job again. So a step must
be idempotent: running it twice for the same job gives the same result and
leaves the same effects (see :doc:`/steps`).

A pipeline is an ordered list of job types; :mod:`agentzero.pipeline.loading`
finds steps and pipelines by a ``module:name`` path (or, for pipelines, a small
JSON file), which is what the command line takes.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple


class JobFailed(Exception):
    """Raised by a step when a job cannot succeed, however often it is retried."""


class Job(NamedTuple):
    """What a step knows about the job it runs, besides its data."""

    #: the job's id, unique in the manager
    id: str
    #: 1 on the first try of this step, 2 after an error was retried, ...
    attempt: int


class Step:
    """Base class of every step.

    Subclasses set :attr:`job_type` and implement :meth:`process`. One
    instance serves every job of the worker, several at once when the
    worker's concurrency is above 1 (in greenlets): keep per-job state in
    local variables, not on ``self``.
    """

    #: the name workers announce and pipelines list
    job_type: ClassVar[str] = ""

    def process(self, data: dict[str, Any], job: Job) -> Any:
        """Do the work of this step for one job.

        Parameters
        ----------
        data : dict
            the job's instructions (first step) or the previous step's result
        job : Job
            the job's id and the attempt number of this step

        Returns
        -------
        object
            the next step's data (a dict), or the job's result after the last step;
            anything JSON can carry.

        Raises
        ------
        JobFailed
            to fail the job for good; any other exception is retried.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement process()")
