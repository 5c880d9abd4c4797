"""The pipeline across three hosts: a manager and two worker hosts in network namespaces (issue 21).

The manager runs in one Linux network namespace; the workers in two others,
each joined to the manager's by a veth pair of its own whose addresses (a
random 10.x.y.0/30 each) exist only inside those namespaces. The second
worker host reaches the manager's address through the manager's host (a
route), as a host behind a router would. ``tc netem`` adds 20 ms on both
ends of each link: 20 ms each way. The test creates and removes everything;
it needs root, iproute2 and the kernel's netem qdisc, and is skipped, saying
why, without. ``PIPELINE_NETNS_WITHOUT_NETEM=1`` runs it without the added
latency where netem is missing.

Every job must complete exactly once (each step's result accepted once, the
right hash, no file left); the test prints the throughput it saw.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from agentzero.pipeline.builtin_steps import file_content
from tests.library.network_namespaces import (
    in_ns,
    manager_stats,
    network_namespaces,
    pipeline_cli,
    random_subnets,
    skip_unless_able,
    start_manager,
    stop_all,
    tc,
)

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["generate-file", "calculate-hash", "delete-file"]
JOBS = 100
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def hosts():
    """Three namespaces: ``{"manager": (ns, ip), "w1": (ns, ip), "w2": (ns, ip)}``, 20 ms per link."""
    skip_unless_able("ip", "tc")
    tag = secrets.token_hex(3)
    names = {"manager": f"az-m-{tag}", "w1": f"az-a-{tag}", "w2": f"az-b-{tag}"}
    nets = random_subnets(2)
    links = []  # (manager end, worker end, worker ns, manager ip, worker ip)
    for number, (worker, net) in enumerate(zip(("w1", "w2"), nets)):
        links.append((f"azm{number}{tag}", f"azw{number}{tag}", names[worker], f"{net}.1", f"{net}.2"))
    setup = []
    for manager_end, worker_end, worker_ns, manager_ip, worker_ip in links:
        setup += [
            ("link", "add", manager_end, "type", "veth", "peer", "name", worker_end),
            ("link", "set", manager_end, "netns", names["manager"]),
            ("link", "set", worker_end, "netns", worker_ns),
            ("-n", names["manager"], "addr", "add", f"{manager_ip}/30", "dev", manager_end),
            ("-n", worker_ns, "addr", "add", f"{worker_ip}/30", "dev", worker_end),
            ("-n", names["manager"], "link", "set", manager_end, "up"),
            ("-n", worker_ns, "link", "set", worker_end, "up"),
            ("-n", worker_ns, "link", "set", "lo", "up"),
            ("-n", worker_ns, "route", "add", "default", "via", manager_ip),
        ]
    setup.append(("-n", names["manager"], "link", "set", "lo", "up"))
    latency = "20 ms per link"
    with network_namespaces(list(names.values()), setup):
        for manager_end, worker_end, worker_ns, _, _ in links:
            for namespace, device in ((names["manager"], manager_end), (worker_ns, worker_end)):
                done = tc(namespace, "qdisc", "add", "dev", device, "root", "netem", "delay", "20ms")
                if done.returncode != 0:
                    if not os.environ.get("PIPELINE_NETNS_WITHOUT_NETEM"):
                        pytest.skip(f"cannot add 20 ms of latency with tc netem: {done.stderr.strip()}")
                    latency = "no added latency (PIPELINE_NETNS_WITHOUT_NETEM)"
        manager_ip = links[0][3]  # the workers of the second host reach it through the manager's host
        yield {
            "manager": (names["manager"], manager_ip),
            "w1": (names["w1"], links[0][4]),
            "w2": (names["w2"], links[1][4]),
            "latency": latency,
        }


def test_three_hosts_with_20ms_links_complete_every_job_exactly_once(hosts, tmp_path):
    manager_ns, manager_ip = hosts["manager"]
    journal = tmp_path / "journal.sqlite3"
    env = dict(os.environ, PYTHONPATH=str(ROOT), AGENTZERO_PIPELINE_DIR=str(tmp_path / "files"))
    processes: list[subprocess.Popen] = []

    cli = pipeline_cli(manager_ns, env, 60)

    try:
        status = start_manager(processes, manager_ns, manager_ip, env, "--journal", str(journal))
        for host in ("w1", "w2"):
            worker_ns, worker_ip = hosts[host]
            for step in STEPS:
                command = in_ns(
                    worker_ns, "step", step, "--manager", status, "--bind", worker_ip, "--concurrency", "4"
                )
                processes.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL))

        def stats() -> dict:
            return manager_stats(cli, status)

        deadline = time.monotonic() + 60
        while sum(stats()["workers"].values()) < 6:
            assert time.monotonic() < deadline, "the workers did not join across the links"
            time.sleep(0.2)
        instructions = json.dumps({"size": 4096, "seed": "across-hosts"})
        started = time.monotonic()
        submitted = cli(
            "submit",
            "--manager",
            status,
            "--count",
            str(JOBS),
            "--job-id",
            "net",
            "--instructions",
            instructions,
        )
        assert submitted.returncode == 0, submitted.stderr
        deadline = time.monotonic() + 120
        while (final := stats())["completed"] + final["failed"] < JOBS:
            assert time.monotonic() < deadline, final
            time.sleep(0.2)
        wall = time.monotonic() - started
        assert final["completed"] == JOBS and final["failed"] == 0, final
        assert final["completed_per_step"] == {step: JOBS for step in STEPS}
        assert final["bad_messages"] == {}
        print(f"across three hosts, {hosts['latency']}: {JOBS} jobs in {wall:.2f}s, {JOBS / wall:.1f} jobs/s")
    finally:
        stop_all(processes)
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        rows = {job_id: (state, json.loads(text)) for job_id, state, text in db.execute("SELECT * FROM jobs")}
    db.close()
    assert sorted(rows) == sorted(f"net-{n}" for n in range(JOBS))
    expected = hashlib.sha256(file_content("across-hosts", 4096)).hexdigest()
    for job_id, (state, record) in rows.items():
        assert state == "completed" and [step for step, _ in record["passed"]] == STEPS, job_id
        assert record["result"]["sha256"] == expected, job_id
    assert not list((tmp_path / "files").glob("job-*.bin"))
