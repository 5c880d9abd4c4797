"""Live: upstream noob 1002's ZeroMQ command node drives our node runners over ipc://.

Upstream's ``CommandNode`` runs in its asyncio thread as its ``ZMQRunner`` runs
it; our runners are real processes (``examples.nodegraph.run_node``) whose
outboxes bind ``ipc://`` paths beside upstream's. Upstream's command node has no
call for ``init`` (its runners initialise at start), so the test publishes
upstream's own ``InitMsg`` on upstream's own command socket, as it would any
command. Needs ``noob[zmq]==1002.0.0`` (Python >= 3.11).
"""

from __future__ import annotations

import asyncio
import collections
import shutil
import tempfile
import threading
import time
import uuid
import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # noob warns when XDG_RUNTIME_DIR is unset
    pytest.importorskip("noob.runner.zmq", reason="noob[zmq] 1002 is not installed (it needs Python >= 3.11)")
    from noob.config import config
    from noob.network.message import DeinitMsg, InitMsg, MessageType
    from noob.runner.zmq.command import CommandNode as UpstreamCommandNode
    from noob_core import Epoch

from examples.nodegraph.graph import GRAPHS, run_locally  # noqa: E402
from examples.processes import spawn_module, stop_processes  # noqa: E402

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


class Upstream:
    """Upstream's command node in its thread, with a record of every event it heard."""

    def __init__(self) -> None:
        self.command = UpstreamCommandNode(runner_id=f"az-interop-{uuid.uuid4().hex[:8]}")
        self.thread = threading.Thread(target=self.command.run, daemon=True)
        self.thread.start()
        if not self.command._init.wait(10):
            raise TimeoutError("upstream's command node did not start")
        self.reports: dict[int, dict[str, dict]] = collections.defaultdict(dict)
        self.errors: list = []
        self.command.add_callback("inbox", self.on_event)
        self.command.add_callback("router", self.on_router)

    async def on_event(self, message) -> None:
        if message.type_ == MessageType.event:
            for event in message.value:
                if event["node_id"] != "meta":
                    self.reports[int(event["epoch"].root)][event["node_id"]] = event["value"]

    async def on_router(self, message) -> None:
        if message.type_ == MessageType.error:
            self.errors.append(message)

    def publish(self, topic: bytes, message) -> None:
        outbox = self.command.sockets["outbox"]
        self.command.loop.call_soon_threadsafe(outbox.send_multipart, [topic, message.to_bytes()])

    def statuses(self) -> dict[str, str]:
        return {node: identity["status"] for node, identity in dict(self.command._nodes).items()}

    def wait(self, done, timeout: float, what: str, every=None) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}; statuses {self.statuses()}")
            if every is not None:
                every()
            time.sleep(0.2)

    def stop(self) -> None:
        self.command.deinit()
        self.thread.join(5)
        shutil.rmtree(config.tmp_dir / self.command.runner_id, ignore_errors=True)


def test_upstreams_command_node_drives_our_runners_over_ipc():
    specs = GRAPHS["demo"]()
    nodes = [spec.node_id for spec in specs]
    upstream = Upstream()
    outboxes = tempfile.mkdtemp(prefix="az-ng-")
    runners = [
        spawn_module(
            "examples.nodegraph.run_node",
            "demo",
            node,
            upstream.command.pub_address,
            upstream.command.router_address,
            f"ipc://{outboxes}/{node}",
        )
        for node in nodes
    ]
    try:
        upstream.wait(lambda: set(upstream.statuses()) == set(nodes), 30, "our runners to identify")
        assert set(upstream.statuses().values()) == {"stopped"}
        init = InitMsg(node_id="command")
        upstream.wait(
            lambda: set(upstream.statuses().values()) == {"ready"},
            30,
            "our runners to be ready",
            every=lambda: upstream.publish(b"init", init),
        )
        upstream.command.await_ready(nodes, timeout=10)  # upstream's own check agrees

        epochs = 20
        for epoch in range(epochs):
            upstream.command.process(Epoch(epoch), None)
            upstream.wait(lambda e=epoch: len(upstream.reports[e]) == len(nodes), 10, f"epoch {epoch}")
            asyncio.run_coroutine_threadsafe(
                upstream.command.epoch_ended(Epoch(epoch)), upstream.command.loop
            )
        expected = run_locally(specs, epochs)
        assert upstream.reports[epochs - 1] == {
            node: values[next(iter(values))] for node, values in expected.items()
        }
        assert upstream.errors == []

        upstream.publish(b"deinit", DeinitMsg(node_id="command"))
        upstream.wait(lambda: set(upstream.statuses().values()) == {"stopped"}, 10, "our runners to deinit")
        upstream.command.stop()  # stop when stopped: our runners leave
        deadline = time.monotonic() + 10
        while any(runner.poll() is None for runner in runners) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [runner.poll() for runner in runners] == [0] * len(runners)
    finally:
        stop_processes(runners, timeout=5)
        upstream.stop()
        shutil.rmtree(outboxes, ignore_errors=True)
