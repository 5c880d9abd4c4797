"""The distributed worker pipeline of the agentzero guide.

A :class:`~examples.pipeline.manager.PipelineManager` receives jobs and routes
them through the steps of their pipeline; each step type runs in as many
:class:`~examples.pipeline.worker.StepWorker` processes as you like, on this
machine or others. Everything is wired with agentzero's named sockets::

    submitters --PUSH--> [jobs-in PULL]                         manager
    manager  [push:<worker id> PUSH] --> [jobs PULL]            one step worker each
    workers  [events PUB] --> [pipe-sub SUB]                    manager
    clients  --REQ--> [pipe-status REP]                         manager

Your own steps subclass :class:`~examples.pipeline.steps.Step` (see
``docs/steps.rst``). Run ``python -m examples.pipeline --help``.
"""

from examples.pipeline.builtin_steps import PIPELINES, STEPS
from examples.pipeline.manager import PipelineManager
from examples.pipeline.steps import Job, JobFailed, Step, load_pipelines, load_step
from examples.pipeline.worker import StepWorker

__all__ = [
    "PIPELINES",
    "STEPS",
    "Job",
    "JobFailed",
    "PipelineManager",
    "Step",
    "StepWorker",
    "load_pipelines",
    "load_step",
]
