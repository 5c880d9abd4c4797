"""The command node: waits for the runners, announces them to each other, and drives them.

Sockets (one SocketManager):

- ``commands`` PUB, bound: every command, to every runner;
- ``inbox`` ROUTER, bound: identify, status, event and error messages from the runners
  (read as raw frames: the first one is the runner's routing identity).
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Callable

import gevent
import gevent.event

from agentzero.core import SocketManager
from agentzero.zero import context as green_context
from agentzero.zero import zmq
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
    StartMsg,
    StatusMsg,
    StopMsg,
)

log = logging.getLogger("nodegraph.command")
COMMAND_ID = "command"


class RemoteNodeError(Exception):
    """An exception raised inside a node whose type is not a built-in one.

    ``node_id``, ``err_type`` (its qualified name), ``args`` and
    ``remote_traceback`` say what happened where.
    """

    def __init__(self, node_id: str, err_type: str, args: tuple) -> None:
        self.node_id = node_id
        self.err_type = err_type
        super().__init__(f"node {node_id!r} raised {err_type}{tuple(args)!r}")


class CommandNode:
    """Drive the runners of ``node_ids``.

    Parameters
    ----------
    node_ids : list of str
        the nodes expected to identify themselves
    pub_address, inbox_address : str
        where the commands PUB and the inbox ROUTER bind (loopback tcp on a free
        port by default; ``inproc://`` when the runners live in this process)
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
        self.sockets = SocketManager(zmq, context or green_context, serialization_backend=MessageSerializer())
        self.sockets.ensure_and_bind("commands", zmq.PUB, pub_address, 0)
        self.sockets.ensure_and_bind("inbox", zmq.ROUTER, inbox_address, zmq.POLLIN)
        self.pub_address = self.sockets.addresses["commands"]
        self.inbox_address = self.sockets.addresses["inbox"]
        self.nodes: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, str] = {}
        self.epochs_ended: list[int] = []
        self.skipped = 0
        self._reports: dict[int, dict[str, dict[str, Any]]] = collections.defaultdict(dict)
        self._completed: dict[int, dict[str, dict[str, Any]]] = {}
        self._errors: collections.deque[ErrorMsg] = collections.deque()
        self._acknowledged: set[str] = set()
        self._announcing = False
        self._changed = gevent.event.Event()
        self._running = True
        self._loop = gevent.spawn(self._serve)

    # -- driving the graph -------------------------------------------------------------------

    def wait_for_nodes(self, timeout: float | None = None) -> dict[str, dict[str, Any]]:
        """Wait until every expected node identified, then announce them to each other."""
        self._wait(lambda: all(node in self.nodes for node in self.node_ids), timeout, "nodes to identify")
        self._announcing = True
        deadline = time.monotonic() + (timeout or self.timeout)
        while not all(node in self._acknowledged for node in self.node_ids):
            if time.monotonic() > deadline:
                missing = sorted(set(self.node_ids) - self._acknowledged)
                raise TimeoutError(f"no answer to the announce from {missing}")
            self._broadcast(
                AnnounceMsg(
                    node_id=COMMAND_ID,
                    value={"inbox": self.inbox_address, "nodes": {n: self.nodes[n] for n in self.node_ids}},
                )
            )
            self._changed.clear()
            self._changed.wait(0.1)
        return {node: self.nodes[node] for node in self.node_ids}

    def init(self, timeout: float | None = None) -> None:
        """Initialise every node; return once all of them are ready."""
        self._broadcast(InitMsg(node_id=COMMAND_ID))
        self._wait(lambda: self._all(NodeStatus.ready), timeout, "nodes to become ready")

    def process(self, epoch: int, input: dict | None = None, timeout: float | None = None) -> dict:
        """Process one epoch; return each node's outputs for it.

        Raises
        ------
        Exception
            the exception a node raised, rebuilt (``node_id`` and ``remote_traceback`` set).
        """
        self._broadcast(ProcessMsg(node_id=COMMAND_ID, value={"epoch": epoch, "input": input}))
        self._wait(lambda: epoch in self._completed, timeout, f"epoch {epoch} to complete")
        return self._completed.pop(epoch)

    def start(self, epochs: int | None = None, timeout: float | None = None) -> int:
        """Free-run the nodes: for ``epochs`` epochs (waits for them), or until :meth:`stop`.

        Returns
        -------
        int
            how many epochs ended while waiting (0 without ``epochs``).
        """
        before = len(self.epochs_ended)
        self._broadcast(StartMsg(node_id=COMMAND_ID, value=epochs))
        if epochs is None:
            return 0
        self._wait(lambda: len(self.epochs_ended) - before >= epochs, timeout, f"{epochs} free-run epochs")
        self._wait(lambda: self._all(NodeStatus.ready), timeout, "nodes to leave free-run")
        self._completed.clear()
        return len(self.epochs_ended) - before

    def stop(self, timeout: float | None = None) -> None:
        """Stop free-running; return once every node is ready again."""
        self._broadcast(StopMsg(node_id=COMMAND_ID))
        self._wait(lambda: self._all(NodeStatus.ready), timeout, "nodes to stop")
        self._completed.clear()

    def ping(self, timeout: float | None = None) -> dict[str, str]:
        """Ask every node for its status."""
        self.statuses.clear()
        self._broadcast(PingMsg(node_id=COMMAND_ID))
        self._wait(lambda: all(node in self.statuses for node in self.node_ids), timeout, "ping answers")
        return dict(self.statuses)

    def deinit(self, timeout: float | None = None) -> None:
        """Deinitialise every node; return once all of them are stopped."""
        self._broadcast(DeinitMsg(node_id=COMMAND_ID))
        self._wait(lambda: self._all(NodeStatus.stopped), timeout, "nodes to stop")

    def close(self, timeout: float = 5.0) -> None:
        """Tell stopped runners to go away, then close this node's sockets."""
        if self._all(NodeStatus.stopped):
            self._broadcast(StopMsg(node_id=COMMAND_ID))
            try:
                self._wait(lambda: self._all(NodeStatus.closed), timeout, "runners to close")
            except TimeoutError:
                log.warning("not every runner confirmed it closed")
        self._running = False
        self._loop.join(timeout=1)
        self._loop.kill()
        self.sockets.close_all(linger=0)

    # -- internals --------------------------------------------------------------------------

    def _all(self, status: NodeStatus) -> bool:
        return all(self.statuses.get(node) == status.value for node in self.node_ids)

    def _broadcast(self, message: Message) -> None:
        self.sockets.publish_safe("commands", "command", message)

    def _wait(self, done: Callable[[], bool], timeout: float | None, what: str) -> None:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if self._errors:
                raise self._errors.popleft().to_exception()
            if done():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out waiting for {what}")
            self._changed.clear()
            if not done() and not self._errors:
                self._changed.wait(min(remaining, 0.5))

    def _serve(self) -> None:
        inbox = self.sockets.sockets["inbox"]
        while self._running:
            if self.sockets.wait_until_ready("inbox", zmq.POLLIN, timeout=0.2) is None:
                continue
            for _ in range(1000):
                try:
                    frames = inbox.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                try:
                    self._handle(Message.from_bytes(frames))
                except MalformedMessage as error:
                    self.skipped += 1
                    log.warning("skipped a malformed message: %s", error)
            self._changed.set()

    def _handle(self, message: Message) -> None:
        node = message.node_id
        if isinstance(message, IdentifyMsg):
            self.nodes[node] = dict(message.value)
            self.statuses[node] = message.value["status"]
        elif isinstance(message, StatusMsg):
            self.statuses[node] = message.value
            if self._announcing:
                self._acknowledged.add(node)
        elif isinstance(message, EventMsg):
            events = [item for item in message.value if isinstance(item, Event)]
            if events:
                epoch = events[0].epoch
                self._reports[epoch][node] = {item.signal: item.value for item in events}
                if len(self._reports[epoch]) == len(self.node_ids):
                    self._completed[epoch] = self._reports.pop(epoch)
                    self.epochs_ended.append(epoch)
                    self._broadcast(EpochEndedMsg(node_id=COMMAND_ID, value=epoch))
        elif isinstance(message, ErrorMsg):
            self._errors.append(message)
        else:
            self.skipped += 1
            log.warning("skipped an unexpected %s message from %r", message.type_, node)
