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
import subprocess
import time

import pytest

from examples.processes import REPO_ROOT
from tests.library.network_namespaces import (
    in_ns,
    ip,
    manager_stats,
    network_namespaces,
    pipeline_cli,
    random_subnets,
    skip_unless_able,
    start_manager,
    stop_all,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

JOBS = 60


@pytest.fixture
def namespaces():
    """Two namespaces joined by a veth pair: ``(manager ns, worker ns, manager ip, worker ip, link)``."""
    skip_unless_able("ip")
    tag = secrets.token_hex(3)
    manager_ns, worker_ns = f"az-m-{tag}", f"az-w-{tag}"
    manager_link, worker_link = f"azm{tag}", f"azw{tag}"
    (net,) = random_subnets(1)
    manager_ip, worker_ip = f"{net}.1", f"{net}.2"
    setup = [
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
    with network_namespaces([manager_ns, worker_ns], setup):
        yield manager_ns, worker_ns, manager_ip, worker_ip, manager_link


def test_a_link_cut_for_5s_and_healed_completes_every_job_exactly_once(namespaces, tmp_path):
    manager_ns, worker_ns, manager_ip, worker_ip, manager_link = namespaces
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), AGENTZERO_PIPELINE_DIR=str(tmp_path / "files"))
    processes: list[subprocess.Popen] = []

    cli = pipeline_cli(manager_ns, env, 30)

    try:
        status = start_manager(processes, manager_ns, manager_ip, env, "--heartbeat-timeout", "2")
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
            return manager_stats(cli, status)

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
        stop_all(processes)
