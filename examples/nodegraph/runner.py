"""A node runner: hosts one node of the graph and follows the command node's orders.

Sockets (one SocketManager, polled together):

- ``commands`` SUB, connected to the command node's PUB: every command;
- ``command`` DEALER, connected to the command node's ROUTER: identify, status, errors;
- ``outbox`` PUB, bound: this node's events, for the command node and the nodes it feeds;
- ``peers`` SUB, connected to the outboxes of the nodes that feed its slots.

As upstream noob does, events go out on the outbox only (``[b"event", message]``),
a ping is answered with an identify, and an announce is answered only when the
announce shows a stale status for this node. Statuses follow the seed:
``stopped`` (no node instantiated, responsive), ``waiting`` (initialised, not yet
hearing every node it depends on), ``ready``, ``running`` (free-run), ``closed``.
In free-run a source computes the ``n`` epochs of ``start(n)``, pacing itself on
``epoch_ended``; a node fed by others computes whenever its inputs arrive, and
goes back to ``ready`` on ``stop``.

The runner leaves on its own when it loses its command node: the DEALER
heartbeats (ZMTP PING, answered by any libzmq ROUTER), and once its connection
is down for :data:`ORPHAN_GRACE` seconds :meth:`NodeRunner.run` returns
``"orphaned"``.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Callable

import zmq as plain_zmq

from agentzero.core import SocketManager
from agentzero.errors import MessageTooLarge, SocketClosed
from agentzero.zero import context as green_context
from agentzero.zero import zmq as green_zmq
from examples.nodegraph.frames import read_event
from examples.nodegraph.graph import NodeSpec
from examples.nodegraph.links import Links, valid_endpoint
from examples.nodegraph.messages import (
    AnnounceMsg,
    DeinitMsg,
    EpochEndedMsg,
    ErrorMsg,
    Event,
    EventMaker,
    EventMsg,
    IdentifyMsg,
    InitMsg,
    MalformedMessage,
    Message,
    MessageSerializer,
    MetaSignal,
    NodeStatus,
    PingMsg,
    ProcessMsg,
    StartMsg,
    StatusMsg,
    StopMsg,
    root_epoch,
)

log = logging.getLogger("nodegraph.runner")

#: seconds without a connection to the command node after which a runner leaves
ORPHAN_GRACE = 1.0
#: ZMTP heartbeat on the DEALER, in milliseconds: a frozen command node counts as lost
HEARTBEAT_IVL, HEARTBEAT_TIMEOUT = 400, 1200
#: seconds between two identify messages until the first announce arrives (upstream's command
#: node connects to the outbox again on every identify, so not too often)
IDENTIFY_INTERVAL = 0.5
#: the longest single wait of the loop, in seconds (how soon a lost command node is noticed)
POLL_INTERVAL = 0.1
#: the largest message accepted from any peer, in bytes
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: epochs whose inputs are kept while incomplete
MAX_PENDING_EPOCHS = 1024
EVENT_TOPIC = b"event"
#: the commands a node fed by other nodes subscribes to
DEPENDENT_TOPICS = ("announce", "ping", "init", "deinit", "start", "stop")


class NodeRunner:
    """Run ``spec`` for the command node whose PUB and ROUTER are at the given addresses.

    Parameters
    ----------
    spec : NodeSpec
        the node this runner hosts
    command_pub, command_inbox : str
        the command node's PUB and ROUTER endpoints
    outbox_address : str
        where the outbox binds: ``tcp://127.0.0.1:*`` by default, or an ``inproc://``
        address when every runner lives in one process.
    context : zmq.Context, optional
        defaults to agentzero's green context (runners as greenlets); a runner
        alone in its process passes a plain ``zmq.Context`` (faster).
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
        self.skipped = 0
        plain = context is not None and not isinstance(context, green_zmq.Context)
        self.zmq = plain_zmq if plain else green_zmq
        self.sockets = SocketManager(
            self.zmq,
            context or green_context,
            serialization_backend=MessageSerializer(),
            max_message_size=MAX_MESSAGE_BYTES,
        )
        self.sockets.ensure_and_connect("commands", self.zmq.SUB, command_pub, self.zmq.POLLIN)
        # A node fed by others has no use for process nor epoch_ended (it runs when its inputs
        # arrive, and free-runs until stop): PUB-side filtering spares it two wake-ups per epoch.
        # Upstream's command node uses the message type as the topic too.
        for topic in ("",) if not spec.slots else DEPENDENT_TOPICS:
            self.sockets.set_topic("commands", topic)
        self.sockets.create("command", self.zmq.DEALER)
        self.sockets.set_socket_option("command", self.zmq.HEARTBEAT_IVL, HEARTBEAT_IVL)
        self.sockets.set_socket_option("command", self.zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT)
        self.command_link = Links(self.sockets, "command")
        # read by the clock: a lost command node is noticed within POLL_INTERVAL, well inside ORPHAN_GRACE
        self.command_link.connect(command_inbox, 0)
        self.sockets.ensure_and_bind("outbox", self.zmq.PUB, outbox_address, 0)
        self.outbox = self.sockets.addresses["outbox"]
        self.events = EventMaker(self.node_id)
        self.peer_link: Links | None = None
        self._peers: dict[str, str] = {}  # dependency id -> outbox address
        self._slots_fed_by: dict[str, list[str]] = {}  # "node.signal" -> the slots it feeds
        for slot, source in spec.slots.items():
            self._slots_fed_by.setdefault(source, []).append(slot)
        self._inputs: dict[Any, dict[str, Any]] = collections.OrderedDict()
        self._announced = False
        self._free_run_left: int | None = None
        self._free_running = False
        self._in_flight: Any = None  # the epoch a free-running source computed last
        self._next_epoch = 0
        self._closing = False
        self._handlers: dict[type, Callable[[Any], None]] = {
            AnnounceMsg: self._on_announce,
            PingMsg: lambda message: self._say(IdentifyMsg(node_id=self.node_id, value=self._identity())),
            InitMsg: lambda message: self._on_init(),
            ProcessMsg: self._on_process,
            StartMsg: lambda message: self._on_start(message.value),
            EpochEndedMsg: lambda message: self._on_epoch_ended(message.value),
            StopMsg: lambda message: self._on_stop(),
            DeinitMsg: lambda message: self._on_deinit(),
        }

    # -- the loop ----------------------------------------------------------------------------

    def run(self, identify_timeout: float = 30.0) -> str:
        """Identify, then follow commands until closed or orphaned.

        Returns
        -------
        str
            ``"closed"`` when told to go, ``"orphaned"`` when the command node was lost.

        Raises
        ------
        TimeoutError
            when no announce came within ``identify_timeout`` seconds.
        """
        deadline = time.monotonic() + identify_timeout
        next_identify = next_link_check = 0.0
        commands = self.sockets.sockets["commands"]
        outcome = "closed"
        try:
            while not self._closing:
                now = time.monotonic()
                if not self._announced and now >= next_identify:
                    if now > deadline:
                        raise TimeoutError(f"{self.node_id}: no announce from the command node")
                    self._say(IdentifyMsg(node_id=self.node_id, value=self._identity()))
                    next_identify = now + IDENTIFY_INTERVAL
                if now >= next_link_check:
                    self.command_link.drain()
                    next_link_check = now + POLL_INTERVAL
                lost_at = self.command_link.lost_at
                if lost_at is not None and now - lost_at > ORPHAN_GRACE:
                    log.warning("%s lost its command node; leaving", self.node_id)
                    outcome = "orphaned"
                    break
                ready = self.sockets.engage(timeout=POLL_INTERVAL * 1000)
                if commands in ready:
                    self._drain("commands", self._on_command)
                peers = self.sockets.sockets.get("peers")
                if peers is not None and peers in ready:
                    self._drain("peers", self._on_peer_message, self._on_peer_event)
                if self.peer_link is not None and self.peer_link.watching:
                    self.peer_link.drain()  # until linked for good (see _check_dependencies)
                    self._check_dependencies()
        finally:
            self.status = NodeStatus.closed
            if outcome == "closed":
                self._say(StatusMsg(node_id=self.node_id, value=self.status))
            if self.peer_link is not None:
                self.peer_link.close()
            self.command_link.close()
            self.sockets.close_all(linger=0)
        return outcome

    def _drain(
        self,
        name: str,
        handler: Callable[[Message], None],
        on_events: Callable[[str, list], None] | None = None,
    ) -> None:
        # Hot path: raw frames, at most 256 messages a turn; an epoch_ended nobody free-runs on
        # is not even parsed, and a plain event builds no model.
        try:
            for frames in self.sockets.drain_multipart_safe(name, 256):
                self._handle_frames(name, frames, handler, on_events)
        except (MessageTooLarge, SocketClosed) as error:  # over the bounds, or gone
            self.skipped += 1
            log.warning("%s skipped a message on %s: %.200s", self.node_id, name, error)

    def _handle_frames(
        self,
        name: str,
        frames: list[bytes],
        handler: Callable[[Message], None],
        on_events: Callable[[str, list], None] | None,
    ) -> None:
        if len(frames) != 2:
            self.skipped += 1
            log.warning("%s skipped a %d-frame message on %s", self.node_id, len(frames), name)
            return
        if frames[0] == b"epoch_ended" and not self._free_running:
            return
        if on_events is not None:
            fast = read_event(frames[1])
            if fast is not None:
                on_events(*fast)
                return
        try:
            message = Message.from_bytes(frames)
        except MalformedMessage as error:
            self.skipped += 1
            log.warning("%s skipped a malformed message on %s: %.200s", self.node_id, name, error)
            return
        handler(message)

    def _say(self, message: Message) -> None:
        if "command" in self.sockets.sockets:
            self.sockets.send_safe("command", message, timeout=0.2)

    def _set_status(self, status: NodeStatus) -> None:
        if status != self.status:
            self.status = status
            self._say(StatusMsg(node_id=self.node_id, value=status))

    def _identity(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "outbox": self.outbox,
            "status": self.status,
            "signals": list(self.spec.signals) or None,
            "slots": list(self.spec.slots) or None,
        }

    # -- commands ----------------------------------------------------------------------------

    def _on_command(self, message: Message) -> None:
        handler = self._handlers.get(type(message))
        if handler is None:
            self.skipped += 1
            log.warning("%s skipped an unexpected %s command", self.node_id, message.type_)
        else:
            handler(message)

    def _on_announce(self, message: AnnounceMsg) -> None:
        nodes = message.value["nodes"]
        if not self._announced:
            missing = [dependency for dependency in self.spec.depends_on if dependency not in nodes]
            bad = [d for d in self.spec.depends_on if d in nodes and not valid_endpoint(nodes[d]["outbox"])]
            if missing or bad:
                log.info("%s waits for an announce with %s", self.node_id, sorted(missing + bad))
                return
            self._peers = {dependency: nodes[dependency]["outbox"] for dependency in self.spec.depends_on}
            self._announced = True
            self._connect_peers()
            self._check_dependencies()
        mine = nodes.get(self.node_id)
        if mine is None:
            self._say(IdentifyMsg(node_id=self.node_id, value=self._identity()))
        elif mine["status"] != self.status.value:
            self._say(StatusMsg(node_id=self.node_id, value=self.status))

    def _connect_peers(self) -> None:
        if not self._peers or self.peer_link is not None:
            return
        self.sockets.create("peers", self.zmq.SUB)
        self.sockets.set_topic("peers", "")
        self.peer_link = Links(self.sockets, "peers")
        for address in self._peers.values():
            self.peer_link.connect(address)

    def _on_init(self) -> None:
        if self.node is None:
            self.node = self.spec.factory()
            if "outbox" not in self.sockets.sockets:  # re-initialised after a deinit
                self.sockets.ensure_and_bind("outbox", self.zmq.PUB, self.outbox, 0)
                self._connect_peers()
            self._inputs.clear()
            self._next_epoch = 0
            self._set_status(NodeStatus.waiting if self.spec.depends_on else NodeStatus.ready)
        self._check_dependencies()

    def _check_dependencies(self) -> None:
        if self.status != NodeStatus.waiting or not self._announced:
            return
        if self.peer_link is not None and self.peer_link.linked(self._peers.values()):
            self.peer_link.stop_watching()  # linked for good: a PUB's subscribers reconnect by themselves
            self._set_status(NodeStatus.ready)

    def _on_deinit(self) -> None:
        self.node = None
        self._free_running = False
        if self.peer_link is not None:
            self.peer_link.close()
            self.peer_link = None
        self.sockets.close("outbox", linger=0)
        self._set_status(NodeStatus.stopped)

    def _on_stop(self) -> None:
        if self.status == NodeStatus.stopped:
            self._closing = True  # stop when already stopped: the runner goes away
        elif self.status == NodeStatus.running:
            self._free_running = False
            self._set_status(NodeStatus.ready)

    def _on_process(self, message: ProcessMsg) -> None:
        if not self.spec.slots and self.node is not None and self.status == NodeStatus.ready:
            self._compute(message.value["epoch"], input=message.value.get("input"))

    def _on_start(self, epochs: int | None) -> None:
        if self.node is None or self.status not in (NodeStatus.ready, NodeStatus.running):
            return
        if epochs is not None and epochs < 1:
            self.skipped += 1
            log.warning("%s ignored start(%r): the count must be at least 1", self.node_id, epochs)
            return
        self._free_running = True
        self._free_run_left = epochs
        self._set_status(NodeStatus.running)
        if not self.spec.slots:
            self._in_flight = self._next_epoch
            self._compute(self._next_epoch)

    def _on_epoch_ended(self, epoch: Any) -> None:
        # only sources hear this: they pace themselves on the end of the epoch they started
        if not self._free_running or epoch != self._in_flight:
            return
        if self._free_run_left is not None:
            self._free_run_left -= 1
            if self._free_run_left <= 0:
                self._free_running = False
                self._set_status(NodeStatus.ready)
                return
        self._in_flight = root_epoch(epoch) + 1
        self._compute(self._in_flight)

    # -- events between nodes --------------------------------------------------------------------

    def _on_peer_message(self, message: Message) -> None:
        # what read_event left to the models: meta events, pickled values, or not an event at all
        if not isinstance(message, EventMsg):
            self.skipped += 1
            return
        items = [
            (item.node_id, item.signal, item.epoch, item.value)
            for item in message.value
            if type(item) is Event
        ]
        self._on_peer_event(message.node_id, items)  # meta events carry nothing for our slots

    def _on_peer_event(self, node_id: str, items: list[tuple[str, str, Any, Any]]) -> None:
        """``items`` (``(node_id, signal, epoch, value)``, no meta events) from ``node_id``'s outbox."""
        if node_id not in self._peers:
            self.skipped += 1
            return
        for source, signal, epoch, value in items:
            if source != node_id:
                self.skipped += 1  # a node reports only for itself
                continue
            slots = self._slots_fed_by.get(f"{source}.{signal}")
            if not slots:
                continue
            inputs = self._inputs.get(epoch)
            if inputs is None:
                if len(self._inputs) >= MAX_PENDING_EPOCHS:
                    self._inputs.popitem(last=False)
                inputs = self._inputs[epoch] = {}
            for slot in slots:
                inputs[slot] = value
            if self.node is not None and len(inputs) == len(self.spec.slots):
                del self._inputs[epoch]
                self._compute(epoch, **inputs)

    def _compute(self, epoch: Any, **slots: Any) -> None:
        self._next_epoch = root_epoch(epoch) + 1
        if any(value is MetaSignal.NoEvent for value in slots.values()):
            outputs: dict = {}  # an input that emitted nothing: so does this node
        else:
            try:
                outputs = self.node(root_epoch(epoch), **slots) or {}
            except Exception as error:
                self._say(ErrorMsg.from_exception(self.node_id, error))
                return
        try:
            frame = self.events.frame(
                epoch, [(signal, outputs.get(signal, MetaSignal.NoEvent)) for signal in self.spec.signals]
            )
        except TypeError as error:
            self._say(ErrorMsg.from_exception(self.node_id, error))
            return
        # libzmq attaches a new subscriber when the PUB next processes its commands, which a send
        # may skip for up to a millisecond; asking for EVENTS processes them at once, so an event
        # sent right after a dependent linked reaches it.
        self.sockets.ready("outbox", plain_zmq.POLLOUT, timeout=0)
        self.sockets.publish_safe("outbox", EVENT_TOPIC, frame)
