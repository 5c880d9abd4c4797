"""Command line of the worker pipeline.

python -m agentzero.pipeline run --jobs 300 --workers 2      # everything on this machine
python -m agentzero.pipeline run --pipeline mypackage.steps:PIPELINES   # your own steps
python -m agentzero.pipeline manager --bind HOST              # the pieces, separately
python -m agentzero.pipeline step calculate-hash --manager tcp://HOST:PORT
python -m agentzero.pipeline step mypackage.steps:Resize --manager tcp://HOST:PORT
python -m agentzero.pipeline submit --manager tcp://HOST:PORT --count 10
python -m agentzero.pipeline status --manager tcp://HOST:PORT JOB_ID
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from typing import Any

import gevent

from agentzero.core import SocketManager
from agentzero.errors import AgentZeroSocketError
from agentzero.pipeline.builtin_steps import PIPELINES, STEPS, file_directory
from agentzero.pipeline.journal import JournalError, default_path
from agentzero.pipeline.loading import BadStep, load_pipelines, load_step
from agentzero.pipeline.manager import PipelineManager
from agentzero.pipeline.probe import ManagerUnreachable, ask_manager
from agentzero.pipeline.protocol import new_job
from agentzero.pipeline.run import RunFailed, command_run
from agentzero.pipeline.worker import DEFAULT_ORPHAN_TIMEOUT, StepWorker
from agentzero.zero import context, zmq


class UsageError(Exception):
    """A bad argument or an unusable address: exit code 2 and one line."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``--help`` still shows the usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.command(args)
        return code
    except (
        UsageError,
        RunFailed,
        BadStep,
        ManagerUnreachable,
        AgentZeroSocketError,
        JournalError,
    ) as problem:
        print(f"{parser.prog} {args.name}: error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m agentzero.pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="name", required=True)

    run = commands.add_parser("run", help="manager, workers and jobs on this machine, with a live view")
    run.add_argument(
        "--pipeline",
        default="file-hash",
        metavar="NAME|MODULE:NAME|FILE.json",
        help=f"a built-in pipeline ({', '.join(sorted(PIPELINES))}) or your own: one pipeline's "
        "job types, from a module or a JSON file (default file-hash)",
    )
    run.add_argument("--jobs", type=positive, default=300, help="how many jobs to submit")
    run.add_argument("--workers", type=positive, default=2, help="worker processes per step")
    run.add_argument("--concurrency", type=positive, default=4, help="jobs at once per worker")
    run.add_argument("--max-attempts", type=positive, default=3)
    run.add_argument("--size", type=positive, default=4096, help="bytes per generated file")
    run.add_argument("--delay", type=float, default=0.0, help="simulated seconds of work per step")
    run.add_argument(
        "--instructions", type=json_object, default={}, help="a JSON object added to every job's instructions"
    )
    run.add_argument(
        "--kill-worker-at",
        type=fraction,
        default=None,
        metavar="FRACTION",
        help="SIGKILL one worker once this fraction of the jobs completed",
    )
    run.add_argument(
        "--kill-manager-at",
        type=fraction,
        default=None,
        metavar="FRACTION",
        help="run the manager as a process with a journal, SIGKILL it once this fraction of the jobs "
        "completed, and restart it",
    )
    run.add_argument("--timeout", type=positive, default=300, help="seconds before giving up")
    run.add_argument("--heartbeat-timeout", type=seconds, default=3.0)
    run.add_argument("--keep-logs", action="store_true", help="keep the workers' log directory")
    run.set_defaults(command=command_run)

    manager = commands.add_parser("manager", help="run the pipeline manager")
    manager.add_argument("--bind", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    manager.add_argument("--port", type=int, default=0, help="status port; 0 picks a free one")
    manager.add_argument("--max-attempts", type=positive, default=3)
    manager.add_argument("--heartbeat-timeout", type=seconds, default=3.0)
    manager.add_argument(
        "--progress-interval", type=seconds, default=5.0, help="seconds between two progress lines"
    )
    manager.add_argument(
        "--journal",
        default=None,
        metavar="PATH",
        help="the SQLite journal every job is written to, and a restarted manager resumes from "
        "(default with --port: journal-PORT.sqlite3 in AGENTZERO_PIPELINE_DIR; none on a random port)",
    )
    manager.add_argument("--no-journal", action="store_true", help="keep the jobs in memory only")
    manager.add_argument(
        "--farewell",
        type=seconds,
        default=2.0,
        help="on SIGTERM, at most how long to wait until every worker heard the manager stops",
    )
    manager.add_argument(
        "--pipelines",
        default=None,
        metavar="MODULE:NAME|FILE.json",
        help="the pipelines (name -> job types); default: the built-in ones",
    )
    manager.set_defaults(command=command_manager)

    step = commands.add_parser("step", help="run one step worker")
    step.add_argument(
        "job_type", metavar="STEP", help=f"a built-in step ({', '.join(sorted(STEPS))}) or module:StepClass"
    )
    step.add_argument("--manager", required=True, help="the manager's status address, tcp://HOST:PORT")
    step.add_argument("--concurrency", type=positive, default=4)
    step.add_argument("--bind", default="127.0.0.1", help="interface for the jobs socket")
    step.add_argument("--connect-timeout", type=seconds, default=10.0)
    step.add_argument(
        "--orphan-timeout",
        type=positive_seconds,
        default=DEFAULT_ORPHAN_TIMEOUT,
        help="exit when the manager has not answered for this many seconds "
        f"(default {DEFAULT_ORPHAN_TIMEOUT:g})",
    )
    step.set_defaults(command=command_step)

    submit = commands.add_parser("submit", help="submit jobs to a running manager")
    submit.add_argument("--manager", required=True)
    submit.add_argument("--pipeline", default="file-hash")
    submit.add_argument("--count", type=positive, default=1)
    submit.add_argument(
        "--job-id",
        default=None,
        help="your id for the job (ID-0, ID-1... with --count): submitting it again is harmless",
    )
    submit.add_argument("--instructions", type=json_object, default={}, help="a JSON object")
    submit.add_argument("--timeout", type=seconds, default=10.0, help="seconds to wait for the manager")
    submit.set_defaults(command=command_submit)

    status = commands.add_parser("status", help="ask a running manager about a job (or 'stats', 'addresses')")
    status.add_argument("--manager", required=True)
    status.add_argument(
        "job_id", help="a job id, 'stats' for the manager's statistics, 'addresses' for its sockets"
    )
    status.add_argument("--timeout", type=seconds, default=10.0, help="seconds to wait for the manager")
    status.set_defaults(command=command_status)
    return parser


# -- argument types ------------------------------------------------------------------------


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite, non-negative number of seconds, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    value = seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0 seconds, got {text!r}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


# -- commands ---------------------------------------------------------------------------------


def command_manager(args: argparse.Namespace) -> int:
    manager = PipelineManager(
        bind_host=args.bind,
        status_port=args.port,
        pipelines=load_pipelines(args.pipelines) if args.pipelines else None,
        max_attempts=args.max_attempts,
        heartbeat_timeout=args.heartbeat_timeout,
        progress_interval=args.progress_interval,
        farewell=args.farewell,
    )
    log_lines()
    journal = None if args.no_journal else args.journal
    if journal is None and not args.no_journal and args.port:
        journal = default_path(file_directory(), args.port)
    if journal is not None:  # before binding: a bad journal stops the manager before anyone sees it
        manager.open_journal(journal)
    addresses = manager.bind()
    for name, address in addresses.items():
        print(f"{name:7s} {address}", flush=True)
    print(f"journal {journal or '(none: give --port or --journal to resume after a restart)'}", flush=True)
    print(f"start workers with: python -m agentzero.pipeline step STEP --manager {addresses['status']}")
    print(f"watch its jobs with: agentzero tail {addresses['watch']}", flush=True)
    gevent.signal_handler(signal.SIGTERM, manager.stop)
    try:
        manager.run()
    finally:
        manager.stop()
    return 0


def command_step(args: argparse.Namespace) -> int:
    worker = StepWorker(
        load_step(args.job_type),
        args.manager,
        concurrency=args.concurrency,
        bind_host=args.bind,
        orphan_timeout=args.orphan_timeout,
    )
    log_lines()
    worker.connect(timeout=args.connect_timeout)
    print(f"{worker.worker_id} pulling {worker.job_type} jobs on {worker.address}", flush=True)
    gevent.signal_handler(signal.SIGTERM, worker.stop)
    gevent.signal_handler(signal.SIGINT, worker.interrupt)  # Ctrl-C: at once, its jobs handed back
    try:
        worker.run()
    finally:
        worker.close()
    return 0


def log_lines() -> None:
    """Print the pipeline's own log lines (progress, workers joining and leaving) on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    pipeline_log = logging.getLogger("pipeline")
    pipeline_log.addHandler(handler)
    pipeline_log.setLevel(logging.INFO)


def command_submit(args: argparse.Namespace) -> int:
    with SocketManager(zmq, context) as sockets:
        for number in range(args.count):
            job_id = args.job_id if args.count == 1 else f"{args.job_id}-{number}" if args.job_id else None
            job = new_job(args.pipeline, args.instructions, job_id=job_id)
            reply = ask_manager(sockets, args.manager, {"command": "submit", "job": job}, args.timeout)
            if reply.get("state") == "rejected":
                raise UsageError(reply["error"])
            print(reply["job_id"])
        sockets.close("manager", linger=0)
    return 0


def command_status(args: argparse.Namespace) -> int:
    if args.job_id in ("stats", "addresses"):
        request = {"command": args.job_id}
    else:
        request = {"command": "status", "job_id": args.job_id}
    with SocketManager(zmq, context) as sockets:
        reply = ask_manager(sockets, args.manager, request, args.timeout)
        sockets.close("manager", linger=0)
    print(json.dumps(reply, indent=2, default=str))
    return 0 if reply.get("state") != "unknown" else 1


if __name__ == "__main__":
    sys.exit(main())
