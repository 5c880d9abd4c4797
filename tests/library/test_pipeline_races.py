"""A worker lost while its job succeeds: the race replayed step by step with hand-driven workers.

1. A worker is lost while another still holds job J in its queue.
2. The survivor finishes J; J moves on to the next step.
3. J must never be dispatched to the step it passed, and no old or duplicate
   result may move it (or complete it with the wrong step's result).
"""

from __future__ import annotations

import time

import gevent
import pytest

from agentzero.pipeline.loading import load_step
from agentzero.pipeline.protocol import COMPLETED, DISPATCHED, QUEUED, new_job
from agentzero.pipeline.worker import StepWorker
from tests.library.pipeline_fakes import HandWorker, start_manager, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def line():
    """A manager whose heartbeat timeout is long: only the socket monitor can notice a loss."""
    manager = start_manager(heartbeat_timeout=30.0)
    workers: list[HandWorker] = []

    def worker(job_type: str, worker_id: str, concurrency: int = 1) -> HandWorker:
        hand = HandWorker(manager, job_type, worker_id, concurrency).announce()
        workers.append(hand)
        return hand

    yield manager, worker
    for hand in workers:
        hand.close()
    manager.stop()


def generated(manager, worker_gen, job_id: str) -> dict:
    """Submit a file-hash job and pass its generate-file step by hand."""
    manager.submit(new_job("file-hash", {"seed": "s", "size": 8}, job_id=job_id))
    dispatch = worker_gen.take()
    assert dispatch["job_id"] == job_id
    worker_gen.report("job:success", dispatch, result={"path": "/nowhere", "seed": "s", "size": 8})
    return dispatch


def holder_of(manager, job_id: str, job_type: str = "calculate-hash") -> str:
    job = manager.jobs[job_id]
    return wait_until(lambda: job.job_type == job_type and job.worker_id, what=f"{job_id} at {job_type}")


def test_losing_a_worker_resends_only_its_own_jobs_and_a_passed_step_never_runs_again(line):
    manager, worker = line
    gen = worker("generate-file", "gen")
    hashers = {name: worker("calculate-hash", name) for name in ("hash-a", "hash-b")}
    deleter = worker("delete-file", "del")
    generated(manager, gen, "J")
    holder = hashers[holder_of(manager, "J")]
    other = next(hand for hand in hashers.values() if hand is not holder)
    dispatch = holder.take()
    assert dispatch["job_id"] == "J" and len(dispatch["token"]) == 16

    # 1. the other hasher is lost (its connection drops): J is not its job, J stays put
    other.crash()
    wait_until(lambda: other.worker_id not in manager.workers, 3, "the loss noticed by the monitor")
    job = manager.jobs["J"]
    assert job.state == DISPATCHED and job.worker_id == holder.worker_id and job.redispatches == 0
    assert job.token == dispatch["token"]

    # 2. the holder finishes J: J moves on to delete-file
    holder.report("job:success", dispatch, result={"path": "/nowhere", "sha256": "aa", "size": 8})
    wait_until(lambda: manager.jobs["J"].job_type == "delete-file", what="J at delete-file")
    to_delete = deleter.take()
    assert to_delete["job_id"] == "J" and to_delete["data"]["sha256"] == "aa"

    # 3. replays of the hash result (duplicate, late) change nothing
    stale_before = manager.stats()["stale_events"]
    holder.report("job:success", dispatch, result={"sha256": "WRONG"})
    holder.report("job:failed", dispatch, reason="no file to hash")
    wait_until(lambda: manager.stats()["stale_events"] == stale_before + 2, what="two stale events")
    assert holder.take(timeout=0.3) is None  # calculate-hash never gets J again
    assert manager.jobs["J"].state == DISPATCHED and manager.jobs["J"].job_type == "delete-file"

    deleter.report("job:success", to_delete, result={"sha256": "aa", "deleted": True})
    wait_until(lambda: manager.jobs["J"].state == COMPLETED, what="J completed")
    job = manager.jobs["J"]
    assert job.result == {"sha256": "aa", "deleted": True}
    assert [step for step, _ in job.passed] == ["generate-file", "calculate-hash", "delete-file"]
    assert [step for step, _ in job.dispatches] == ["generate-file", "calculate-hash", "delete-file"]


