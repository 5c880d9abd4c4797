"""The flavours: how a manager waits (plain ``zmq``, ``zmq.green`` or asyncio), chosen once, here.

:func:`choose` is the only place that asks which ``zmq`` module or context a
manager was given; everything else asks the chosen flavour object.

============================================  =========================================
:mod:`~agentzero.flavours.base`               what a flavour provides; ``drive``
:mod:`~agentzero.flavours.plain`              block the thread in ``zmq_poll``
:mod:`~agentzero.flavours.cooperative`        park on the descriptor, take turns
:mod:`~agentzero.flavours.green`              gevent's primitives (imported on demand)
:mod:`~agentzero.flavours.aio`                asyncio's primitives; ``adrive``
:mod:`~agentzero.flavours.coroutines`         the asyncio manager's coroutines
:mod:`~agentzero.flavours.aio_logs`           the asyncio log handler
============================================  =========================================
"""

from __future__ import annotations

import sys
from typing import Any

from agentzero.flavours.base import Flavour
from agentzero.patching import is_green_context


def _is_asyncio_context(context: Any) -> bool:
    asyncio_module = sys.modules.get("zmq.asyncio")
    return asyncio_module is not None and isinstance(context, asyncio_module.Context)


def choose(module: Any, context: Any, for_asyncio: bool) -> Flavour:
    """Return the flavour of a manager made with ``module`` and ``context``.

    Parameters
    ----------
    module : module
        ``zmq``, ``zmq.green`` (the sync manager) or ``zmq.asyncio`` (the asyncio one)
    context : zmq.Context or None
        the context given to the manager, if any
    for_asyncio : bool
        whether the manager is :class:`agentzero.asyncio.SocketManager`

    Returns
    -------
    Flavour
        the plain, green or asyncio flavour (gevent is imported only for green).

    Raises
    ------
    TypeError
        when the module or context belongs to another flavour's manager.
    """
    name = getattr(module, "__name__", module)
    if for_asyncio:
        if name != "zmq.asyncio":
            raise TypeError(
                f"agentzero.asyncio.SocketManager is for zmq.asyncio, got {name!r}; "
                "for zmq and zmq.green use agentzero.core.SocketManager"
            )
        if is_green_context(context):
            raise TypeError(
                "agentzero.asyncio.SocketManager cannot wait on a zmq.green context; "
                "use agentzero.core.SocketManager(zmq.green) with gevent"
            )
        import zmq

        if context is not None and not isinstance(context, zmq.Context):
            raise TypeError(f"context must be a zmq.asyncio.Context (or zmq.Context), got {context!r}")
        from agentzero.flavours.aio import AsyncioFlavour

        return AsyncioFlavour()
    if name == "zmq.asyncio" or _is_asyncio_context(context):
        raise TypeError(
            "agentzero.core.SocketManager is for zmq and zmq.green; "
            "for asyncio use agentzero.asyncio.SocketManager"
        )
    if name == "zmq.green":
        from agentzero.flavours.green import GreenFlavour

        return GreenFlavour()
    from agentzero.flavours.plain import PlainFlavour

    return PlainFlavour()


def default_context(flavour: Flavour, module: Any) -> Any:
    """The shared context a manager of ``flavour`` uses when given none."""
    if flavour.name == "green":
        from agentzero.zero import context

        return context
    return module.Context.instance()
