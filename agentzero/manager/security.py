"""CURVE security for the manager's sockets: servers, clients and the authenticator."""

from __future__ import annotations

from typing import Any, Iterable

import zmq

from agentzero.manager.sockets import Sockets


class Security(Sockets):
    """Make sockets CURVE servers or clients, and admit clients by their public key."""

    def make_curve_server(self, name: str, secret_key: str | bytes) -> zmq.Socket[Any]:
        """Make the named socket a CURVE server: encrypted, and it authenticates clients.

        Call it before ``bind``. Which clients are admitted is decided by an
        :class:`agentzero.auth.Authenticator` (see :meth:`start_authenticator`);
        without one, libzmq admits every client that knows the server's public key.

        Parameters
        ----------
        name : str
            the socket name
        secret_key : str or bytes
            the server's secret key (40 Z85 characters, or 32 raw bytes)

        Returns
        -------
        zmq.Socket
            the socket itself

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        ValueError
            when the key is not a CURVE key.
        """
        self.set_socket_option(name, zmq.CURVE_SECRETKEY, _curve_key("secret_key", secret_key))
        self.set_socket_option(name, zmq.CURVE_SERVER, 1)
        return self.get_by_name(name)

    def make_curve_client(
        self,
        name: str,
        server_public_key: str | bytes,
        public_key: str | bytes | None = None,
        secret_key: str | bytes | None = None,
    ) -> zmq.Socket[Any]:
        """Make the named socket a CURVE client of the server whose public key is given.

        Call it before ``connect``. Without a key pair of its own the client
        gets a fresh one (which an authenticator with an allow-list refuses).

        Parameters
        ----------
        name : str
            the socket name
        server_public_key : str or bytes
            the server's public key
        public_key, secret_key : str or bytes, optional
            the client's own key pair; given only ``secret_key``, the public key is derived.

        Returns
        -------
        zmq.Socket
            the socket itself

        Raises
        ------
        SocketNotFound
            when no socket has that name.
        ValueError
            when a key is not a CURVE key, or ``public_key`` comes without ``secret_key``.
        """
        if secret_key is None:
            if public_key is not None:
                raise ValueError("make_curve_client needs the secret key that goes with public_key")
            public_key, secret_key = zmq.curve_keypair()
        secret = _curve_key("secret_key", secret_key)
        if public_key is not None:
            public = _curve_key("public_key", public_key)
        else:
            try:
                public = zmq.curve_public(secret)
            except zmq.ZMQError as exc:  # 40 characters, but not all of them Z85
                raise ValueError(
                    f"secret_key is not a Z85 CURVE key ({exc.strerror}), got {len(secret)} characters"
                ) from None
        self.set_socket_option(name, zmq.CURVE_SERVERKEY, _curve_key("server_public_key", server_public_key))
        self.set_socket_option(name, zmq.CURVE_PUBLICKEY, public)
        self.set_socket_option(name, zmq.CURVE_SECRETKEY, secret)
        return self.get_by_name(name)

    def start_authenticator(
        self, allowed_keys: Iterable[str | bytes] = (), keys_directory: str | None = None
    ) -> Any:
        """Start (once) the ZAP authenticator of this manager's context and return it.

        It admits only CURVE clients whose public key is in ``allowed_keys`` or
        in a public key file of ``keys_directory``; it stops with :meth:`close_all`.

        Parameters
        ----------
        allowed_keys : iterable of str or bytes
            public keys to admit (Z85 text, or 32 raw bytes)
        keys_directory : str, optional
            a directory whose ``*.key`` files hold more public keys to admit

        Returns
        -------
        agentzero.auth.Authenticator
            the running authenticator

        Raises
        ------
        SocketBindError
            when the context's ZAP endpoint is taken: another manager or
            authenticator already runs one on the same context. Nothing is left
            open, so the context still terminates.
        ValueError
            when a key is not a CURVE public key.
        OSError
            when ``keys_directory`` cannot be read.
        """
        from agentzero.auth import Authenticator

        if self._authenticator is None:
            self._authenticator = Authenticator(self.context).start()
        self._authenticator.allow(*allowed_keys)
        if keys_directory is not None:
            self._authenticator.allow_directory(keys_directory)
        return self._authenticator


def _curve_key(name: str, key: Any) -> bytes:
    if isinstance(key, str):
        try:
            key = key.encode("ascii")
        except UnicodeEncodeError:  # Z85 is ASCII: refused below, naming the key
            pass
    if not isinstance(key, bytes) or len(key) not in (32, 40):
        shown = f"{len(key)} characters" if "secret" in name and isinstance(key, (bytes, str)) else repr(key)
        raise ValueError(f"{name} must be a 40-character Z85 CURVE key or 32 raw bytes, got {shown}")
    return key
