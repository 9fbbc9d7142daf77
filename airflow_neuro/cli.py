"""The ``airflow-neuro`` command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .localplatform.cli import add_serve_arguments, serve


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
    args = parser.parse_args(argv)
    args.handler(args)
