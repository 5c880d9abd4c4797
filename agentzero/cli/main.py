"""The ``agentzero`` command line: ZeroMQ devices, a log tail, CURVE keys and a version.

    agentzero streamer --bind-in tcp://127.0.0.1:5000 --bind-out tcp://127.0.0.1:5001
    agentzero tail tcp://127.0.0.1:6000 --topic logs

Bad arguments and unusable addresses exit with code 2 and one line on stderr
(a bare ``agentzero`` prints the usage line before it);
Ctrl-C (or SIGTERM) closes the sockets and exits with code 0. The devices live
in :mod:`agentzero.cli.devices`, the tail in :mod:`agentzero.cli.tail`.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import textwrap
from typing import Any, NoReturn, Sequence

import zmq

from agentzero.cli.devices import (
    DEVICE_PAIRS,
    DEVICES,
    EXAMPLES,
    add_device_arguments,
    check_pair,
    run_device,
)
from agentzero.cli.tail import add_tail_arguments, escape_text, format_event, run_tail
from agentzero.errors import AgentZeroSocketError
from agentzero.version import version

__all__ = ["UsageError", "build_parser", "format_event", "main"]

TAIL_EXAMPLES = """examples:
  # follow the log records an application publishes on topic "logs"
  agentzero tail tcp://127.0.0.1:6000 --topic logs

  # let publishers connect to the tail; read MessagePack; stop after 10 events
  agentzero tail ipc:///tmp/events --bind --serializer msgpack --count 10

  # one JSON object per line, for jq and friends
  agentzero tail tcp://127.0.0.1:6000 --json | jq .data
"""
KEYS_EXAMPLES = """examples:
  # a server key pair; clients need only ./keys/server.key
  agentzero keys ./keys --name server

  # replace an existing key pair
  agentzero keys ./keys --name server --force
"""


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the usage block
        raise UsageError(f"{self.prog}: error: {message}")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the examples' line breaks; every option states its default in its own help."""


def _paragraph(text: str) -> str:
    return textwrap.fill(text, width=78)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``agentzero`` argument parser with its sub-commands.

    Returns
    -------
    argparse.ArgumentParser
        a parser whose ``error`` raises :class:`UsageError` instead of exiting.
    """
    parser = _Parser(prog="agentzero", description="ZeroMQ devices and tools built on agentzero.")
    parser.add_argument("--version", action="version", version=f"agentzero {version}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for device, (type_in, type_out) in DEVICES.items():
        pairs = " or ".join(f"{a} -> {b}" for a, b in DEVICE_PAIRS[device])
        sub = commands.add_parser(
            device,
            help=f"run a {device} device ({type_in} in, {type_out} out)",
            description=_paragraph(
                f"Move every message from the input socket to the output socket "
                f"(default: {type_in} in, {type_out} out; a {device} runs {pairs}). "
                "Each side binds or connects."
            ),
            epilog=EXAMPLES[device],
            formatter_class=_HelpFormatter,
        )
        add_device_arguments(sub, device, _non_negative_int)
        sub.set_defaults(run=_run_device, device=device)

    tail = commands.add_parser(
        "tail",
        help="print the events a PUB socket publishes (log records readably)",
        description=_paragraph(
            "Subscribe to ADDRESS and print each event as it arrives, log records "
            "as log lines and anything else as 'topic  json'. Control characters from the "
            "wire are printed escaped; unreadable or oversized events are skipped with a "
            "line on stderr."
        ),
        epilog=TAIL_EXAMPLES,
        formatter_class=_HelpFormatter,
    )
    add_tail_arguments(tail, _non_negative_int)
    tail.set_defaults(run=run_tail)

    keys = commands.add_parser(
        "keys",
        help="write a CURVE key pair (NAME.key and NAME.key_secret)",
        description=_paragraph(
            "Write a new CURVE key pair into DIRECTORY and print the public key. "
            "The secret file is readable by its owner only from the moment it exists; an "
            "existing key pair is kept unless --force is given."
        ),
        epilog=KEYS_EXAMPLES,
        formatter_class=_HelpFormatter,
    )
    keys.add_argument("directory", help="where to write the key files (created if missing)")
    keys.add_argument("--name", default="agentzero", help="file name stem (default: agentzero)")
    keys.add_argument(
        "--force", action="store_true", help="overwrite an existing key pair (default: refuse, exit 2)"
    )
    keys.set_defaults(run=run_keys)
    return parser


def _run_device(args: argparse.Namespace) -> int:
    problem = check_pair(args.device, args.type_in, args.type_out)
    if problem is not None:
        raise UsageError(f"agentzero {args.device}: error: {problem}")
    return run_device(args)


def run_keys(args: argparse.Namespace) -> int:
    """Run ``agentzero keys``: write a key pair and print the public key.

    Parameters
    ----------
    args : argparse.Namespace
        the parsed command line

    Returns
    -------
    int
        the exit code: 0.

    Raises
    ------
    UsageError
        when the name is unusable, a key pair of that name exists (without
        ``--force``) or the directory cannot be written.
    """
    from agentzero.util import load_curve_keypair, write_curve_keypair

    name, directory = args.name, args.directory
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"agentzero keys: error: invalid key name {name!r}")
    refusal = (
        f"agentzero keys: error: a key pair named {name!r} exists in {directory!r}; "
        "pass --force to overwrite it"
    )
    paths = [os.path.join(directory, name + suffix) for suffix in (".key", ".key_secret")]
    if not args.force and any(os.path.lexists(path) for path in paths):
        raise UsageError(refusal)
    accepts_force = "force" in inspect.signature(write_curve_keypair).parameters
    try:
        # Whatever write_curve_keypair does, files it creates start readable by their owner only.
        previous_umask = os.umask(0o077)
        try:
            # write_curve_keypair takes force= once it refuses to overwrite by itself
            extra: dict[str, Any] = {"force": args.force} if accepts_force else {}
            public_path, secret_path = write_curve_keypair(directory, name, **extra)
        finally:
            os.umask(previous_umask)
        os.chmod(public_path, 0o666 & ~previous_umask)  # a public key is for sharing
    except FileExistsError:  # created meanwhile: write_curve_keypair refuses to overwrite
        raise UsageError(refusal) from None
    except OSError as error:
        raise UsageError(
            f"agentzero keys: error: cannot write keys into {directory!r}: {error.strerror}"
        ) from None
    public, _ = load_curve_keypair(public_path)
    print(f"public key  {public_path}")
    print(f"secret key  {secret_path}")
    print(public.decode("ascii"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        the arguments (default: ``sys.argv[1:]``)

    Returns
    -------
    int
        the exit code: 0 on success or after Ctrl-C/SIGTERM, 1 when a device's
        proxy failed, 2 for a bad argument or an unusable address (with one
        line on stderr; after the usage line when no argument was given).
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
        return int(args.run(args))
    except UsageError as problem:
        if not arguments:  # a bare `agentzero`: show how it is called, not only what is missing
            print(parser.format_usage().rstrip(), file=sys.stderr)
        _error_line(str(problem))
        return 2
    except AgentZeroSocketError as problem:
        _error_line(f"agentzero: error: {problem}")
        return 2
    except zmq.ZMQError as problem:  # a socket option or address libzmq refused
        _error_line(f"agentzero: error: {problem}")
        return 2
    except KeyboardInterrupt:
        return 0


def _error_line(text: str) -> None:
    """Print ``text`` on stderr as exactly one line, whatever the arguments held."""
    print(escape_text(text), file=sys.stderr)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
