"""``python -m airflow_neuro.localplatform`` (also ``airflow-neuro platform serve``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import sys
from collections.abc import Sequence
from pathlib import Path

from .faults import FaultPlan
from .jobs import job_user
from .runtimes import parse_runtimes
from .sandbox import INSTALL_HINT, bwrap_binary
from .server import CannotListen, LocalPlatform, reachable_from_elsewhere, serve_forever
from .settings import Settings
from .tokens import make_token


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "airflow-neuro" / "platform"


def stored_token(data_dir: Path, user: str) -> str:
    """The data dir keeps its token, so a restarted platform accepts the same clients."""
    path = data_dir / "token"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    token = make_token(user)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument(
        "--port", type=port_number, default=8765, help="port to bind; 0 picks a free one"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"jobs, logs and storage (default: {default_data_dir()})",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="bearer token clients must send (default: one kept in the data dir)",
    )
    parser.add_argument(
        "--minute-seconds",
        type=float,
        default=60.0,
        help="seconds in a max_run_time_minutes minute (tests shorten it)",
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.0,
        help="share of requests (0-1) answered with an injected fault, for testing clients",
    )  # fmt: skip
    parser.add_argument(
        "--fault-kinds", default="502,503,reset,delay",
        help="faults to inject, comma-separated: 502, 503, 504, reset, delay",
    )  # fmt: skip
    parser.add_argument(
        "--runtime", action="append", default=[], metavar="IMAGE=DIR",
        help="run jobs with image IMAGE (or, with no tag, any tag of it) with DIR/bin first"
        " on their PATH; DIR is a virtualenv or any prefix with a bin/ (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--runtimes", type=Path, default=None, metavar="FILE",
        help='a JSON object of --runtime entries, {"python:3.11": "../.venv-jobs"}, relative'
        " to the file's folder; --runtime overrides its entries",
    )  # fmt: skip
    parser.add_argument(
        "--on-exit", choices=("keep-jobs", "end-jobs"), default="keep-jobs",
        help="what a stop (SIGTERM, Ctrl-C) does to running jobs: keep-jobs (the default, as"
        " on the real platform) leaves them running for a platform started on the same data"
        " dir to pick up; end-jobs kills them and marks them failed",
    )  # fmt: skip
    parser.add_argument(
        "--job-user", default="nobody", metavar="USER",
        help="whom jobs run as when the platform runs as root (default: nobody)",
    )  # fmt: skip
    parser.add_argument("--log-level", default="WARNING")


def raise_open_files_limit() -> None:
    """Each job holds a pipe and a process: let many jobs run at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def serve(args: argparse.Namespace) -> None:
    logging.basicConfig(level=args.log_level.upper())
    raise_open_files_limit()
    try:
        faults = FaultPlan.parse(args.fault_rate, args.fault_kinds)
        runtimes = parse_runtimes(args.runtimes, args.runtime)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    data_dir = (args.data_dir or default_data_dir()).resolve()
    settings = Settings(
        data_dir=data_dir,
        token=args.token or stored_token(data_dir, Settings.user),
        minute_seconds=args.minute_seconds,
        faults=faults,
        runtimes=runtimes,
        job_user=args.job_user,
        keep_jobs_on_stop=args.on_exit == "keep-jobs",
    )
    try:
        job_user(settings)
    except ValueError as e:
        raise SystemExit(f"error: --job-user: {e}") from None
    if bwrap_binary() is None:
        print(f"warning: jobs cannot run: {INSTALL_HINT}", file=sys.stderr, flush=True)
    if reachable_from_elsewhere(args.host):
        print(
            f"warning: --host {args.host} is not a loopback address: the token then travels"
            " over plain HTTP to anyone who can reach the port",
            file=sys.stderr,
            flush=True,
        )
    try:
        asyncio.run(serve_forever(LocalPlatform(settings, args.host, args.port)))
    except CannotListen as e:
        raise SystemExit(f"error: {e}") from None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_neuro.localplatform",
        description="Serve the Neu.ro / Apolo platform API locally, running jobs as processes.",
    )
    add_serve_arguments(parser)
    serve(parser.parse_args(argv))
