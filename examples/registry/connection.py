"""A worker's link to the registry: the seed's ``BackendConnection``, over an agentzero DEALER.

The seed speaks WebSocket with asyncio; here the same protocol runs over a
DEALER socket (named ``backend``) under gevent. Registration, the reconnect
loop with its back-off, callbacks and the ping/pong keep-alive follow the seed.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Dict, Optional

import gevent
import gevent.event

from agentzero.core import SocketManager
from agentzero.errors import DeserializationError
from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.registry.checks import check_json_object
from examples.registry.frames import TRANSPORT_LIMIT, StrictJSON
from examples.registry.inbound import MAX_ID
from examples.registry.protocol import (
    AvailabilityRequest,
    JobAssignment,
    JobTermination,
    ProtocolError,
    ServerMessage,
    WorkerMessage,
    WorkerPing,
    WorkerPong,
    parse,
)

logger = logging.getLogger("registry.connection")


class BackendConnection:
    """Manages the connection to the registry server.

    Parameters follow the seed; ``backend_url`` is the registry's ROUTER address
    (``tcp://host:port``). Keyword-only extras: ``ping_interval`` and
    ``pong_timeout`` (seconds) for the keep-alive, ``register_timeout`` for the
    registry's answer, ``sleep`` (the back-off's clock, to scale it in tests) and
    ``context``.

    Every message from the registry is checked before use: strict JSON
    (:class:`~examples.registry.frames.StrictJSON`), declared fields type-checked,
    unknown fields ignored (counted in ``unknown_fields``, logged at debug level).
    A message that fails is counted in ``skipped`` and logged once.

    Until the registry gives an id, ``worker_id`` is ``None`` and messages carry
    no ``worker_id`` (the seed's placeholder ``"unregistered"`` is never sent).
    """

    def __init__(
        self,
        auth_token: str,
        agent_id: str = "",
        worker_type: str = "room",
        version: str = "1.0.0",
        max_retry: int = 16,
        http_proxy: Optional[str] = None,
        backend_url: Optional[str] = None,
        load_threshold: float = 0.75,
        max_processes: int = 10,
        *,
        ping_interval: float = 1.0,
        pong_timeout: float = 3.0,
        register_timeout: float = 5.0,
        sleep: Callable[[float], Any] = gevent.sleep,
        context: Any = None,
    ) -> None:
        self.auth_token = auth_token
        self.agent_id = agent_id
        self.worker_type = worker_type
        self.version = version
        self.max_retry = max_retry
        self.http_proxy = http_proxy  # kept for the seed's signature; ZeroMQ has no HTTP proxy
        self.backend_url = backend_url
        self.load_threshold = load_threshold
        self.max_processes = max_processes
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.register_timeout = register_timeout
        self._sleep = sleep

        self._closed = True
        self._connecting = False
        self._worker_id: Optional[str] = None
        self._retry_count = 0
        #: the back-off delays taken so far, in seconds
        self.delays: list[float] = []
        #: why the connection loop gave up, if it did
        self.error: Optional[BaseException] = None
        #: messages from the registry refused as malformed, and fields ignored as unknown
        self.skipped = 0
        self.unknown_fields = 0

        self._pending_assignments: Dict[str, gevent.event.AsyncResult] = {}
        self._on_availability: Optional[Callable[[AvailabilityRequest], None]] = None
        self._on_assignment: Optional[Callable[[JobAssignment], None]] = None
        self._on_termination: Optional[Callable[[JobTermination], None]] = None
        self._on_register: Optional[Callable[[str, Dict[str, Any]], None]] = None
        self._on_pong: Optional[Callable[[WorkerPong], None]] = None
        self._connection_task: Optional[gevent.Greenlet] = None
        self.sockets = SocketManager(
            zmq,
            context or green_context,
            serialization_backend=StrictJSON(),
            max_message_size=TRANSPORT_LIMIT,
        )

    # -- worker id -------------------------------------------------------------------------

    def _get_worker_id_env_key(self) -> str:
        safe_agent_id = "".join(c for c in self.agent_id if c.isalnum() or c in ("-", "_")).rstrip()
        return f"VIDEOSDK_WORKER_ID_{(safe_agent_id or 'default').upper()}"

    def _get_registry_assigned_worker_id(self) -> Optional[str]:
        """The worker id the registry assigned earlier, kept in the process environment."""
        stored = os.environ.get(self._get_worker_id_env_key(), "").strip()
        return stored or None

    def _save_memory_worker_id(self, worker_id: str) -> None:
        os.environ[self._get_worker_id_env_key()] = worker_id

    @property
    def worker_id(self) -> Optional[str]:
        """The worker id assigned (or confirmed) by the registry; ``None`` until there is one."""
        return self._worker_id

    @property
    def is_connected(self) -> bool:
        """True once registered, until the link is lost or closed."""
        return not self._closed and not self._connecting

    # -- callbacks ---------------------------------------------------------------------------

    def on_availability(self, callback: Callable[[AvailabilityRequest], None]) -> None:
        self._on_availability = callback

    def on_assignment(self, callback: Callable[[JobAssignment], None]) -> None:
        self._on_assignment = callback

    def on_termination(self, callback: Callable[[JobTermination], None]) -> None:
        self._on_termination = callback

    def on_register(self, callback: Callable[[str, Dict[str, Any]], None]) -> None:
        self._on_register = callback

    def on_pong(self, callback: Callable[[WorkerPong], None]) -> None:
        self._on_pong = callback

    # -- life cycle --------------------------------------------------------------------------

    def connect(self) -> None:
        """Start the connection loop (registration, keep-alive, reconnects) in a greenlet."""
        if self._closed:
            self._closed = False
            self._connecting = True
            self._connection_task = gevent.spawn(self._connection_loop)

    def wait_registered(self, timeout: float) -> bool:
        """Wait until registered (or the loop gave up); return whether it is connected."""
        deadline = time.monotonic() + timeout
        while not self.is_connected and self.error is None and time.monotonic() < deadline:
            gevent.sleep(0.01)
        return self.is_connected

    def disconnect(self) -> None:
        """Stop reconnecting, tell the registry this worker goes offline, then close."""
        was_connected = self.is_connected
        self._closed = True
        if self._connection_task is not None and not self._connection_task.dead:
            self._connection_task.kill()
        if was_connected and "backend" in self.sockets.sockets:
            shutdown = WorkerMessage(
                type="status_update", worker_id=self._worker_id, status="offline", load=0.0, job_count=0
            )
            self.sockets.send_safe("backend", shutdown.dict(), timeout=1)
        self.sockets.close_all(linger=1000)

    def send_message(self, message: Any) -> None:
        """Send a protocol message (anything with ``dict()``) to the registry.

        Raises
        ------
        RuntimeError
            when not connected.
        """
        if not self.is_connected:
            raise RuntimeError("Not connected to backend")
        self.sockets.send_safe("backend", message.dict(), timeout=5)

    def wait_for_assignment(self, job_id: str, timeout: float = 7.5) -> JobAssignment:
        """Wait for the assignment of ``job_id``; raise TimeoutError after ``timeout`` seconds."""
        future = gevent.event.AsyncResult()
        self._pending_assignments[job_id] = future
        try:
            return future.get(timeout=timeout)
        except gevent.Timeout:
            raise TimeoutError(f"no assignment for job {job_id!r} within {timeout}s") from None
        finally:
            self._pending_assignments.pop(job_id, None)

    # -- the loop ------------------------------------------------------------------------------

    def _connection_loop(self) -> None:
        while not self._closed:
            try:
                self._connecting = True
                self._establish_connection()
                self._connecting = False
                self._retry_count = 0
                self._serve()
                if self._closed:
                    break
                logger.warning("lost the registry at %s, reconnecting", self.backend_url)
            except Exception as error:
                self._connecting = True
                if self._closed:
                    break
                if self._retry_count >= self.max_retry:
                    logger.error("Failed to connect after %d attempts", self._retry_count)
                    self.error = RuntimeError(
                        f"Failed to connect to backend after {self._retry_count} attempts"
                    )
                    raise self.error from error
                retry_delay = min(self._retry_count * 2, 10)
                self._retry_count += 1
                self.delays.append(retry_delay)
                logger.warning("Connection failed, retrying in %ss: %s", retry_delay, error)
                self._sleep(retry_delay)

    def _establish_connection(self) -> None:
        self.sockets.close("backend", linger=0)
        self.sockets.ensure_and_connect("backend", zmq.DEALER, self.backend_url, zmq.POLLIN)
        # a registry that is not there is said so now, not after a register sent into the void
        if not self.sockets.wait_for_peers("backend", timeout=self.register_timeout):
            raise ConnectionError(f"no registry at {self.backend_url}")
        worker_id = self._get_registry_assigned_worker_id() or ""
        register = WorkerMessage(
            type="register",
            worker_id=worker_id,
            agent_name=self.agent_id,
            namespace="default",
            version=self.version,
            capabilities=["room", "voice", "stt", "tts"],
            registry_uuid="default",
            token=self.auth_token,
            load_threshold=self.load_threshold,
            max_processes=self.max_processes,
        )
        if not self.sockets.send_safe("backend", register.dict(), timeout=self.register_timeout):
            raise ConnectionError(f"cannot send to the registry at {self.backend_url}")
        deadline = time.monotonic() + self.register_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConnectionError(f"no answer from the registry at {self.backend_url}")
            try:
                data = self.sockets.recv_safe("backend", timeout=remaining)
            except DeserializationError as error:
                self._skip("an unreadable message", error)
                continue
            if data is None or data.get("type") != "register":
                continue
            try:
                reply, unknown = parse(ServerMessage, data)
                payload = check_json_object("register.payload", data.get("payload", {}))
                if reply.worker_id and (len(reply.worker_id) > MAX_ID or "\x00" in reply.worker_id):
                    raise ProtocolError(f"register.worker_id is not an id of at most {MAX_ID} characters")
            except ProtocolError as error:
                self._skip("a malformed register reply", error)
                continue
            unknown = [name for name in unknown if name != "payload"]  # the seed's connection reads it
            self._count_unknown("register", unknown)
            break
        if not reply.success:
            raise RuntimeError(f"Registration failed: {reply.message or 'Unknown error'}")
        if reply.worker_id:
            self._worker_id = reply.worker_id
            if reply.worker_id != worker_id:
                self._save_memory_worker_id(reply.worker_id)
        else:  # accepted without an id: keep the one presented, if any; never a placeholder
            logger.warning("Registry did not provide a worker ID")
            self._worker_id = worker_id or None
        logger.info("Worker registered with backend: %s", self._worker_id)
        if self._on_register:
            self._on_register(self._worker_id, payload)

    def _serve(self) -> None:
        """Handle the registry's messages and keep the link alive; return when it is lost."""
        last_heard = next_ping = time.monotonic()
        while not self._closed:
            now = time.monotonic()
            if now - last_heard > self.pong_timeout:
                # checked before pinging: a ping on a link about to be abandoned (after a
                # freeze, say) would make the registry take back the connection being left
                return
            if now >= next_ping:
                self.sockets.send_safe(
                    "backend", WorkerPing(timestamp=int(time.time() * 1000)).dict(), timeout=1
                )
                next_ping = now + self.ping_interval
            try:
                data = self.sockets.recv_safe("backend", timeout=min(0.2, self.ping_interval))
            except DeserializationError as error:
                self._skip("an unreadable message", error)
                continue
            if data is None:
                continue
            last_heard = time.monotonic()
            try:
                self._handle_server_message(data)
            except ProtocolError as error:
                self._skip("a malformed message", error)
            except Exception:  # a callback's failure must not end the link
                logger.exception("a callback failed on a %s", data.get("type"))

    def _skip(self, what: str, error: Exception) -> None:
        self.skipped += 1
        logger.warning("skipped %s: %s", what, error)

    def _count_unknown(self, kind: str, unknown: list) -> None:
        if unknown:
            self.unknown_fields += len(unknown)
            logger.debug("ignored %d unknown field(s) of a %s: %s", len(unknown), kind, unknown)

    def _parse(self, kind: type, data: dict) -> Any:
        message, unknown = parse(kind, data)
        self._count_unknown(message.type, unknown)
        return message

    def _handle_server_message(self, data: dict) -> None:
        msg_type = data["type"]  # StrictJSON only lets through objects with a string type
        if msg_type == "availability_request":
            request = self._parse(AvailabilityRequest, data)
            if self._on_availability:
                self._on_availability(request)
        elif msg_type == "job_assignment":
            assignment = self._parse(JobAssignment, data)
            future = self._pending_assignments.get(assignment.job_id)
            if future is not None:
                future.set(assignment)
            if self._on_assignment:
                self._on_assignment(assignment)
        elif msg_type == "job_termination":
            termination = self._parse(JobTermination, data)
            if self._on_termination:
                self._on_termination(termination)
        elif msg_type == "pong":
            pong = self._parse(WorkerPong, data)
            if self._on_pong:
                self._on_pong(pong)
        else:
            raise ProtocolError(f"unknown message type {msg_type!r:.40}")
