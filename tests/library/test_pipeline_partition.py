"""A network partition between the manager and its workers, cut for 5 s mid-run and healed.

The manager runs in one Linux network namespace, the workers in another,
joined by a veth pair whose two addresses exist only inside those namespaces
(a random 10.x.y.0/30, invisible to this machine's own network). The test
creates and removes them; it needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and
is skipped, saying why, without.

While the link is down no connection breaks (no reset crosses it): the manager
drops the silent workers after its heartbeat timeout; once the link is back,
they announce themselves again and are taken in again, and their results of
before the cut are stale. Every job must complete, each step accepted once.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time

import pytest

from examples.processes import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

JOBS = 60


def ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


@pytest.fixture
def namespaces():
    """Two namespaces joined by a veth pair: ``(manager ns, worker ns, manager ip, worker ip, link)``."""
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root")
    if shutil.which("ip") is None:
        pytest.skip("the 'ip' command (iproute2) is not installed")
    tag = secrets.token_hex(3)
    manager_ns, worker_ns = f"az-m-{tag}", f"az-w-{tag}"
    manager_link, worker_link = f"azm{tag}", f"azw{tag}"
    net = f"10.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}"
    manager_ip, worker_ip = f"{net}.1", f"{net}.2"
    setup = [
        ("netns", "add", manager_ns),
        ("netns", "add", worker_ns),
        ("link", "add", manager_link, "type", "veth", "peer", "name", worker_link),
        ("link", "set", manager_link, "netns", manager_ns),
        ("link", "set", worker_link, "netns", worker_ns),
        ("-n", manager_ns, "addr", "add", f"{manager_ip}/30", "dev", manager_link),
        ("-n", worker_ns, "addr", "add", f"{worker_ip}/30", "dev", worker_link),
        ("-n", manager_ns, "link", "set", manager_link, "up"),
        ("-n", worker_ns, "link", "set", worker_link, "up"),
        ("-n", manager_ns, "link", "set", "lo", "up"),
        ("-n", worker_ns, "link", "set", "lo", "up"),
    ]
    try:
        for command in setup:
            done = ip(*command)
            if done.returncode != 0:
                pytest.skip(
                    f"cannot set up network namespaces: 'ip {' '.join(command)}': {done.stderr.strip()}"
                )
        yield manager_ns, worker_ns, manager_ip, worker_ip, manager_link
    finally:
        ip("netns", "del", manager_ns)  # takes the veth pair with it
        ip("netns", "del", worker_ns)


def in_ns(namespace: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", namespace, sys.executable, "-m", "agentzero.pipeline", *args]


def test_a_link_cut_for_5s_and_healed_completes_every_job_exactly_once(namespaces, tmp_path):
    manager_ns, worker_ns, manager_ip, worker_ip, manager_link = namespaces
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), AGENTZERO_PIPELINE_DIR=str(tmp_path / "files"))
    processes: list[subprocess.Popen] = []

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(in_ns(manager_ns, *args), env=env, capture_output=True, text=True, timeout=30)

    try:
        manager = subprocess.Popen(
            in_ns(manager_ns, "manager", "--bind", manager_ip, "--heartbeat-timeout", "2"),
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(manager)
        status = manager.stdout.readline().split()[1]
        assert status.startswith(f"tcp://{manager_ip}:"), status
        for step in ("generate-file", "calculate-hash", "delete-file"):
            processes.append(
                subprocess.Popen(
                    in_ns(
                        worker_ns,
                        "step",
                        step,
                        "--manager",
                        status,
                        "--bind",
                        worker_ip,
                        "--concurrency",
                        "2",
                    ),
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
            )

        def stats() -> dict:
            answer = cli("status", "--manager", status, "stats")
            assert answer.returncode == 0, answer.stderr
            return json.loads(answer.stdout)

        deadline = time.monotonic() + 60
        while sum(stats()["workers"].values()) < 3:
            assert time.monotonic() < deadline, "the workers did not join across the link"
            time.sleep(0.2)
        instructions = json.dumps({"size": 2048, "seed": "partition", "delay": 0.1})
        submitted = cli("submit", "--manager", status, "--count", str(JOBS), "--instructions", instructions)
        assert submitted.returncode == 0, submitted.stderr
        while stats()["completed"] < 5:
            assert time.monotonic() < deadline, "no job completed before the cut"
            time.sleep(0.1)

        assert ip("-n", manager_ns, "link", "set", manager_link, "down").returncode == 0
        time.sleep(5)
        assert ip("-n", manager_ns, "link", "set", manager_link, "up").returncode == 0
        during = stats()
        assert during["workers_lost"] >= 1, during  # the silent workers were dropped
        assert during["completed"] < JOBS, "every job was done before the cut: make the run longer"

        deadline = time.monotonic() + 60
        while (final := stats())["completed"] + final["failed"] < JOBS:
            assert time.monotonic() < deadline, final
            time.sleep(0.3)
        assert final["completed"] == JOBS and final["failed"] == 0, final
        assert final["jobs"] == JOBS
        # each step's result accepted exactly once per job
        assert final["completed_per_step"] == {
            "generate-file": JOBS,
            "calculate-hash": JOBS,
            "delete-file": JOBS,
        }
        assert final["bad_messages"] == {}
        assert sum(final["workers"].values()) == 3  # all taken in again
        assert not list((tmp_path / "files").glob("job-*.bin"))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
