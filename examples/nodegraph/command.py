"""The command node: waits for the runners, announces them to each other, and drives them.

Sockets (one SocketManager; under gevent, served by one greenlet all along; with a
plain ``zmq.Context``, served while a call waits, or :meth:`CommandNode.pump`):

- ``commands`` PUB, bound: every command, to every runner (``[type, message]``);
- ``inbox`` ROUTER, bound: identify, status and error messages from the runners;
- ``events`` SUB, connected to each runner's outbox once it identified: its events.

As upstream noob's command node does, it announces the graph on every identify
and hears events on the runners' outboxes. Only the graph's nodes count: an
identify, status, error or event under any other node id (or an event item a
node reports for another node) is counted in :attr:`CommandNode.intruders`,
logged once per node id, and dropped; the command node never connects to an
outbox it was not told about by a node of the graph.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Callable

import gevent
import gevent.event
import zmq as plain_zmq

from agentzero.core import SocketManager
from agentzero.errors import MessageTooLarge, SocketClosed
from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.nodegraph.frames import command_frame, read_event
from examples.nodegraph.links import Links, valid_endpoint
from examples.nodegraph.messages import (
    AnnounceMsg,
    DeinitMsg,
    EpochEndedMsg,
    ErrorMsg,
    Event,
    EventMsg,
    IdentifyMsg,
    InitMsg,
    MalformedMessage,
    Message,
    MessageSerializer,
    NodeStatus,
    PingMsg,
    ProcessMsg,
    RemoteNodeError,
    StartMsg,
    StatusMsg,
    StopMsg,
    now,
    parse_epoch,
)
from examples.nodegraph.runner import MAX_MESSAGE_BYTES

log = logging.getLogger("nodegraph.command")
COMMAND_ID = "command"
#: seconds between two announces while runners are still getting ready
REANNOUNCE_INTERVAL = 0.5
#: seconds between two reads of the events socket's links (its ``socket_events``)
LINK_CHECK_INTERVAL = 0.1
#: completed and pending epochs remembered (late duplicates of older epochs are dropped)
EPOCH_MEMORY = 1024

__all__ = ["COMMAND_ID", "CommandNode", "RemoteNodeError"]


class CommandNode:
    """Drive the runners of ``node_ids``.

    Parameters
    ----------
    node_ids : list of str
        the nodes of the graph: the only ones whose messages count
    pub_address, inbox_address : str
        where the commands PUB and the inbox ROUTER bind (loopback tcp on a free
        port by default; ``inproc://`` when the runners live in this process)
    context : zmq.Context, optional
        agentzero's green context by default; a plain ``zmq.Context`` (no gevent)
        is faster when the runners are other processes.
    timeout : float
        the default for every wait, in seconds
    """

    def __init__(
        self,
        node_ids: list[str],
        pub_address: str = "tcp://127.0.0.1:*",
        inbox_address: str = "tcp://127.0.0.1:*",
        context: Any = None,
        timeout: float = 20.0,
    ) -> None:
        self.node_ids = list(node_ids)
        self.timeout = timeout
        self.green = context is None or isinstance(context, zmq.Context)
        self.sockets = SocketManager(
            zmq if self.green else plain_zmq,
            context or green_context,
            serialization_backend=MessageSerializer(),
            max_message_size=MAX_MESSAGE_BYTES,
        )
        self.sockets.ensure_and_bind("commands", zmq.PUB, pub_address, 0)
        self.sockets.ensure_and_bind("inbox", zmq.ROUTER, inbox_address, zmq.POLLIN)
        self.pub_address = self.sockets.addresses["commands"]
        self.inbox_address = self.sockets.addresses["inbox"]
        self.nodes: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, str] = {}
        self.epochs_ended: list[Any] = []
        self.skipped = 0
        self.intruders = 0
        self._intruders_seen: set[str] = set()
        self._graph = frozenset(self.node_ids)
        self._reports: dict[Any, dict[str, dict[str, Any]]] = collections.OrderedDict()
        self._completed: dict[Any, dict[str, dict[str, Any]]] = collections.OrderedDict()
        self._ended_recently: collections.OrderedDict[Any, None] = collections.OrderedDict()
        self._errors: collections.deque[ErrorMsg] = collections.deque()
        self._last_announce = 0.0
        self._next_link_check = 0.0
        self._initialised = False
        self._relink = False
        self._changed = gevent.event.Event()
        self._running = True
        self.links = self._open_events()
        self._loop = gevent.spawn(self._serve) if self.green else None

    # -- driving the graph -------------------------------------------------------------------

    def wait_for_nodes(self, timeout: float | None = None) -> dict[str, dict[str, Any]]:
        """Wait until every node identified and its outbox is linked.

        Parameters
        ----------
        timeout : float, optional
            seconds to wait; the node's default ``timeout`` when omitted

        Returns
        -------
        dict
            each node's identity (``IdentifyValue``), by node id.

        Raises
        ------
        TimeoutError
            when that did not happen in time.
        Exception
            an error a node reported meanwhile, rebuilt (see :meth:`ErrorMsg.to_exception`).
        """
        self._wait(self._all_linked, timeout, "nodes to identify", self._announce)
        return {node: self.nodes[node] for node in self.node_ids}

    def init(self, timeout: float | None = None) -> None:
        """Initialise every node; return once all of them are ready and heard.

        Parameters
        ----------
        timeout : float, optional
            seconds to wait; the node's default ``timeout`` when omitted

        Raises
        ------
        TimeoutError
            when that did not happen in time.
        Exception
            an error a node reported meanwhile, rebuilt (see :meth:`ErrorMsg.to_exception`).
        """
        self._reports.clear()
        self._ended_recently.clear()
        self._broadcast(InitMsg(node_id=COMMAND_ID))
        if self._initialised:
            # A deinit closed the outboxes: once every runner bound its own again (it is no longer
            # stopped), link to them afresh (an inproc link does not come back by itself).
            self._wait(lambda: not self._any(NodeStatus.stopped), timeout, "nodes to initialise")
            self._relink = True
            if not self.green:
                self._reopen_events()
            self._wait(lambda: not self._relink, timeout, "the events socket to reopen")
        self._initialised = True
        ready = lambda: self._all(NodeStatus.ready) and self._all_linked()  # noqa: E731
        self._wait(ready, timeout, "nodes to become ready", self._announce)

    def process(self, epoch: Any, input: dict | None = None, timeout: float | None = None) -> dict:
        """Process one epoch and wait for every node of the graph to report on it.

        Parameters
        ----------
        epoch : int or list
            the epoch: an int, or a sub-epoch path ``[root, [node, index], ...]``
        input : dict, optional
            process-scoped input for the sources
        timeout : float, optional
            seconds to wait; the node's default ``timeout`` when omitted

        Returns
        -------
        dict
            each node's outputs for the epoch: ``{node: {signal: value}}``.

        Raises
        ------
        ValueError
            when ``epoch`` is not an epoch.
        Exception
            the exception a node raised, rebuilt (``node_id`` and ``remote_traceback`` set).
        TimeoutError
            when the epoch did not complete in time.
        """
        self._ended_recently.pop(epoch, None)  # asked for again: its reports count again
        value = {"epoch": parse_epoch(epoch), "input": input or None}
        frame = None if input else command_frame("process", COMMAND_ID, value, now())
        self._broadcast(frame or ProcessMsg(node_id=COMMAND_ID, value=value), "process")
        self._wait(lambda: epoch in self._completed, timeout, f"epoch {epoch} to complete")
        return self._completed.pop(epoch)

    def start(self, epochs: int | None = None, timeout: float | None = None) -> int:
        """Free-run the nodes: for ``epochs`` epochs (waits for them, then stops), or until :meth:`stop`.

        Parameters
        ----------
        epochs : int, optional
            how many epochs the sources run; ``None``: until :meth:`stop`
        timeout : float, optional
            seconds to wait; the node's default ``timeout`` when omitted

        Returns
        -------
        int
            how many epochs ended while waiting (0 without ``epochs``).

        Raises
        ------
        ValueError
            when ``epochs`` is not None or a positive int.
        """
        if epochs is not None and (type(epochs) is not int or epochs < 1):
            raise ValueError(f"epochs must be None or a positive int, got {epochs!r}")
        before = len(self.epochs_ended)
        self._broadcast(StartMsg(node_id=COMMAND_ID, value=epochs))
        if epochs is None:
            return 0
        self._wait(lambda: len(self.epochs_ended) - before >= epochs, timeout, f"{epochs} free-run epochs")
        ended = len(self.epochs_ended) - before
        self.stop(timeout)  # sources stopped by themselves; the nodes they feed run until told
        return ended

    def stop(self, timeout: float | None = None) -> None:
        """Stop free-running; return once every node is ready again.

        Parameters
        ----------
        timeout : float, optional
            seconds to wait; the node's default ``timeout`` when omitted

        Raises
        ------
        TimeoutError
            when that did not happen in time.
        Exception
            an error a node reported meanwhile, rebuilt (see :meth:`ErrorMsg.to_exception`).
        """
        self._broadcast(StopMsg(node_id=COMMAND_ID))
        self._wait(lambda: self._all(NodeStatus.ready), timeout, "nodes to stop")
        self._completed.clear()

    def ping(self, timeout: float | None = None) -> dict[str, str]:
        """Ask every node to identify itself again.

        Parameters
        ----------
        timeout : float, optional
            seconds to wait; the node's default ``timeout`` when omitted

        Returns
        -------
        dict
            each node's status, by node id.

        Raises
        ------
        TimeoutError
            when that did not happen in time.
        Exception
            an error a node reported meanwhile, rebuilt (see :meth:`ErrorMsg.to_exception`).
        """
        self.statuses.clear()
        self._broadcast(PingMsg(node_id=COMMAND_ID))
        self._wait(lambda: all(node in self.statuses for node in self.node_ids), timeout, "ping answers")
        return dict(self.statuses)

    def deinit(self, timeout: float | None = None) -> None:
        """Deinitialise every node; return once all of them are stopped.

        Parameters
        ----------
        timeout : float, optional
            seconds to wait; the node's default ``timeout`` when omitted

        Raises
        ------
        TimeoutError
            when that did not happen in time.
        Exception
            an error a node reported meanwhile, rebuilt (see :meth:`ErrorMsg.to_exception`).
        """
        self._broadcast(DeinitMsg(node_id=COMMAND_ID))
        self._wait(lambda: self._all(NodeStatus.stopped), timeout, "nodes to stop")

    def close(self, timeout: float = 5.0) -> None:
        """Tell stopped runners to go away, then close this node's sockets.

        Runners that are not stopped leave by themselves once the command node is gone.

        Parameters
        ----------
        timeout : float
            seconds to wait for stopped runners to confirm they closed
        """
        if self._all(NodeStatus.stopped):
            self._broadcast(StopMsg(node_id=COMMAND_ID))
            try:
                self._wait(lambda: self._all(NodeStatus.closed), timeout, "runners to close")
            except TimeoutError:
                log.warning("not every runner confirmed it closed")
        self._running = False
        if self._loop is not None:
            self._loop.join(timeout=1)
            self._loop.kill()
        self.links.close()
        self.sockets.close_all(linger=0)

    # -- internals --------------------------------------------------------------------------

    def _open_events(self) -> Links:
        self.sockets.create("events", zmq.SUB)
        self.sockets.set_topic("events", "")
        links = Links(self.sockets, "events")
        for identity in self.nodes.values():
            links.connect(identity["outbox"])
        return links

    def _any(self, status: NodeStatus) -> bool:
        return any(self.statuses.get(node) == status.value for node in self.node_ids)

    def _all(self, status: NodeStatus) -> bool:
        return all(self.statuses.get(node) == status.value for node in self.node_ids)

    def _all_linked(self) -> bool:
        return all(node in self.nodes for node in self.node_ids) and self.links.linked(
            self.nodes[node]["outbox"] for node in self.node_ids
        )

    def _broadcast(self, message: Message | bytes, kind: str | None = None) -> None:
        if kind is None:  # not process nor epoch_ended: every runner that gets those heard init
            self.sockets.ready(
                "commands", zmq.POLLOUT, timeout=0
            )  # attach new subscribers first (see runner)
        self.sockets.publish_safe("commands", kind or message.type_, message)  # type: ignore[union-attr]

    def _announce(self) -> None:
        self._last_announce = time.monotonic()
        nodes = {node: self.nodes[node] for node in self.node_ids if node in self.nodes}
        self._broadcast(AnnounceMsg(node_id=COMMAND_ID, value={"inbox": self.inbox_address, "nodes": nodes}))

    def _wait(
        self,
        done: Callable[[], bool],
        timeout: float | None,
        what: str,
        every: Callable[[], None] | None = None,
    ) -> None:
        seconds = self.timeout if timeout is None else timeout
        if not 0 <= seconds < float("inf"):
            raise ValueError(f"a timeout must be a finite number of seconds >= 0, got {timeout!r}")
        deadline = time.monotonic() + seconds
        while True:
            if self._errors:
                raise self._errors.popleft().to_exception()
            if done():
                return
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"timed out after {seconds} s waiting for {what}")
            if every is not None and now - self._last_announce >= REANNOUNCE_INTERVAL:
                every()
            if not self.green:
                self._pump(min(deadline - now, LINK_CHECK_INTERVAL))
                continue
            self._changed.clear()
            if not done() and not self._errors:
                self._changed.wait(min(deadline - now, REANNOUNCE_INTERVAL))

    def pump(self, seconds: float) -> None:
        """Handle what the runners send for ``seconds`` (a green command node does it all along)."""
        if self.green:
            gevent.sleep(seconds)
            return
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self._pump(remaining)

    def _serve(self) -> None:
        while self._running:
            if self._relink:  # sockets are closed only here, never under this greenlet's poll
                self._reopen_events()
            if self._pump(0.1):
                self._changed.set()

    def _reopen_events(self) -> None:
        self.links.close()
        self.links = self._open_events()
        self._relink = False
        self._changed.set()

    def _pump(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for messages and handle all that arrived; ``True`` if any did."""
        try:
            ready = self.sockets.engage(timeout=max(seconds, 0) * 1000)
        except SocketClosed:
            return False  # init() replaced the events socket while we polled it
        if self.sockets.sockets["inbox"] in ready:
            self._drain("inbox", self._on_inbox)
        events = self.sockets.sockets.get("events")
        if events is not None and events in ready:
            self._drain("events", self._on_event_message, self._on_events)
        if time.monotonic() >= self._next_link_check:
            self.links.drain()
            self._next_link_check = time.monotonic() + LINK_CHECK_INTERVAL
        return bool(ready)

    def _drain(
        self,
        name: str,
        handler: Callable[[Message], None],
        on_events: Callable[[str, list], None] | None = None,
    ) -> None:
        # at most 512 messages a turn, and a plain event builds no model (hot path)
        try:
            for frames in self.sockets.drain_multipart_safe(name, 512):
                self._handle_frames(frames, handler, on_events)
        except (MessageTooLarge, SocketClosed) as error:  # over the bounds, or gone
            self.skipped += 1
            log.warning("skipped a message: %.200s", error)

    def _handle_frames(
        self,
        frames: list[bytes],
        handler: Callable[[Message], None],
        on_events: Callable[[str, list], None] | None,
    ) -> None:
        if on_events is not None and frames:
            fast = read_event(frames[-1])
            if fast is not None:
                on_events(*fast)
                return
        try:
            handler(Message.from_bytes(frames))
        except MalformedMessage as error:
            self.skipped += 1
            log.warning("skipped a malformed message: %.200s", error)

    def _intruder(self, message: Message) -> None:
        self._intruder_id(message.type_, message.node_id)

    def _intruder_id(self, kind: str, node: str) -> None:
        self.intruders += 1
        if node not in self._intruders_seen and len(self._intruders_seen) < 1024:
            self._intruders_seen.add(node)
            log.warning("dropped a %s message from %r, not a node of the graph", kind, node)

    def _on_inbox(self, message: Message) -> None:
        node = message.node_id
        if isinstance(message, (IdentifyMsg, StatusMsg, ErrorMsg)) and node not in self._graph:
            self._intruder(message)
        elif isinstance(message, IdentifyMsg):
            self._on_identify(message)
        elif isinstance(message, StatusMsg):
            self.statuses[node] = message.value
        elif isinstance(message, ErrorMsg):
            self._errors.append(message)
        else:
            self.skipped += 1
            log.warning("skipped an unexpected %s message from %r", message.type_, node)

    def _on_identify(self, message: IdentifyMsg) -> None:
        node, identity = message.node_id, dict(message.value)
        if identity["node_id"] != node or not valid_endpoint(identity["outbox"]):
            self.skipped += 1
            log.warning("skipped an identify from %r with a bad node id or outbox", node)
            return
        known = self.nodes.get(node)
        if known is None or known["outbox"] != identity["outbox"]:
            self.links.connect(identity["outbox"])
        self.nodes[node] = identity
        self.statuses[node] = identity["status"]
        if time.monotonic() - self._last_announce > 0.02:  # identifies come in bursts
            self._announce()

    def _on_event_message(self, message: Message) -> None:
        # what read_event left to the models: meta events, pickled values, or not an event at all
        if not isinstance(message, EventMsg) or message.node_id not in self._graph:
            self._intruder(message)
            return
        items = [
            (item.node_id, item.signal, item.epoch, item.value)
            for item in message.value
            if type(item) is Event
        ]
        self._on_events(message.node_id, items)  # meta events do not count toward an epoch

    def _on_events(self, node: str, items: list[tuple[str, str, Any, Any]]) -> None:
        """``items`` (``(node_id, signal, epoch, value)``, no meta events) from ``node``'s outbox."""
        if node not in self._graph:
            self._intruder_id("event", node)
            return
        report: dict[str, Any] = {}
        epoch = None
        for source, signal, item_epoch, value in items:
            if source == "assets":
                continue  # upstream's runners pass shared assets along with their events
            if source != node or (epoch is not None and item_epoch != epoch):
                self._intruder_id("event", node)
                return
            epoch = item_epoch
            report[signal] = value
        if epoch is None or epoch in self._ended_recently:
            return
        reports = self._reports.get(epoch)
        if reports is None:
            if len(self._reports) >= EPOCH_MEMORY:
                self._reports.popitem(last=False)
            reports = self._reports[epoch] = {}
        reports[node] = report
        if len(reports) == len(self._graph):
            del self._reports[epoch]
            self._end_epoch(epoch, reports)

    def _end_epoch(self, epoch: Any, reports: dict[str, dict[str, Any]]) -> None:
        self._completed[epoch] = reports
        self._ended_recently[epoch] = None
        for memory in (self._completed, self._ended_recently):
            if len(memory) > EPOCH_MEMORY:
                memory.popitem(last=False)
        self.epochs_ended.append(epoch)
        frame = command_frame("epoch_ended", COMMAND_ID, epoch, now())
        self._broadcast(frame or EpochEndedMsg(node_id=COMMAND_ID, value=epoch), "epoch_ended")
