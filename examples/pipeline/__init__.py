"""The distributed worker pipeline of the agentzero guide.

A :class:`~examples.pipeline.manager.PipelineManager` receives jobs and routes
them through the steps of their pipeline; each step type runs in as many
:class:`~examples.pipeline.worker.StepWorker` processes as you like, on this
machine or others. Everything is wired with agentzero's named sockets::

    submitters --PUSH--> [jobs-in PULL]                         manager
    manager  [push:<job type> PUSH] --> [jobs PULL]              step workers
    workers  [events PUB] --> [pipe-sub SUB]                    manager
    clients  --REQ--> [pipe-status REP]                         manager

Run ``python -m examples.pipeline --help``.
"""

from examples.pipeline.manager import PipelineManager
from examples.pipeline.steps import PIPELINES, STEPS, JobFailed, Step
from examples.pipeline.worker import StepWorker

__all__ = ["PIPELINES", "STEPS", "JobFailed", "PipelineManager", "Step", "StepWorker"]
