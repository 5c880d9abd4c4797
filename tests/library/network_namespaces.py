"""Linux network namespaces for the pipeline's tests: made with iproute2 (or skipped, saying why), removed."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from typing import Callable, Iterator

import pytest


def ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


def tc(namespace: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ip", "netns", "exec", namespace, "tc", *args], capture_output=True, text=True, timeout=10
    )


def skip_unless_able(*tools: str) -> None:
    """Skip the test, saying why, unless it runs as root and each of ``tools`` (iproute2's) is installed."""
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root")
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"the '{tool}' command (iproute2) is not installed")


def random_subnets(count: int) -> list[str]:
    """``count`` different random ``10.x.y`` prefixes, for a /30 each."""
    nets: list[str] = []
    while len(nets) < count:
        net = f"10.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}"
        if net not in nets:
            nets.append(net)
    return nets


@contextlib.contextmanager
def network_namespaces(names: list[str], setup: list[tuple[str, ...]]) -> Iterator[None]:
    """Add the namespaces ``names`` and run each ``ip`` command of ``setup``; delete the namespaces after.

    The test is skipped, saying why, at the first command that fails.
    Deleting a namespace takes the veth ends in it (and their qdiscs) along.
    """
    try:
        for command in [("netns", "add", name) for name in names] + setup:
            done = ip(*command)
            if done.returncode != 0:
                pytest.skip(
                    f"cannot set up network namespaces: 'ip {' '.join(command)}': {done.stderr.strip()}"
                )
        yield
    finally:
        for name in names:
            ip("netns", "del", name)


def in_ns(namespace: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", namespace, sys.executable, "-m", "agentzero.pipeline", *args]


def start_manager(
    processes: list[subprocess.Popen], namespace: str, address: str, env: dict[str, str], *options: str
) -> str:
    """Start a manager on ``address`` in ``namespace``, into ``processes``; return its status address."""
    manager = subprocess.Popen(
        in_ns(namespace, "manager", "--bind", address, *options), env=env, stdout=subprocess.PIPE, text=True
    )
    processes.append(manager)
    status = manager.stdout.readline().split()[1]
    assert status.startswith(f"tcp://{address}:"), status
    return status


def pipeline_cli(
    namespace: str, env: dict[str, str], timeout: float
) -> Callable[..., subprocess.CompletedProcess]:
    """A function that runs ``python -m agentzero.pipeline ARGS...`` in ``namespace`` to its end."""

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            in_ns(namespace, *args), env=env, capture_output=True, text=True, timeout=timeout
        )

    return cli


def manager_stats(cli: Callable[..., subprocess.CompletedProcess], status: str) -> dict:
    """The ``stats`` of the manager whose status socket is ``status``, asked through ``cli``."""
    answer = cli("status", "--manager", status, "stats")
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)


def stop_all(processes: list[subprocess.Popen]) -> None:
    """Terminate every one of ``processes``, then wait for each (10 s at most) and kill what is left."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
