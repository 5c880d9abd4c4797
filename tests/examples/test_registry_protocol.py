"""The registry protocol's dataclasses (fields as in seed 002), its field checks and its strict frames."""

import pytest

from agentzero.errors import DeserializationError, SerializationError
from examples.registry.checks import MAX_DEPTH, check_json_object, checker_for
from examples.registry.frames import MAX_MESSAGE_BYTES, StrictJSON, decode, encode
from examples.registry.inbound import worker_message
from examples.registry.protocol import (
    AvailabilityRequest,
    AvailabilityResponse,
    JobAssignment,
    JobStatus,
    JobTermination,
    JobUpdate,
    ProtocolError,
    ServerMessage,
    UpdateJobStatus,
    UpdateWorkerStatus,
    WorkerMessage,
    WorkerPing,
    WorkerPong,
    WorkerStatus,
    from_dict,
    parse,
)


def test_dict_shapes_drop_none():
    assert AvailabilityRequest(job_id="j").dict() == {
        "type": "availability_request",
        "job_id": "j",
        "job_type": "",
        "room_id": "",
        "room_name": "",
        "agent_name": "",
        "namespace": "",
    }
    assert AvailabilityResponse(job_id="j", available=True, token="t").dict() == {
        "type": "availability_response",
        "job_id": "j",
        "available": True,
        "token": "t",
    }
    assignment = JobAssignment(job_id="j", metadata={"seconds": 1}).dict()
    assert assignment["type"] == "job_assignment" and assignment["metadata"] == {"seconds": 1}
    assert "room_options" not in assignment
    assert JobTermination(job_id="j").dict() == {"type": "job_termination", "job_id": "j"}
    assert JobUpdate(job_id="j", status="running").dict() == {
        "type": "job_update",
        "job_id": "j",
        "status": "running",
    }
    assert ServerMessage(type="register", success=False, message="no").dict() == {
        "type": "register",
        "success": False,
        "message": "no",
    }
    register = WorkerMessage(
        type="register", worker_id="", token="t", load_threshold=0.5, max_processes=3
    ).dict()
    assert register == {
        "type": "register",
        "worker_id": "",
        "token": "t",
        "load_threshold": 0.5,
        "max_processes": 3,
    }
    assert WorkerPing().dict() == {"type": "ping"} and WorkerPong(timestamp=3).dict() == {
        "type": "pong",
        "timestamp": 3,
    }


def test_enums_and_plain_dataclasses():
    assert [status.value for status in JobStatus] == [
        "pending",
        "running",
        "completed",
        "failed",
        "cancelled",
    ]
    assert [status.value for status in WorkerStatus] == ["idle", "busy", "offline", "error"]
    assert JobStatus.COMPLETED == "completed"
    assert UpdateJobStatus("j", JobStatus.FAILED, error="x").status is JobStatus.FAILED
    assert UpdateWorkerStatus(WorkerStatus.BUSY, load=0.5).load == 0.5


def test_from_dict_ignores_unknown_fields_and_reports_them():
    # upstream later added JobAssignment.wait: a newer registry's assignment still parses
    newer = {"type": "job_assignment", "job_id": "j", "wait": True, "metadata": {"seconds": 1}}
    assignment, unknown = parse(JobAssignment, newer)
    assert assignment == JobAssignment(job_id="j", metadata={"seconds": 1}) and unknown == ["wait"]
    assert from_dict(JobTermination, {"type": "job_termination", "job_id": "j", "evil": 1}) == JobTermination(
        job_id="j"
    )
    assert parse(WorkerPong, {"type": "pong", "timestamp": 1}) == (WorkerPong(timestamp=1), [])


@pytest.mark.parametrize(
    "kind, data, match",
    [
        (JobTermination, ["job_termination"], "must be an object"),
        (ServerMessage, {}, "bad ServerMessage"),
        (WorkerMessage, {"type": "register", "token": ["t"]}, "WorkerMessage.token must be a string"),
        (WorkerMessage, {"type": "register", "token": {"t": 1}}, "token must be a string"),
        (WorkerMessage, {"type": "x", "worker_id": ["w"]}, "worker_id must be a string"),
        (WorkerMessage, {"type": "x", "max_processes": "many"}, "max_processes must be an integer"),
        (WorkerMessage, {"type": "x", "max_processes": True}, "max_processes must be an integer"),
        (WorkerMessage, {"type": "x", "max_processes": 2.0}, "max_processes must be an integer"),
        (WorkerMessage, {"type": "x", "job_count": float("inf")}, "job_count must be an integer"),
        (WorkerMessage, {"type": "x", "load": float("nan")}, "load must be a finite number"),
        (WorkerMessage, {"type": "x", "load": float("-inf")}, "load must be a finite number"),
        (WorkerMessage, {"type": "x", "load": "0.5"}, "load must be a number"),
        (WorkerMessage, {"type": "x", "agent_name": "a\ud800"}, "lone surrogate"),
        (WorkerMessage, {"type": "x", "capabilities": ["room", 3]}, r"capabilities\[1\] must be a string"),
        (WorkerMessage, {"type": "x", "capabilities": "room"}, "capabilities must be a list"),
        (AvailabilityResponse, {"type": "availability_response", "available": "yes"}, "true or false"),
        (JobAssignment, {"type": "job_assignment", "metadata": [1]}, "metadata must be an object"),
        (JobAssignment, {"type": "job_assignment", "metadata": {"x": float("nan")}}, "finite"),
        (JobAssignment, {"type": "job_assignment", "room_options": {"k": "\udc00"}}, "lone surrogate"),
        (JobTermination, {"type": "job_assignment", "job_id": "j"}, "has type 'job_termination'"),
        (WorkerPing, {"type": "ping", "timestamp": "now"}, "timestamp must be an integer"),
        (WorkerPing, {"type": None}, "type must be a string"),
    ],
)
def test_declared_fields_are_type_checked(kind, data, match):
    with pytest.raises(ProtocolError, match=match):
        parse(kind, data)


