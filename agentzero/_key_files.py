"""CURVE key files: zmq.auth's layout, each written with its mode from the start and never through a link."""

from __future__ import annotations

import datetime
import os

# the layout of zmq.auth's certificate files, so that pyzmq and CZMQ read them too
_PUBLIC_KEY_FILE = """#   ****  Generated on {now} by agentzero  ****
#   ZeroMQ CURVE Public Certificate
#   Exchange securely, or use a secure mechanism to verify the contents
#   of this file after exchange. Store public certificates in your home
#   directory, in the .curve subdirectory.

metadata
curve
    public-key = "{public}"
"""
_SECRET_KEY_FILE = """#   ****  Generated on {now} by agentzero  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

metadata
curve
    public-key = "{public}"
    secret-key = "{secret}"
"""


def write_key_pair(public_path: str, secret_path: str, public: str, secret: str, replace: bool) -> None:
    """Write the secret key file (mode ``0600``), then the public one (``0644``); ``replace`` what stands."""
    now = datetime.datetime.now().replace(microsecond=0)
    _write_key_file(
        secret_path, _SECRET_KEY_FILE.format(now=now, public=public, secret=secret), 0o600, replace
    )
    _write_key_file(public_path, _PUBLIC_KEY_FILE.format(now=now, public=public), 0o644, replace)


def _write_key_file(path: str, text: str, mode: int, replace: bool) -> None:
    """Create ``path`` with ``mode`` (never wider) and write ``text``; refuse to follow links.

    Replacing writes a new file under a temporary name first, so a reader
    never sees half a key and the old file's mode is not inherited.
    """
    if replace:
        import tempfile

        descriptor, target = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(path))
        os.fchmod(descriptor, mode)  # mkstemp creates it 0600: widen the public file only
    else:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        descriptor, target = os.open(path, flags, mode), path
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as stream:
            stream.write(text)
        if replace:
            os.replace(target, path)
    except BaseException:
        if replace and os.path.lexists(target):
            os.unlink(target)
        raise
