"""The asyncio manager's coroutines: the core's calls, awaited when they must wait.

Every call of :class:`~agentzero.manager.messaging.Messaging` and
:class:`~agentzero.manager.waits.Waits` tries its work at once and, in the
asyncio manager, hands back a :class:`~agentzero.manager.waits.Pending` when it
must wait. The coroutine of the same name returns the result at once, without
yielding to the loop, or awaits those steps (:func:`~agentzero.flavours.aio.adrive`).
Arguments, results, errors and documentation are the core call's own.
"""

from __future__ import annotations

import functools
from typing import Any, AsyncIterator, Callable

from agentzero.flavours.aio import AsyncioFlavour, adrive
from agentzero.manager.messaging import ENDED, Event, Messaging, Subscription
from agentzero.manager.waits import Pending, Steps, Waits


def _coroutine(call: Callable[..., Any]) -> Any:
    """The coroutine of the core's ``call``: its result at once, or its steps awaited."""

    async def awaited(self: Any, *args: Any, **kwargs: Any) -> Any:
        outcome = call(self, *args, **kwargs)
        if outcome.__class__ is Pending:
            return await adrive(outcome.steps)
        return outcome

    return functools.update_wrapper(awaited, call)


class CoroutineCalls(Messaging):
    """The ``*_safe`` calls and the waiting calls as coroutines; :meth:`subscribe` as an async iterator."""

    _waiting: AsyncioFlavour

    def _finish(self, steps: Steps[Any]) -> Pending:  # type: ignore[override]
        return Pending(steps)

    send_safe = _coroutine(Messaging.send_safe)
    recv_safe = _coroutine(Messaging.recv_safe)
    publish_safe = _coroutine(Messaging.publish_safe)
    recv_event_safe = _coroutine(Messaging.recv_event_safe)
    send_multipart_safe = _coroutine(Messaging.send_multipart_safe)
    recv_multipart_safe = _coroutine(Messaging.recv_multipart_safe)
    wait_until_ready = _coroutine(Waits.wait_until_ready)
    ready = _coroutine(Waits.ready)
    engage = _coroutine(Waits.engage)

    async def _subscription(self, subscription: Subscription) -> AsyncIterator[Event]:  # type: ignore[override]
        while (event := await adrive(self._event_steps(*subscription))) is not ENDED:
            if event is not None:
                yield event
