"""Utility functions: addresses, host names, ports, time and exceptions."""

from __future__ import annotations

import datetime
import errno
import os
import re
import socket
import time
import traceback
from typing import Any

from agentzero import _key_files

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
        port: int = probe.getsockname()[1]
        return port


def get_default_bind_address(host: str = "0.0.0.0") -> str:
    """Return a ``tcp://`` address on ``host`` with a currently free port.

    Parameters
    ----------
    host : str
        the interface to listen on (every interface by default).

    Returns
    -------
    str
        ``tcp://<host>:<port>``; the port was free when checked (see :func:`get_free_tcp_port`).

    Examples
    --------
    >>> get_default_bind_address().startswith('tcp://0.0.0.0:')
    True
    """
    return f"tcp://{host}:{get_free_tcp_port()}"


def get_hostname() -> str:
    """Return this machine's host name (:func:`socket.gethostname`)."""
    return socket.gethostname()


def get_public_ip_address(hostname: str | None = None) -> str:
    """Return the IPv4 address that ``hostname`` (this machine's by default) resolves to.

    Parameters
    ----------
    hostname : str, optional
        the name to resolve; defaults to :func:`get_hostname`.

    Returns
    -------
    str
        the address, or the name unchanged when it cannot be resolved (see
        :func:`resolve_hostname`).
    """
    return resolve_hostname(hostname or get_hostname())


def extract_hostname_from_tcp_address(address: Any) -> str | None:
    """Return the host part of a ``tcp://host:port`` address, or ``None``.

    Parameters
    ----------
    address : object
        usually a ``str``; any other value (``None``, a dict, bytes, ...) is not
        an address, as agentzero 0.4.6 treated it.

    Returns
    -------
    str or None
        the host name or IP address, or ``None`` when ``address`` is not a
        ``tcp://host:port`` string.

    Examples
    --------
    >>> extract_hostname_from_tcp_address('tcp://localhost:5000')
    'localhost'
    >>> extract_hostname_from_tcp_address('ipc:///tmp/x') is None
    True
    >>> extract_hostname_from_tcp_address({'not': 'an address'}) is None
    True
    """
    if not isinstance(address, str):
        return None
    found = _TCP_ADDRESS.match(address)
    return found.group("host") if found else None


def resolve_hostname(hostname: str) -> str:
    """Resolve ``hostname`` to an IPv4 address; return it unchanged when that fails.

    Parameters
    ----------
    hostname : str
        a host name, an IP address or a wildcard such as ``*``.

    Returns
    -------
    str
        the IPv4 address, or ``hostname`` itself when it does not resolve (or is
        not a non-empty string).

    Examples
    --------
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

    Parameters
    ----------
    address : str
        a ZeroMQ address (any transport).

    Returns
    -------
    str
        the address with its host resolved (see :func:`resolve_hostname`).

    Examples
    --------
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

    Parameters
    ----------
    timestamp : float or datetime.datetime
        a UNIX time in seconds, or a datetime (naive datetimes are UTC).

    Returns
    -------
    float
        the seconds elapsed since then (negative for a moment in the future).

    Examples
    --------
    >>> import time
    >>> 59 < seconds_since(time.time() - 60) < 61
    True
    """
    if isinstance(timestamp, datetime.datetime):
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=datetime.timezone.utc)
        timestamp = timestamp.timestamp()
    return time.time() - float(timestamp)


def datetime_from_seconds(timestamp: float) -> datetime.datetime:
    """Return the naive UTC datetime of a UNIX time in seconds.

    Parameters
    ----------
    timestamp : float
        seconds since the epoch

    Returns
    -------
    datetime.datetime
        the moment in UTC, without a time zone (as agentzero 0.4.6 returned it).

    Examples
    --------
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

    Returns
    -------
    tuple of bytes
        ``(public, secret)``, Z85-encoded.

    Examples
    --------
    >>> public, secret = curve_keypair()
    >>> len(public), len(secret)
    (40, 40)
    """
    import zmq

    return zmq.curve_keypair()


def write_curve_keypair(directory: str, name: str, force: bool = False) -> tuple[str, str]:
    """Write a new key pair as ``NAME.key`` (public) and ``NAME.key_secret`` into ``directory``.

    The files have the format of :func:`zmq.auth.create_certificates`, so
    :func:`load_curve_keypair` and :func:`zmq.auth.load_certificate` read them.
    The secret file is created with mode ``0600`` (owner only) from the start:
    it is never readable by others, not even for a moment. An existing key pair
    is kept unless ``force`` is true; then each file is replaced atomically
    (written under a temporary name, then renamed over the old one).

    Parameters
    ----------
    directory : str
        where to write the files; created (mode ``0700``) when missing.
    name : str
        the base name of the two files
    force : bool
        replace an existing key pair (its secret is lost).

    Returns
    -------
    tuple of str
        the paths of the public and the secret key files.

    Raises
    ------
    FileExistsError
        when ``NAME.key`` or ``NAME.key_secret`` already exists and ``force`` is
        false; its ``filename`` is the existing file, and nothing was written.

    Examples
    --------
    >>> import os, tempfile
    >>> directory = tempfile.mkdtemp()
    >>> public_path, secret_path = write_curve_keypair(directory, 'server')
    >>> oct(os.stat(secret_path).st_mode & 0o777)
    '0o600'
    >>> public, secret = load_curve_keypair(secret_path)
    >>> len(public), len(secret)
    (40, 40)
    >>> write_curve_keypair(directory, 'server')
    Traceback (most recent call last):
    ...
    FileExistsError: [Errno 17] a CURVE key pair exists (force=True replaces it): '...server.key'
    >>> _ = write_curve_keypair(directory, 'server', force=True)
    """
    import zmq

    os.makedirs(directory, mode=0o700, exist_ok=True)
    base = os.path.join(directory, name)
    public_path, secret_path = f"{base}.key", f"{base}.key_secret"
    if not force:
        for path in (public_path, secret_path):
            if os.path.lexists(path):
                raise FileExistsError(
                    errno.EEXIST,
                    "a CURVE key pair exists (force=True replaces it)",
                    path,
                )
    public, secret = (key.decode("ascii") for key in zmq.curve_keypair())
    _key_files.write_key_pair(public_path, secret_path, public, secret, force)
    return public_path, secret_path


def load_curve_keypair(path: str) -> tuple[bytes, bytes | None]:
    """Read a key file written by :func:`write_curve_keypair`.

    Parameters
    ----------
    path : str
        a ``NAME.key`` or ``NAME.key_secret`` file

    Returns
    -------
    tuple
        ``(public, secret)`` as Z85 bytes; ``secret`` is ``None`` for a public key file.
    """
    import zmq.auth

    return zmq.auth.load_certificate(path)


def load_curve_public_keys(directory: str) -> set[bytes]:
    """Return the public keys of every ``*.key`` file in ``directory``.

    Parameters
    ----------
    directory : str
        a directory of key files, such as :func:`write_curve_keypair` writes.

    Returns
    -------
    set of bytes
        the Z85 public keys found.
    """
    import zmq.auth

    return set(zmq.auth.load_certificates(directory))
