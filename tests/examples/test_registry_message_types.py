"""The registry protocol carries upstream's nine ``MSG_TYPE_*`` constants, names and values."""

from examples.registry import protocol

# as in VideoSDK agents 7578e18b, videosdk-agents/videosdk/agents/backend/protocol.py
UPSTREAM = {
    "MSG_TYPE_REGISTER": "register",
    "MSG_TYPE_STATUS_UPDATE": "status_update",
    "MSG_TYPE_AVAILABILITY_REQUEST": "availability_request",
    "MSG_TYPE_AVAILABILITY_RESPONSE": "availability_response",
    "MSG_TYPE_JOB_ASSIGNMENT": "job_assignment",
    "MSG_TYPE_JOB_UPDATE": "job_update",
    "MSG_TYPE_JOB_TERMINATION": "job_termination",
    "MSG_TYPE_PING": "ping",
    "MSG_TYPE_PONG": "pong",
}


def test_the_nine_message_type_constants_match_upstream():
    ours = {name: value for name, value in vars(protocol).items() if name.startswith("MSG_TYPE_")}
    assert ours == UPSTREAM
    assert set(UPSTREAM) <= set(protocol.__all__)


def test_the_constants_agree_with_the_message_classes():
    assert protocol.AvailabilityRequest().type == protocol.MSG_TYPE_AVAILABILITY_REQUEST
    assert protocol.AvailabilityResponse().type == protocol.MSG_TYPE_AVAILABILITY_RESPONSE
    assert protocol.JobAssignment().type == protocol.MSG_TYPE_JOB_ASSIGNMENT
    assert protocol.JobTermination().type == protocol.MSG_TYPE_JOB_TERMINATION
    assert protocol.JobUpdate().type == protocol.MSG_TYPE_JOB_UPDATE
    assert protocol.WorkerPing().type == protocol.MSG_TYPE_PING
    assert protocol.WorkerPong().type == protocol.MSG_TYPE_PONG
