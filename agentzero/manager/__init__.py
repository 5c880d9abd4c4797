"""The one core of every :class:`SocketManager`: its state and every decision that needs no waiting.

Nothing here knows which flavour (plain ``zmq``, ``zmq.green`` or asyncio) is
in use, and nothing here waits. Each ``*_safe`` call is written once, as a
method of the core: it tries its work at once and either finishes, or builds
its *steps*, a generator that yields what to wait for and returns the result
(see :mod:`agentzero.manager.waits`). The flavours (:mod:`agentzero.flavours`)
only do that waiting.

====================================  ===============================================
:mod:`~agentzero.manager.backend`     raw socket calls below pyzmq's sugar layer
:mod:`~agentzero.manager.checks`      argument checks: timeouts, mechanisms, linger
:mod:`~agentzero.manager.table`       the one table of sockets, and its views
:mod:`~agentzero.manager.turns`       who waits, who is woken (sans-IO)
:mod:`~agentzero.manager.sockets`     create, find, register, configure
:mod:`~agentzero.manager.closing`     close and close_all, with linger
:mod:`~agentzero.manager.options`     socket options, as set through the manager
:mod:`~agentzero.manager.endpoints`   what a valid address is, and bound endpoints
:mod:`~agentzero.manager.addresses`   bind, connect, disconnect, reset
:mod:`~agentzero.manager.hosts`       host names to bind and to connect to
:mod:`~agentzero.manager.frames`      reading and refusing a message's frames
:mod:`~agentzero.manager.waits`       waiting calls, the fast receive, the steps
:mod:`~agentzero.manager.multipart`   raw multipart send, receive and drain
:mod:`~agentzero.manager.buffers`     a serializer's messages of several frames
:mod:`~agentzero.manager.releasing`   the thread that frees zero-copy Frames
:mod:`~agentzero.manager.routing`     ``recv_request_safe``, ``send_reply_safe``
:mod:`~agentzero.manager.events`      ``publish_safe``, ``recv_event_safe``, ``subscribe``
:mod:`~agentzero.manager.messaging`   ``send_safe``, ``recv_safe``: the top of the chain
:mod:`~agentzero.manager.monitors`    each socket's monitor, never stalling libzmq
:mod:`~agentzero.manager.peers`       ``peers``, ``wait_for_peers``, ``socket_events``...
:mod:`~agentzero.manager.security`    CURVE servers, clients, the authenticator
====================================  ===============================================
"""
