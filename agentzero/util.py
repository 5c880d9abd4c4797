"""Utility functions: addresses, host names, ports, time and exceptions."""

from __future__ import annotations

import datetime
import re
import socket
import time
import traceback
from typing import Any

_TCP_ADDRESS = re.compile(r"^tcp://(?P<host>\[[^\]]*\]|[^:/\[\]]+):(?P<port>\d+|\*)$")


def get_free_tcp_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free to listen on at this moment.

    Parameters
    ----------
    host : str
        the interface whose ports are checked (loopback by default).

    Returns
    -------
    int
        a port number that was free when checked. Prefer
        :meth:`SocketManager.bind_to_random_port`, which cannot race.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def get_default_bind_address(host: str = "0.0.0.0") -> str:
    """Return a ``tcp://`` address on ``host`` with a currently free port.

    >>> get_default_bind_address().startswith('tcp://0.0.0.0:')
    True
    """
    return f"tcp://{host}:{get_free_tcp_port()}"


def get_hostname() -> str:
    """Return this machine's host name."""
    return socket.gethostname()


def get_public_ip_address(hostname: str | None = None) -> str:
    """Return the IPv4 address that ``hostname`` (this machine's by default) resolves to.

    When the name cannot be resolved it is returned unchanged (see
    :func:`resolve_hostname`).
    """
    return resolve_hostname(hostname or get_hostname())


def extract_hostname_from_tcp_address(address: str) -> str | None:
    """Return the host part of a ``tcp://host:port`` address, or ``None``.

    >>> extract_hostname_from_tcp_address('tcp://localhost:5000')
    'localhost'
    >>> extract_hostname_from_tcp_address('ipc:///tmp/x') is None
    True
    """
    found = _TCP_ADDRESS.match(address or "")
    return found.group("host") if found else None


def resolve_hostname(hostname: str) -> str:
    """Resolve ``hostname`` to an IPv4 address; return it unchanged when that fails.

    >>> resolve_hostname('localhost')
    '127.0.0.1'
    >>> resolve_hostname('*')
    '*'
    """
    if not hostname or not isinstance(hostname, str):
        return hostname
    try:
        return socket.gethostbyname(hostname)
    except (OSError, UnicodeError, TypeError, ValueError):
        return hostname


def fix_zeromq_tcp_address(address: str) -> str:
    """Replace the host name of a ``tcp://host:port`` address by its IP address.

    ZeroMQ cannot bind to host names; wildcards, IP addresses and other
    transports are returned unchanged.

    >>> fix_zeromq_tcp_address('tcp://localhost:5000')
    'tcp://127.0.0.1:5000'
    >>> fix_zeromq_tcp_address('tcp://*:5000')
    'tcp://*:5000'
    >>> fix_zeromq_tcp_address('inproc://whatevs')
    'inproc://whatevs'
    """
    found = _TCP_ADDRESS.match(address) if isinstance(address, str) else None
    if not found:
        return address
    host = found.group("host")
    if host == "*" or host.startswith("["):
        return address
    return f"tcp://{resolve_hostname(host)}:{found.group('port')}"


def get_public_zmq_address() -> str:
    """Return ``tcp://<this host's IP address>:<a free port>``."""
    return f"tcp://{get_public_ip_address()}:{get_free_tcp_port()}"


def seconds_since(timestamp: float | datetime.datetime) -> float:
    """Return how many seconds passed since ``timestamp``.

    ``timestamp`` is a UNIX time in seconds, or a datetime (naive datetimes are UTC).
    """
    if isinstance(timestamp, datetime.datetime):
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=datetime.timezone.utc)
        timestamp = timestamp.timestamp()
    return time.time() - float(timestamp)


def datetime_from_seconds(timestamp: float) -> datetime.datetime:
    """Return the naive UTC datetime of a UNIX time in seconds.

    >>> datetime_from_seconds(0)
    datetime.datetime(1970, 1, 1, 0, 0)
    """
    utc = datetime.datetime.fromtimestamp(float(timestamp), datetime.timezone.utc)
    return utc.replace(tzinfo=None)


def serialized_exception(e: BaseException) -> dict[str, Any]:
    """Describe an exception with plain data, ready to be sent to a peer.

    Parameters
    ----------
    e : BaseException
        the exception, raised or not (without a traceback, only its last line is
        formatted).

    Returns
    -------
    dict
        ``{"module": ..., "name": ..., "traceback": ...}``: the exception class's
        module and name, and its formatted traceback.

    Examples
    --------
    Describe an exception where it is caught, then send the dict to a peer:

    >>> try:
    ...     {}['missing']
    ... except KeyError as error:
    ...     info = serialized_exception(error)
    >>> info['module'], info['name']
    ('builtins', 'KeyError')
    >>> info['traceback'].splitlines()[-1]
    "KeyError: 'missing'"
    """
    kind = type(e)
    return {
        "module": kind.__module__,
        "name": kind.__name__,
        "traceback": "".join(traceback.format_exception(kind, e, e.__traceback__)),
    }


def curve_keypair() -> tuple[bytes, bytes]:
    """Return a new CURVE key pair ``(public, secret)``, each 40 Z85 characters.

    >>> public, secret = curve_keypair()
    >>> len(public), len(secret)
    (40, 40)
    """
    import zmq

    return zmq.curve_keypair()


def write_curve_keypair(directory: str, name: str) -> tuple[str, str]:
    """Write a new key pair as ``NAME.key`` (public) and ``NAME.key_secret`` into ``directory``.

    Returns
    -------
    tuple
        the paths of the public and the secret key files. The secret file is
        readable by its owner only.
    """
    import os

    import zmq.auth

    os.makedirs(directory, exist_ok=True)
    public_path, secret_path = zmq.auth.create_certificates(directory, name)
    os.chmod(secret_path, 0o600)
    return public_path, secret_path


def load_curve_keypair(path: str) -> tuple[bytes, bytes | None]:
    """Read a key file written by :func:`write_curve_keypair`: ``(public, secret or None)``."""
    import zmq.auth

    return zmq.auth.load_certificate(path)


def load_curve_public_keys(directory: str) -> set[bytes]:
    """Return the public keys of every ``*.key`` file in ``directory``."""
    import zmq.auth

    return set(zmq.auth.load_certificates(directory))
