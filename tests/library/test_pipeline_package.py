"""The worker pipeline ships in the package: ``agentzero.pipeline``, its extra, its commands (issue 21)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pipeline(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "agentzero.pipeline", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_step_and_the_pieces_are_importable_from_agentzero_pipeline():
    from agentzero.pipeline import Job, JobFailed, PipelineManager, Step, StepWorker

    assert Step.__module__ == "agentzero.pipeline.steps"
    assert {Job, JobFailed, PipelineManager, StepWorker}
    assert Path(sys.modules["agentzero.pipeline"].__file__).parent == ROOT / "agentzero" / "pipeline"


def test_the_pipeline_extra_brings_what_run_draws_with():
    extra = re.search(r"^pipeline = \[(.*?)^\]", (ROOT / "pyproject.toml").read_text(), re.M | re.S)
    assert extra is not None and '"rich>=' in extra.group(1)


def test_make_demo_and_the_docs_use_the_installed_path():
    assert "python -m agentzero.pipeline run" in (ROOT / "Makefile").read_text()
    for page in ("docs/pipeline.rst", "docs/steps.rst", "docs/examples.rst", "README.md"):
        assert "python -m examples.pipeline" not in (ROOT / page).read_text(), page


@pytest.mark.timeout(120)
def test_run_takes_a_pipeline_from_a_module():
    done = _pipeline(
        "run",
        "--pipeline",
        "examples.pipeline.wordcount:PIPELINES",
        "--jobs",
        "4",
        "--workers",
        "1",
        "--instructions",
        '{"text": "the cat saw the other cat"}',
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 workers joined" in done.stdout and "all 4 jobs completed" in done.stdout, done.stdout


@pytest.mark.timeout(120)
def test_run_takes_a_pipeline_from_a_json_file(tmp_path):
    spec = tmp_path / "mine.json"
    spec.write_text(json.dumps({"twice": ["noop", "agentzero.pipeline.builtin_steps:NoOp"]}))
    done = _pipeline("run", "--pipeline", str(spec), "--jobs", "5", "--workers", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all 5 jobs completed" in done.stdout


def test_run_refuses_a_pipeline_it_cannot_run_in_one_line(tmp_path):
    several = tmp_path / "several.json"
    several.write_text(json.dumps({"a": ["noop"], "b": ["noop"]}))
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"a": ["no-such-step"]}))
    for spec, message in (
        ("no-such-pipeline", "unknown pipeline 'no-such-pipeline'"),
        (str(several), "holds 2 pipelines"),
        (str(unknown), "no step runs job type 'no-such-step'"),
    ):
        done = _pipeline("run", "--pipeline", spec, "--jobs", "1")
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.strip().count("\n") == 0 and message in done.stderr, done.stderr