def test_a_lost_holder_moves_its_job_within_a_second_and_its_late_result_is_stale(line):
    manager, worker = line
    gen = worker("generate-file", "gen")
    hashers = {name: worker("calculate-hash", name) for name in ("hash-a", "hash-b")}
    deleter = worker("delete-file", "del")
    generated(manager, gen, "J")
    holder = hashers[holder_of(manager, "J")]
    survivor = next(hand for hand in hashers.values() if hand is not holder)
    first = holder.take()

    lost_at = time.monotonic()
    holder.crash()  # as a SIGKILL would: the TCP connection drops
    second = survivor.take(timeout=3)
    assert second is not None and second["job_id"] == "J"
    assert time.monotonic() - lost_at < 1.5  # the monitor, not the 30 s heartbeat timeout
    assert second["token"] != first["token"]
    job = manager.jobs["J"]
    assert job.redispatches == 1 and job.worker_id == survivor.worker_id

    # the lost worker's result arrives late (through another socket): stale, J unchanged
    late = HandWorker(manager, "calculate-hash", holder.worker_id)
    try:
        stale_before = manager.stats()["stale_events"]
        wait_until(
            lambda: (
                (late.report("job:success", first, result={"sha256": "old"}), gevent.sleep(0.02))
                and manager.stats()["stale_events"] > stale_before
            ),
            what="the late result counted as stale",
        )
    finally:
        late.close()
    assert manager.jobs["J"].job_type == "calculate-hash" and manager.jobs["J"].token == second["token"]

    survivor.report("job:success", second, result={"sha256": "new", "path": "/nowhere"})
    to_delete = deleter.take()
    assert to_delete["data"]["sha256"] == "new"
    deleter.report("job:success", to_delete, result={"sha256": "new"})
    wait_until(lambda: manager.jobs["J"].state == COMPLETED, what="J completed")
    assert [step for step, _ in manager.jobs["J"].passed] == [
        "generate-file",
        "calculate-hash",
        "delete-file",
    ]
    assert manager.workers_lost == 1


def test_a_worker_holds_at_most_its_capacity_and_a_retried_job_is_held_once(line):
    manager, worker = line
    flaky = worker("flaky", "flaky-1", concurrency=1)  # capacity 2
    for number in range(3):
        manager.submit(new_job("flaky", {}, job_id=f"F{number}"))
    first, second = flaky.take(), flaky.take()
    assert [first["job_id"], second["job_id"]] == ["F0", "F1"]
    assert flaky.take(timeout=0.2) is None  # F2 waits: the worker is full
    assert manager.jobs["F2"].state == QUEUED
    flaky.report("job:error", first, error={"name": "RuntimeError"})  # F0 goes to the back
    third = flaky.take()
    assert third["job_id"] == "F2" and flaky.take(timeout=0.2) is None
    flaky.report("job:success", second, result={})
    fourth = flaky.take()
    assert fourth["job_id"] == "F0" and fourth["attempt"] == 2 and fourth["token"] != first["token"]
    assert flaky.take(timeout=0.3) is None
    assert manager.workers["flaky-1"].held == {"F0", "F2"}
    assert manager.jobs["F0"].state == DISPATCHED and manager.jobs["F0"].retries == 1


def test_a_refused_dispatch_is_queued_again_without_costing_an_attempt(line):
    manager, worker = line
    noop = worker("noop", "noop-1")
    manager.submit(new_job("noop", {"n": 1}, job_id="N"))
    first = noop.take()
    noop.report("job:refused", first)
    second = noop.take()
    assert second["job_id"] == "N" and second["token"] != first["token"] and second["attempt"] == 1
    noop.report("job:success", second, result={"n": 1})
    wait_until(lambda: manager.jobs["N"].state == COMPLETED, what="N completed")
    assert manager.jobs["N"].attempts == 1


def test_a_worker_that_woke_from_a_long_freeze_refuses_what_it_finds_then_works_again(line):
    """The worker's side of SIGSTOP: dispatches found right after a freeze are refused, not run."""
    manager, _ = line
    worker = StepWorker(load_step("noop"), manager.addresses["status"], concurrency=1, heartbeat_interval=0.1)
    worker.connect(timeout=5)
    assert worker.lease == manager.heartbeat_timeout  # told by the manager
    runner = gevent.spawn(worker.run)
    try:
        wait_until(lambda: worker.worker_id in manager.workers, what="the worker joined")
        worker._last_beat -= 2 * worker.lease  # as if SIGSTOPped for twice the lease
        manager.submit(new_job("noop", {"n": 1}, job_id="N"))
        wait_until(lambda: manager.jobs["N"].state == COMPLETED, what="N completed after the refusal window")
        assert worker.refused >= 1
        job = manager.jobs["N"]
        assert job.attempts == 1 and len(job.dispatches) == worker.refused + 1
        assert job.passed == [("noop", worker.worker_id)]
    finally:
        worker.stop()
        runner.join(timeout=5)
        worker.close()


