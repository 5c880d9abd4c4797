"""The asyncio manager's coroutines: the core's calls, awaited when they must wait.

Every call of :class:`~agentzero.manager.messaging.Messaging` and
:class:`~agentzero.manager.waits.Waits` tries its work at once and, in the
asyncio manager, hands back a :class:`~agentzero.manager.waits.Pending` when it
must wait. The coroutine of the same name returns the result at once, without
yielding to the loop, or awaits those steps (:func:`~agentzero.flavours.aio.adrive`).
Arguments, results, errors and documentation are the core call's own, and so
are the types: a type checker sees each coroutine with the core call's
parameters, returning a coroutine of the core call's result.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Coroutine, Iterator, TypeVar

from agentzero.flavours.aio import AsyncioFlavour, adrive
from agentzero.manager.events import ENDED, Event, Subscription
from agentzero.manager.messaging import Messaging
from agentzero.manager.peers import Peers
from agentzero.manager.waits import Pending, Steps, Waits

if TYPE_CHECKING:  # typing_extensions is only needed by the type checker (ParamSpec is 3.10+)
    from typing_extensions import Concatenate, ParamSpec

    _P = ParamSpec("_P")
_R = TypeVar("_R")
_E = TypeVar("_E")


def _coroutine(
    call: Callable[Concatenate[Any, _P], _R],
) -> Callable[Concatenate[Any, _P], Coroutine[Any, Any, _R]]:
    """The coroutine of the core's ``call``: its result at once, or its steps awaited.

    Its source is generated from ``call``'s own parameters (as :mod:`dataclasses`
    generates ``__init__``), so that a call costs no ``*args``/``**kwargs``
    packing on the hot path. It is named as the asyncio manager's method
    (``SocketManager.recv_safe``), not the core's, in tracebacks and in "never
    awaited" warnings.
    """
    parameters = list(inspect.signature(call).parameters.values())
    defaults = {f"_default_{p.name}": p.default for p in parameters if p.default is not p.empty}
    declared = ", ".join(
        p.name if p.default is p.empty else f"{p.name}=_default_{p.name}" for p in parameters
    )
    passed = ", ".join(p.name for p in parameters)
    source = (
        f"async def {call.__name__}({declared}):\n"
        f"    outcome = _call({passed})\n"
        "    if outcome.__class__ is _Pending:  # the core's call must wait: it gave its steps\n"
        "        return await _adrive(outcome.steps)\n"
        "    return outcome\n"
    )
    namespace: dict[str, Any] = {"_call": call, "_Pending": Pending, "_adrive": adrive, **defaults}
    # built above from the core call's own signature; tracebacks name the core call it runs
    exec(compile(source, f"<coroutine of {call.__qualname__}>", "exec"), namespace)  # noqa: S102
    awaited = namespace[call.__name__]
    functools.update_wrapper(awaited, call)
    awaited.__qualname__ = f"SocketManager.{call.__name__}"
    return awaited  # type: ignore[no-any-return]


def _async_iterator(
    call: Callable[Concatenate[Any, _P], Iterator[_E]],
) -> Callable[Concatenate[Any, _P], AsyncIterator[_E]]:
    """``call`` itself, typed as what it returns in the asyncio manager: an async iterator.

    The core's ``subscribe`` returns ``self._subscription(...)``, which here is
    an asynchronous generator; only the type checker needs telling.
    """
    return call  # type: ignore[return-value]


class CoroutineCalls(Messaging, Peers):
    """The ``*_safe`` calls and the waiting calls as coroutines; :meth:`subscribe` as an async iterator."""

    _waiting: AsyncioFlavour

    def _finish(self, steps: Steps[Any]) -> Pending:  # type: ignore[override]
        return Pending(steps)

    # each is the core call as a coroutine: the same parameters, its result awaited; a type
    # checker sees that override as incompatible (it is: the sync manager's calls are not awaited)
    send_safe = _coroutine(Messaging.send_safe)  # type: ignore[assignment]
    recv_safe = _coroutine(Messaging.recv_safe)
    publish_safe = _coroutine(Messaging.publish_safe)  # type: ignore[assignment]
    recv_event_safe = _coroutine(Messaging.recv_event_safe)  # type: ignore[assignment]
    send_multipart_safe = _coroutine(Messaging.send_multipart_safe)  # type: ignore[assignment]
    recv_multipart_safe = _coroutine(Messaging.recv_multipart_safe)  # type: ignore[assignment]
    recv_request_safe = _coroutine(Messaging.recv_request_safe)  # type: ignore[assignment]
    send_reply_safe = _coroutine(Messaging.send_reply_safe)  # type: ignore[assignment]
    wait_until_ready = _coroutine(Waits.wait_until_ready)  # type: ignore[assignment]
    ready = _coroutine(Waits.ready)  # type: ignore[assignment]
    engage = _coroutine(Waits.engage)  # type: ignore[assignment]
    wait_for_peers = _coroutine(Peers.wait_for_peers)  # type: ignore[assignment]
    wait_for_subscribers = _coroutine(Peers.wait_for_subscribers)  # type: ignore[assignment]
    socket_events = _coroutine(Peers.socket_events)  # type: ignore[assignment]
    subscribe = _async_iterator(Messaging.subscribe)  # type: ignore[assignment]

    async def _subscription(self, subscription: Subscription) -> AsyncIterator[Event]:  # type: ignore[override]
        while (event := await adrive(self._event_steps(*subscription))) is not ENDED:
            if event is not None:
                yield event