def test_json_objects_are_bounded_in_depth():
    nested: dict = {}
    inner = nested
    for _ in range(MAX_DEPTH - 1):
        inner["k"] = {}
        inner = inner["k"]
    assert check_json_object("metadata", nested) is nested
    inner["k"] = {}
    with pytest.raises(ProtocolError, match="nests deeper than"):
        check_json_object("metadata", nested)
    with pytest.raises(ProtocolError, match="holds a bytes"):
        check_json_object("metadata", {"k": b"raw"})


def test_optional_and_required_checkers():
    assert checker_for("Optional[str]")("x", None) is None
    with pytest.raises(ProtocolError):
        checker_for("str")("x", None)
    assert checker_for("Optional[float]")("x", 1) == 1.0
    with pytest.raises(KeyError):
        checker_for("Set[int]")


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"\xff garbage", "not strict JSON"),
        (b'{"type": "ping", "timestamp": NaN}', "not strict JSON"),
        (b'{"type": "status_update", "job_count": Infinity}', "not strict JSON"),
        (b'{"type": "status_update", "load": 1e999}', "not strict JSON"),
        (b'{"type": "register", "token": "\\ud800"}', "not strict JSON"),
        (b"[" * 2000 + b"]" * 2000, "not strict JSON"),
        (b'["not", "an", "object"]', "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b'{"no": "type"}', "string 'type'"),
        (b'{"type": 3}', "string 'type'"),
        (b'{"type": "ping", "pad": "' + b"x" * MAX_MESSAGE_BYTES + b'"}', "exceeds the limit"),
    ],
)
def test_frames_are_strict_json_objects_of_bounded_size(payload, match):
    with pytest.raises(ProtocolError, match=match):
        decode(payload)
    with pytest.raises(DeserializationError):
        StrictJSON().unpack(payload)


def test_strict_json_refuses_to_send_what_it_would_refuse_to_read():
    assert decode(encode({"type": "pong", "timestamp": 3})) == {"type": "pong", "timestamp": 3}
    with pytest.raises(SerializationError):
        encode({"type": "job_update", "error": "\ud800"})


@pytest.mark.parametrize(
    "data, match",
    [
        ({"type": "hello"}, "unknown message type"),
        ({"type": "register"}, "token is missing"),
        ({"type": "register", "token": "t", "max_processes": 0}, "max_processes must be in"),
        ({"type": "register", "token": "t", "max_processes": 10**6}, "max_processes must be in"),
        ({"type": "register", "token": "t", "load_threshold": 0}, "load_threshold must be in"),
        ({"type": "register", "token": "t", "load_threshold": 7.5}, "load_threshold must be in"),
        ({"type": "register", "token": "t", "worker_id": "w" * 200}, "longer than"),
        ({"type": "status_update", "status": "sleepy"}, "status must be one of"),
        ({"type": "status_update"}, "status must be one of"),
        ({"type": "status_update", "status": "available", "load": -1}, "load must not be negative"),
        ({"type": "status_update", "status": "available", "job_count": -2}, "job_count must not be negative"),
        ({"type": "availability_response", "available": True}, "job_id is missing"),
        ({"type": "job_update", "job_id": "j", "status": "exploded"}, "status must be one of"),
    ],
)
def test_the_registry_holds_worker_messages_to_their_range(data, match):
    with pytest.raises(ProtocolError, match=match):
        worker_message(data)


def test_the_registry_accepts_upstream_statuses_and_newer_fields():
    for status in ("available", "draining", "offline", "idle", "busy", "error"):
        message, unknown = worker_message({"type": "status_update", "status": status, "uptime": 3})
        assert message.status == status and unknown == ["uptime"]
    update, _ = worker_message({"type": "job_update", "job_id": "j", "status": "error", "error": "boom"})
    assert update == JobUpdate(job_id="j", status="error", error="boom")
