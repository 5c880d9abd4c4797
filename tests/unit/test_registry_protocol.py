"""The registry protocol's dataclasses: fields as in seed 002, dict() without None values."""

import pytest

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


def test_from_dict_refuses_what_is_not_the_protocol():
    assert from_dict(WorkerPong, {"type": "pong", "timestamp": 1}) == WorkerPong(timestamp=1)
    with pytest.raises(ProtocolError, match="no field"):
        from_dict(JobTermination, {"type": "job_termination", "job_id": "j", "evil": 1})
    with pytest.raises(ProtocolError, match="must be an object"):
        from_dict(JobTermination, ["job_termination"])
    with pytest.raises(ProtocolError, match="bad ServerMessage"):
        from_dict(ServerMessage, {})
