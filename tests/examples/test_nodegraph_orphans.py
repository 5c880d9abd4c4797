"""Runner processes leave on their own within a few seconds of losing their command node."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import pytest

from examples.nodegraph.graph import GRAPHS
from examples.processes import REPO_ROOT, spawn_module, stop_processes

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

#: what the issue allows: a few seconds (ORPHAN_GRACE plus the heartbeat time-out, with slack)
EXIT_WITHIN = 3.5

COMMAND = """
import gevent
from examples.nodegraph.command import CommandNode
from examples.nodegraph.graph import GRAPHS
command = CommandNode([spec.node_id for spec in GRAPHS["demo"]()])
print(command.pub_address, command.inbox_address, flush=True)
command.wait_for_nodes(30)
command.init(30)
command.process(0)
print("ready", flush=True)
gevent.sleep(120)
"""


def _line(process: subprocess.Popen, timeout: float) -> str:
    readable, _, _ = select.select([process.stdout], [], [], timeout)
    if not readable:
        raise TimeoutError("the command node process said nothing")
    return process.stdout.readline().decode().strip()


@pytest.fixture
def graph_with_a_command_process():
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    command = subprocess.Popen(
        [sys.executable, "-c", COMMAND], stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=path)
    )
    runners: list[subprocess.Popen] = []
    try:
        pub, inbox = _line(command, 30).split()
        runners.extend(
            spawn_module("examples.nodegraph.run_node", "demo", spec.node_id, pub, inbox)
            for spec in GRAPHS["demo"]()
        )
        assert _line(command, 60) == "ready"
        yield command, runners
    finally:
        stop_processes(runners, timeout=5)
        if command.poll() is None:
            command.kill()
        command.wait()
        command.stdout.close()


def _exit_times(runners: list[subprocess.Popen], since: float, limit: float) -> list[float]:
    times: dict[int, float] = {}
    while len(times) < len(runners) and time.monotonic() - since < limit:
        for index, runner in enumerate(runners):
            if index not in times and runner.poll() is not None:
                times[index] = time.monotonic() - since
        time.sleep(0.02)
    return [times.get(index, float("inf")) for index in range(len(runners))]


def test_runners_leave_within_seconds_of_their_command_node_dying(graph_with_a_command_process):
    command, runners = graph_with_a_command_process
    assert all(runner.poll() is None for runner in runners)
    command.send_signal(signal.SIGKILL)
    took = _exit_times(runners, time.monotonic(), limit=10)
    assert max(took) < EXIT_WITHIN, took
    assert [runner.returncode for runner in runners] == [1] * len(runners)  # 1: orphaned


def test_runners_leave_within_seconds_of_their_command_node_freezing(graph_with_a_command_process):
    command, runners = graph_with_a_command_process
    command.send_signal(signal.SIGSTOP)  # the connection stays open: only the heartbeat notices
    try:
        took = _exit_times(runners, time.monotonic(), limit=10)
    finally:
        command.send_signal(signal.SIGKILL)
    assert max(took) < EXIT_WITHIN, took
    assert [runner.returncode for runner in runners] == [1] * len(runners)


def test_runners_stay_while_their_command_node_lives(graph_with_a_command_process):
    command, runners = graph_with_a_command_process
    time.sleep(EXIT_WITHIN)
    assert command.poll() is None and all(runner.poll() is None for runner in runners)
