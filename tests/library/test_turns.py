"""The turn-taking core, without sockets: who is woken, who holds a direction, who hears of a close.

Hypothesis drives random sequences of arrivals, parks, wake-ups, departures
and closes against :mod:`agentzero.manager.turns`, and checks each decision
against what the waiting layer promises: no stampede, no waiter left asleep
while nobody holds its direction, first come first served, everyone parked
told of a close.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agentzero.manager.backend import POLLIN, POLLOUT
from agentzero.manager.turns import Sleeper, leave, to_close, to_wake

MECHANISMS = st.sampled_from([POLLIN, POLLOUT, POLLIN | POLLOUT])
READY = st.sampled_from([0, POLLIN, POLLOUT, POLLIN | POLLOUT])

ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("arrive"), MECHANISMS),
        st.tuples(st.just("ready"), READY),
        st.tuples(st.just("resume"), st.integers(0, 9)),  # a woken sleeper runs, then parks again
        st.tuples(st.just("leave"), st.integers(0, 9)),
    ),
    max_size=60,
)


def _on_its_way(sleeper: Sleeper) -> bool:
    return sleeper.woken or sleeper.handle is None


def _check_wake(waiters: list[Sleeper], ready: int, chosen: list[Sleeper], before: dict[int, bool]) -> None:
    for sleeper in chosen:
        assert not before[id(sleeper)]  # only parked sleepers, not already on their way, are woken
        assert sleeper.mechanism & ready  # and only for something that is there
        assert sleeper.woken
    firsts = {}
    for direction in (POLLIN, POLLOUT):
        wanting = [sleeper for sleeper in waiters if sleeper.mechanism & direction]
        if ready & direction and wanting:
            firsts[direction] = wanting[0]
    # no stampede: each one woken is the first in line for a ready direction (so one per direction)
    for sleeper in chosen:
        assert any(first is sleeper for first in firsts.values())
    for first in firsts.values():
        # first come, first served: the first in line is woken, unless it already holds
        # the direction (woken before, or looking at the socket itself) ...
        assert (first in chosen) is (not before[id(first)])
        # ... so nobody is left asleep while nobody holds a direction that is ready
        assert _on_its_way(first)


@settings(max_examples=400, deadline=None)
@given(ACTIONS)
def test_wake_decisions_keep_the_promises(actions):
    waiters: list[Sleeper] = []
    for action, argument in actions:
        if action == "arrive":
            sleeper = Sleeper(argument)
            sleeper.park(object())
            waiters.append(sleeper)
        elif action == "ready":
            before = {id(sleeper): _on_its_way(sleeper) for sleeper in waiters}
            chosen = to_wake(waiters, argument)
            _check_wake(waiters, argument, chosen, before)
        elif waiters:
            sleeper = waiters[argument % len(waiters)]
            if action == "resume" and sleeper.woken:
                sleeper.park(object())  # it looked, found nothing, and parks again
            elif action == "leave":
                others = len(waiters) - 1
                assert leave(waiters, sleeper) is (others > 0)
                assert sleeper not in waiters
                assert leave(waiters, sleeper) is (others > 0)  # leaving twice changes nothing


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(MECHANISMS, st.booleans(), st.booleans()), max_size=20))
def test_a_close_tells_everyone_parked_and_nobody_twice(specs):
    waiters = []
    for mechanism, parked, woken in specs:
        sleeper = Sleeper(mechanism)
        if parked:
            sleeper.park(object())
            sleeper.woken = woken
        waiters.append(sleeper)
    expected = [sleeper for sleeper in waiters if sleeper.handle is not None and not sleeper.woken]
    assert to_close(waiters) == expected
    assert to_close(waiters) == []  # told once
    assert all(sleeper.woken for sleeper in expected)


def test_two_hundred_readers_wake_one_at_a_time():
    waiters = [Sleeper(POLLIN) for _ in range(200)]
    for sleeper in waiters:
        sleeper.park(object())
    assert to_wake(waiters, POLLIN) == [waiters[0]]
    assert to_wake(waiters, POLLIN) == []  # the first is on its way: it holds POLLIN
    assert leave(waiters, waiters[0]) is True  # it leaves (took the message): look again for the rest
    assert to_wake(waiters, POLLIN) == [waiters[0]]  # the next in line


def test_a_reader_and_a_writer_are_woken_together():
    reader, writer = Sleeper(POLLIN), Sleeper(POLLOUT)
    for sleeper in (reader, writer):
        sleeper.park(object())
    assert to_wake([reader, writer], POLLIN | POLLOUT) == [reader, writer]


def test_a_sleeper_looking_at_the_socket_itself_holds_its_direction():
    looking, parked = Sleeper(POLLIN), Sleeper(POLLIN)
    parked.park(object())  # ``looking`` has no handle: it is reading EVENTS itself
    assert to_wake([looking, parked], POLLIN) == []
