"""Steps: the built-in ones are idempotent, your own load by path, and the docs' example runs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from agentzero.pipeline.builtin_steps import CalculateHash, DeleteFile, GenerateFile, file_content
from agentzero.pipeline.loading import BadStep, load_pipelines, load_step
from agentzero.pipeline.steps import Job, JobFailed, Step
from examples.processes import REPO_ROOT

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def files(tmp_path, monkeypatch):
    directory = tmp_path / "files"
    monkeypatch.setenv("AGENTZERO_PIPELINE_DIR", str(directory))
    return directory


def test_each_builtin_step_run_twice_gives_the_same_result_and_the_same_files(files):
    job = Job("job-1", 1)
    first = GenerateFile().process({"seed": "s", "size": 3000}, job)
    second = GenerateFile().process({"seed": "s", "size": 3000}, Job("job-1", 2))
    assert first == second and [p.name for p in files.iterdir()] == [os.path.basename(first["path"])]
    assert open(first["path"], "rb").read() == file_content("s", 3000)
    hashed = CalculateHash().process(first, job)
    assert CalculateHash().process(first, job) == hashed
    assert hashed["sha256"] == hashlib.sha256(file_content("s", 3000)).hexdigest()
    deleted = DeleteFile().process(hashed, job)
    assert DeleteFile().process(hashed, job) == deleted  # already gone: harmless, same result
    assert deleted == {"sha256": hashed["sha256"], "size": 3000, "deleted": True}
    assert list(files.iterdir()) == []
    other = GenerateFile().process({"seed": "s", "size": 3000}, Job("job-2", 1))
    assert other["path"] != first["path"]  # files follow from the job id


def test_builtin_steps_refuse_bad_sizes_and_files_outside_their_directory(files, tmp_path):
    for size in (-1, "12", 1.5, 2**40):
        with pytest.raises(JobFailed, match="size must be an integer"):
            GenerateFile().process({"size": size}, Job("j", 1))
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    for step in (CalculateHash(), DeleteFile()):
        with pytest.raises(JobFailed, match="refusing a file outside"):
            step.process({"path": str(outside)}, Job("j", 1))
        with pytest.raises(JobFailed, match="no file to work on"):
            step.process({}, Job("j", 1))
    assert outside.read_text() == "keep me"


def test_load_step_by_builtin_name_or_module_path_and_say_why_not():
    assert load_step("noop").job_type == "noop"
    step = load_step("examples.pipeline.wordcount:CountWords")
    assert isinstance(step, Step) and step.job_type == "count-words"
    problems = {
        "no-such-step": "unknown step 'no-such-step'",
        "no.such.module:Thing": "cannot import 'no.such.module'",
        "examples.pipeline.wordcount:Nothing": "has no 'Nothing'",
        "examples.pipeline.wordcount:PIPELINES": "is not a Step class",
        "agentzero.pipeline.steps:Job": "could not be made",
        "agentzero.pipeline.steps:Step": "has no job_type",
        "examples.pipeline.wordcount:re.compile": "could not be made",
    }
    for spec, message in problems.items():
        with pytest.raises(BadStep, match=re.escape(message)):
            load_step(spec)


def test_load_pipelines_from_a_module_or_a_json_file(tmp_path):
    assert load_pipelines("examples.pipeline.wordcount:PIPELINES") == {
        "wordcount": ["normalize-text", "count-words"]
    }
    good = tmp_path / "pipelines.json"
    good.write_text(json.dumps({"two": ["noop", "flaky"]}))
    assert load_pipelines(str(good)) == {"two": ["noop", "flaky"]}
    bad = {
        "empty.json": "{}",
        "list.json": '["noop"]',
        "steps.json": '{"p": []}',
        "names.json": '{"p": ["\\ud800"]}',
        "broken.json": "{",
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(BadStep, match=re.escape(name)):
            load_pipelines(str(tmp_path / name))
    with pytest.raises(BadStep, match="cannot read"):
        load_pipelines(str(tmp_path / "missing.json"))


def _cli(*args: str, env=None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agentzero.pipeline", *args],
        env=dict(env or os.environ, PYTHONPATH=str(REPO_ROOT)),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bad_step_or_pipelines_paths_exit_with_code_2_and_one_line(tmp_path):
    for args, message in (
        (
            ("step", "no.such.module:Thing", "--manager", "tcp://127.0.0.1:1"),
            "cannot import 'no.such.module'",
        ),
        (("step", "nope", "--manager", "tcp://127.0.0.1:1"), "unknown step 'nope'"),
        (("manager", "--pipelines", str(tmp_path / "none.json")), "cannot read pipelines"),
        (("manager", "--heartbeat-timeout", "inf"), "finite, non-negative"),
    ):
        done = _cli(*args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().count("\n") == 0 and message in done.stderr, done.stderr


@pytest.mark.slow
def test_the_custom_step_of_the_docs_runs_through_manager_step_submit_and_status():
    """The walk-through of docs/steps.rst, command by command."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    manager = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentzero.pipeline",
            "manager",
            "--pipelines",
            "examples.pipeline.wordcount:PIPELINES",
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    workers: list[subprocess.Popen] = []
    try:
        status = manager.stdout.readline().split()[1]
        for step in ("Normalize", "CountWords"):
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "agentzero.pipeline",
                        "step",
                        f"examples.pipeline.wordcount:{step}",
                        "--manager",
                        status,
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
            )
        text = json.dumps({"text": "The cat saw the other cat"})
        submitted = _cli("submit", "--manager", status, "--pipeline", "wordcount", "--instructions", text)
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.strip()
        no_text = _cli("submit", "--manager", status, "--pipeline", "wordcount").stdout.strip()
        deadline = time.monotonic() + 45
        while True:
            answers = [json.loads(_cli("status", "--manager", status, j).stdout) for j in (job_id, no_text)]
            if all(answer["state"] in ("completed", "failed") for answer in answers):
                break
            assert time.monotonic() < deadline, answers
            time.sleep(0.3)
        done, failed = answers
        assert done["state"] == "completed", done
        assert done["result"] == {"total": 6, "top": [["the", 2], ["cat", 2], ["saw", 1]]}
        assert failed["state"] == "failed" and "has no 'text' to count" in failed["error"]["reason"]
        assert failed["attempts"] == 1  # JobFailed is not retried
    finally:
        for process in [*workers, manager]:
            process.send_signal(signal.SIGTERM)
        for process in [*workers, manager]:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.slow
def test_run_shows_how_many_workers_were_killed_and_removes_its_logs_unless_kept(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    args = ("run", "--jobs", "40", "--workers", "2", "--concurrency", "2", "--delay", "0.02")
    done = _cli(*args, "--kill-worker-at", "0.3", env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    killed = re.search(r"killed worker process (\d+) \(", done.stdout)
    assert killed, done.stdout
    row = re.search(r"workers killed\s*│\s*(\S+)\s*│", done.stdout)
    assert row and row.group(1) == "1", done.stdout
    assert re.search(r"failed\s*│\s*0\s*│", done.stdout), done.stdout
    assert not list(tmp_path.glob("agentzero-pipeline-logs-*"))
    kept = _cli("run", "--jobs", "5", "--workers", "1", "--keep-logs", env=env, timeout=120)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    logs = list(tmp_path.glob("agentzero-pipeline-logs-*"))
    assert len(logs) == 1 and str(logs[0]) in kept.stdout.replace("\n", "")
    assert len(list(logs[0].iterdir())) == 3  # one log per worker
