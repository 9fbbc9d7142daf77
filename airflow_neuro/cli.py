"""The ``airflow-neuro`` command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .localplatform.cli import add_serve_arguments, serve
from .localplatform.runtimes import parse_runtimes


def _demo(args: argparse.Namespace) -> None:
    from .demo import run_demo  # imports Airflow's side only when asked

    try:
        runtimes = parse_runtimes(None, args.runtime)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    raise SystemExit(run_demo(args.dag_id, args.dags_folder, args.data_dir, runtimes))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="airflow-neuro")
    commands = parser.add_subparsers(dest="command", required=True)
    platform = commands.add_parser("platform", help="the local Neu.ro-compatible platform")
    platform_commands = platform.add_subparsers(dest="platform_command", required=True)
    serve_parser = platform_commands.add_parser(
        "serve", help="serve the platform API locally, running jobs as processes"
    )
    add_serve_arguments(serve_parser)
    serve_parser.set_defaults(handler=serve)
    demo = commands.add_parser(
        "demo", help="run an example DAG end to end in real Airflow on the local platform"
    )
    demo.add_argument("--dag-id", default="neuro_train_pipeline")
    demo.add_argument("--dags-folder", type=Path, default=Path("examples/dags"))
    demo.add_argument(
        "--data-dir", type=Path, default=None,
        help="keep the platform's jobs and storage here, so that a second run finds the"
        " first one's cached jobs (default: a temporary directory, removed afterwards)",
    )  # fmt: skip
    demo.add_argument(
        "--runtime", action="append", default=[], metavar="IMAGE=DIR",
        help="run jobs of IMAGE in the environment DIR (a virtualenv), as the platform's"
        " --runtime does",
    )  # fmt: skip
    demo.set_defaults(handler=_demo)
    args = parser.parse_args(argv)
    args.handler(args)