def test_a_dispatch_that_never_starts_is_sent_again_after_the_dispatch_timeout():
    manager = start_manager(heartbeat_timeout=30.0, dispatch_timeout=0.5)
    hand = HandWorker(manager, "noop", "slow").announce()
    try:
        manager.submit(new_job("noop", {}, job_id="N"))
        first = hand.take()
        second = hand.take(timeout=5)  # no job:started came: sent again
        assert second is not None and second["job_id"] == "N" and second["token"] != first["token"]
        assert manager.jobs["N"].redispatches == 1 and second["attempt"] == 1
        stale = manager.stale_events
        hand.report("job:success", first, result="old")
        hand.report("job:success", second, result="new")
        wait_until(lambda: manager.jobs["N"].state == COMPLETED, what="N completed")
        assert manager.jobs["N"].result == "new" and manager.stale_events == stale + 1
    finally:
        hand.close()
        manager.stop()


def test_a_worker_taken_in_again_gets_dispatches_of_a_higher_admission(line):
    """Each taking in stamps the worker's dispatches higher: those of its former admission are told apart."""
    manager, worker = line
    noop = worker("noop", "noop-1")
    manager.submit(new_job("noop", {"n": 1}, job_id="A"))
    first = noop.take()
    assert first["session"] == manager.session and first["admission"] >= 1
    noop.beat(leaving=True)  # it leaves, and comes back
    wait_until(lambda: "noop-1" not in manager.workers, what="noop-1 dropped")
    noop.announce()
    again = noop.take()  # A, sent again to the worker taken in again
    assert again["job_id"] == "A" and again["session"] == manager.session
    assert again["admission"] > first["admission"]


def test_a_dispatch_of_a_former_admission_arriving_late_is_refused_not_run(line):
    """A link cut past the heartbeat timeout delivers, once healed, dispatches sent before the worker was
    dropped, after the newer ones: run, a stale generate-file wrote a file after its job had deleted it."""
    manager, _ = line
    worker = StepWorker(load_step("noop"), manager.addresses["status"], concurrency=1, heartbeat_interval=0.1)
    worker.connect(timeout=5)
    ran: list[dict] = []
    process = worker.step.process
    worker.step.process = lambda data, job: (ran.append(data), process(data, job))[1]
    runner = gevent.spawn(worker.run)
    try:
        wait_until(lambda: worker.worker_id in manager.workers, what="the worker joined")
        manager.submit(new_job("noop", {"n": 1}, job_id="N"))
        wait_until(lambda: manager.jobs["N"].state == COMPLETED, what="N completed")
        admission = manager.workers[worker.worker_id].admission
        late = {"job_id": "N", "token": "ab" * 8, "attempt": 1, "data": {"n": "stale"}}
        late.update(session=manager.session, admission=admission - 1)
        assert manager.sockets.send_safe(manager.workers[worker.worker_id].push, late, timeout=5)
        wait_until(lambda: worker.refused == 1, what="the late dispatch refused")
        assert ran == [{"n": 1}]  # the stale one never ran
        job = manager.jobs["N"]
        assert job.state == COMPLETED and job.passed == [("noop", worker.worker_id)]
    finally:
        worker.stop()
        runner.join(timeout=5)
        worker.close()


def test_a_dispatch_of_another_manager_process_is_run():
    """A restarted manager counts admissions afresh: its lower numbers are not outdated."""
    from agentzero.pipeline.protocol import Admissions

    admissions = Admissions()
    assert not admissions.outdated({"session": "a" * 16, "admission": 5})
    assert admissions.outdated({"session": "a" * 16, "admission": 4})
    assert not admissions.outdated({"session": "a" * 16, "admission": 5})
    assert not admissions.outdated({"session": "b" * 16, "admission": 1})
    assert admissions.outdated({"session": "b" * 16, "admission": 0})
    assert not admissions.outdated({"job_id": "unstamped"})
