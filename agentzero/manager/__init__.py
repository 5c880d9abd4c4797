"""The one core of every :class:`SocketManager`: its state and every decision that needs no waiting.

Nothing here knows which flavour (plain ``zmq``, ``zmq.green`` or asyncio) is
in use, and nothing here waits. Each ``*_safe`` operation is written once, in
:mod:`agentzero.manager.operations`: it tries its work at once and either
finishes, or hands back a :class:`~agentzero.manager.operations.Pending` whose
steps say what to wait for. The flavours (:mod:`agentzero.flavours`) only do
that waiting.

====================================  ===============================================
:mod:`~agentzero.manager.backend`     raw socket calls below pyzmq's sugar layer
:mod:`~agentzero.manager.checks`      argument checks: timeouts, mechanisms, linger
:mod:`~agentzero.manager.table`       the one table of sockets, and its views
:mod:`~agentzero.manager.turns`       who waits, who is woken (sans-IO)
:mod:`~agentzero.manager.sockets`     create, find, register, configure, close
:mod:`~agentzero.manager.addresses`   bind, connect, disconnect, reset
:mod:`~agentzero.manager.frames`      reading and refusing a message's frames
:mod:`~agentzero.manager.operations`  ``send_safe`` and the rest, written once
:mod:`~agentzero.manager.monitors`    each socket's monitor, never stalling libzmq
:mod:`~agentzero.manager.peers`       ``peers``, ``wait_for_peers``, ``socket_events``...
:mod:`~agentzero.manager.hosts`       host names to bind and to connect to
:mod:`~agentzero.manager.security`    CURVE servers, clients, the authenticator
====================================  ===============================================
"""
