"""A node runner: hosts one node of the graph and follows the command node's orders.

Sockets (one SocketManager, polled together):

- ``commands`` SUB, connected to the command node's PUB: every command;
- ``command`` DEALER, connected to the command node's ROUTER: identify, status, events, errors;
- ``outbox`` PUB, bound: this node's events, and a status beacon, for the nodes it feeds;
- ``peers`` SUB, connected to the outboxes of the nodes that feed its slots.

Statuses follow the seed: ``stopped`` (no node instantiated, responsive),
``waiting`` (initialised, waiting for the nodes it depends on), ``ready``,
``running`` (free-run) and ``closed`` (gone).
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any

import gevent

from agentzero.core import SocketManager
from agentzero.errors import DeserializationError
from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.nodegraph.graph import NodeSpec
from examples.nodegraph.messages import (
    AnnounceMsg,
    DeinitMsg,
    EpochEndedMsg,
    ErrorMsg,
    Event,
    EventMsg,
    IdentifyMsg,
    InitMsg,
    Message,
    MessageSerializer,
    MetaEvent,
    NodeStatus,
    PingMsg,
    ProcessMsg,
    StartMsg,
    StatusMsg,
    StopMsg,
)

log = logging.getLogger("nodegraph.runner")

#: seconds between two status beacons on the outbox (how dependents learn this node is ready)
BEACON_INTERVAL = 0.05


class NodeRunner:
    """Run ``spec`` for the command node whose PUB and ROUTER are at the given addresses.

    Parameters
    ----------
    outbox_address : str
        where the outbox binds: ``tcp://127.0.0.1:*`` by default, or an ``inproc://``
        address when every runner lives in one process.
    """

    def __init__(
        self,
        spec: NodeSpec,
        command_pub: str,
        command_inbox: str,
        outbox_address: str = "tcp://127.0.0.1:*",
        context: Any = None,
    ) -> None:
        self.spec = spec
        self.node_id = spec.node_id
        self.status = NodeStatus.stopped
        self.node: Any = None
        self.sockets = SocketManager(zmq, context or green_context, serialization_backend=MessageSerializer())
        self.sockets.ensure_and_connect("commands", zmq.SUB, command_pub, zmq.POLLIN)
        self.sockets.set_topic("commands", "")
        self.sockets.ensure_and_connect("command", zmq.DEALER, command_inbox, 0)
        self.sockets.ensure_and_bind("outbox", zmq.PUB, outbox_address, 0)
        self.outbox = self.sockets.addresses["outbox"]
        self._peers: dict[str, str] = {}  # dependency id -> outbox address
        self._peer_status: dict[str, str] = {}
        self._inputs: dict[int, dict[str, Any]] = collections.defaultdict(dict)
        self._announced = False
        self._free_run_left: int | None = None
        self._free_running = False
        self._next_epoch = 0
        self._closing = False

    # -- the loop ----------------------------------------------------------------------------

    def run(self, identify_timeout: float = 30.0) -> None:
        """Identify, then follow commands until closed."""
        beacon = gevent.spawn(self._beacon)
        deadline = time.monotonic() + identify_timeout
        try:
            while not self._closing:
                if not self._announced:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{self.node_id}: no announce from the command node")
                    self._say(IdentifyMsg(node_id=self.node_id, value=self._identity()))
                ready = self.sockets.engage(timeout=100 if not self._announced else 200)
                if self.sockets.sockets["commands"] in ready:
                    self._drain("commands", self._on_command)
                if "peers" in self.sockets.sockets and self.sockets.sockets["peers"] in ready:
                    self._drain("peers", self._on_peer_event)
        finally:
            beacon.kill()
            self.status = NodeStatus.closed
            self._say(StatusMsg(node_id=self.node_id, value=self.status))
            self.sockets.close_all(linger=500)

    def _drain(self, name: str, handler: Any) -> None:
        for _ in range(500):
            try:
                event = self.sockets.recv_event_safe(name, timeout=0)
            except DeserializationError as error:
                log.warning("%s skipped a malformed message on %s: %s", self.node_id, name, error)
                continue
            if event is None:
                return
            handler(event.data)

    def _say(self, message: Message) -> None:
        self.sockets.send_safe("command", message, timeout=1)

    def _set_status(self, status: NodeStatus) -> None:
        if status != self.status:
            self.status = status
            self._say(StatusMsg(node_id=self.node_id, value=status))

    def _identity(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "outbox": self.outbox,
            "status": self.status,
            "signals": list(self.spec.signals),
            "slots": list(self.spec.slots),
        }

    def _beacon(self) -> None:
        while True:
            if "outbox" in self.sockets.sockets:
                beacon = EventMsg(
                    node_id=self.node_id,
                    value=[MetaEvent(node_id=self.node_id, signal="status", value=self.status)],
                )
                self.sockets.publish_safe("outbox", self.node_id, beacon)
            gevent.sleep(BEACON_INTERVAL)

    # -- commands ----------------------------------------------------------------------------

    def _on_command(self, message: Message) -> None:
        if isinstance(message, AnnounceMsg):
            self._on_announce(message)
        elif isinstance(message, PingMsg):
            self._say(StatusMsg(node_id=self.node_id, value=self.status))
        elif isinstance(message, InitMsg):
            self._on_init()
        elif isinstance(message, ProcessMsg):
            if not self.spec.slots and self.node is not None:
                self._compute(message.value["epoch"], input=message.value.get("input"))
        elif isinstance(message, StartMsg):
            self._on_start(message.value)
        elif isinstance(message, EpochEndedMsg):
            self._on_epoch_ended(message.value)
        elif isinstance(message, StopMsg):
            if self.status == NodeStatus.stopped:
                self._closing = True  # stop when already stopped: the runner goes away
            else:
                self._free_running = False
                self._set_status(NodeStatus.ready)
        elif isinstance(message, DeinitMsg):
            self._on_deinit()

    def _on_announce(self, message: AnnounceMsg) -> None:
        nodes = message.value["nodes"]
        if not self._announced:
            for dependency in sorted(self.spec.depends_on):
                if dependency not in nodes:
                    raise RuntimeError(f"{self.node_id}: the announce lacks dependency {dependency!r}")
                self._peers[dependency] = nodes[dependency]["outbox"]
            self._connect_peers()
            self._announced = True
        self._say(StatusMsg(node_id=self.node_id, value=self.status))

    def _connect_peers(self) -> None:
        if not self._peers or "peers" in self.sockets.sockets:
            return
        self.sockets.create("peers", zmq.SUB)
        for dependency, address in self._peers.items():
            self.sockets.set_topic("peers", dependency)
            self.sockets.connect("peers", address, zmq.POLLIN)

    def _on_init(self) -> None:
        if self.node is None:
            self.node = self.spec.factory()
            if "outbox" not in self.sockets.sockets:  # re-initialised after a deinit
                self.sockets.ensure_and_bind("outbox", zmq.PUB, self.outbox, 0)
                self._connect_peers()
            self._peer_status.clear()
            self._inputs.clear()
            self._next_epoch = 0
        self._set_status(NodeStatus.waiting if self.spec.depends_on else NodeStatus.ready)
        self._check_dependencies()

    def _on_deinit(self) -> None:
        self.node = None
        self._free_running = False
        for name in ("peers", "outbox"):
            self.sockets.close(name, linger=0)
        self._set_status(NodeStatus.stopped)

    def _on_start(self, epochs: int | None) -> None:
        if self.node is None:
            return
        self._free_running = True
        self._free_run_left = epochs
        self._set_status(NodeStatus.running)
        if not self.spec.slots:
            self._compute(self._next_epoch)

    def _on_epoch_ended(self, epoch: int) -> None:
        self._inputs.pop(epoch, None)
        if not self._free_running:
            return
        if self._free_run_left is not None:
            self._free_run_left -= 1
            if self._free_run_left <= 0:
                self._free_running = False
                self._set_status(NodeStatus.ready)
                return
        if not self.spec.slots:
            self._compute(epoch + 1)

    # -- events between nodes --------------------------------------------------------------------

    def _on_peer_event(self, message: Message) -> None:
        if not isinstance(message, EventMsg):
            return
        for item in message.value:
            if isinstance(item, MetaEvent):
                if item.signal == "status":
                    self._peer_status[item.node_id] = item.value
                    self._check_dependencies()
                continue
            for slot, source in self.spec.slots.items():
                if source == f"{item.node_id}.{item.signal}":
                    self._inputs[item.epoch][slot] = item.value
            if self.node is not None and len(self._inputs[item.epoch]) == len(self.spec.slots):
                self._compute(item.epoch, **self._inputs.pop(item.epoch))

    def _check_dependencies(self) -> None:
        if self.status != NodeStatus.waiting:
            return
        live = (NodeStatus.ready.value, NodeStatus.running.value)
        if all(self._peer_status.get(dependency) in live for dependency in self.spec.depends_on):
            self._set_status(NodeStatus.ready)

    def _compute(self, epoch: int, **slots: Any) -> None:
        self._next_epoch = epoch + 1
        try:
            outputs = self.node(epoch, **slots)
        except Exception as error:
            self._say(ErrorMsg.from_exception(self.node_id, error))
            return
        outputs = outputs or {}
        events = [
            Event(node_id=self.node_id, signal=signal, epoch=epoch, value=outputs.get(signal))
            for signal in self.spec.signals
        ]
        message = EventMsg(node_id=self.node_id, value=events)
        self.sockets.publish_safe("outbox", self.node_id, message)
        self._say(message)
