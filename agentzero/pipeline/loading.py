"""Finding steps and pipelines: a built-in job type, a ``module:name`` path, or a small JSON file.

What the command line takes (``run --pipeline``, ``step JOB_TYPE``): a
:class:`~agentzero.pipeline.steps.Step` subclass or a callable returning one,
and pipelines as a mapping of name -> job types.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from agentzero.pipeline.builtin_steps import STEPS
from agentzero.pipeline.protocol import is_clean_text
from agentzero.pipeline.steps import Step


class BadStep(ValueError):
    """A step or pipeline path that cannot be loaded; the message says why."""


def _import_object(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise BadStep(f"expected 'module:name', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BadStep(f"cannot import {module_name!r} for {spec!r}: {error}") from error
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise BadStep(f"module {module_name!r} has no {attribute!r}") from None
    return target


def load_step(spec: str, builtin: dict[str, type[Step]] | None = None) -> Step:
    """Return a step instance from a built-in job type or a ``module:callable`` path.

    Parameters
    ----------
    spec : str
        a built-in job type (``calculate-hash``) or ``package.module:Name``,
        where ``Name`` is a :class:`Step` subclass or a callable returning a
        :class:`Step` instance
    builtin : dict, optional
        job type -> step class; defaults to the built-in steps

    Returns
    -------
    Step
        a new instance

    Raises
    ------
    BadStep
        when the path does not import, does not name a step, or the step has
        no printable ``job_type``.
    """
    if builtin is None:
        builtin = STEPS
    if spec in builtin:
        return builtin[spec]()
    if ":" not in spec:
        raise BadStep(f"unknown step {spec!r}: use one of {sorted(builtin)} or 'module:StepClass'")
    factory = _import_object(spec)
    if not callable(factory):
        raise BadStep(f"{spec!r} is not a Step class or a callable returning a Step")
    try:
        step = factory()
    except Exception as error:  # a user's constructor may raise anything: say which one did
        raise BadStep(f"{spec!r} could not be made: {type(error).__name__}: {error}") from error
    if not isinstance(step, Step):
        raise BadStep(f"{spec!r} made a {type(step).__name__}, not a Step")
    if not is_clean_text(step.job_type):
        raise BadStep(f"{spec!r} has no job_type (printable text), got {step.job_type!r}")
    return step


def check_pipelines(pipelines: Any, origin: str) -> dict[str, list[str]]:
    """Return ``pipelines`` if it maps names to non-empty lists of job types.

    Raises
    ------
    BadStep
        naming ``origin`` and the first entry that is wrong.
    """
    if not isinstance(pipelines, dict) or not pipelines:
        raise BadStep(f"{origin}: pipelines are a non-empty mapping of name -> [job types]")
    for name, steps in pipelines.items():
        if not is_clean_text(name):
            raise BadStep(f"{origin}: a pipeline name is printable text, got {name!r}")
        if not isinstance(steps, (list, tuple)) or not steps or not all(is_clean_text(s) for s in steps):
            raise BadStep(f"{origin}: pipeline {name!r} needs a non-empty list of job types, got {steps!r}")
    return {name: list(steps) for name, steps in pipelines.items()}


def load_pipelines(spec: str) -> dict[str, list[str]]:
    """Return the pipelines named by ``module:NAME`` or a JSON file ``{"name": ["job type", ...]}``.

    Parameters
    ----------
    spec : str
        ``package.module:PIPELINES`` or the path of a ``.json`` file

    Returns
    -------
    dict
        pipeline name -> ordered job types

    Raises
    ------
    BadStep
        when the module or file cannot be read, or does not hold pipelines.
    """
    if spec.endswith(".json"):
        try:
            pipelines = json.loads(Path(spec).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise BadStep(f"cannot read pipelines from {spec!r}: {error}") from error
    else:
        pipelines = _import_object(spec)
    return check_pipelines(pipelines, spec)
