"""The distributed worker pipeline of the agentzero guide.

A :class:`~agentzero.pipeline.manager.PipelineManager` receives jobs and routes
them through the steps of their pipeline; each step type runs in as many
:class:`~agentzero.pipeline.worker.StepWorker` processes as you like, on this
machine or others. Everything is wired with agentzero's named sockets::

    submitters --PUSH--> [jobs-in PULL]                         manager
    manager  [push:<worker id> PUSH] --> [jobs PULL]            one step worker each
    workers  [events PUB] --> [pipe-sub SUB]                    manager
    clients  --REQ--> [pipe-status REP]                         manager

Your own steps subclass :class:`~agentzero.pipeline.steps.Step`, importable
from here (see ``docs/steps.rst``). Install what the command line draws with
``pip install 'agentzero[pipeline]'`` and run ``python -m agentzero.pipeline --help``.
"""

from agentzero.pipeline.builtin_steps import PIPELINES, STEPS
from agentzero.pipeline.loading import load_pipelines, load_step
from agentzero.pipeline.manager import PipelineManager
from agentzero.pipeline.steps import Job, JobFailed, Step
from agentzero.pipeline.worker import StepWorker

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
