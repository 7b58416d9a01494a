"""``python -m engine``: tools for operators and flow authors."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from engine.config import InvalidSettings, load_settings
from engine.store import open_store
from engine.web.api_token import rotate_api_token

Command = Callable[[argparse.Namespace], int]


def _api_token(args: argparse.Namespace) -> int:
    if not args.rotate:
        print("The API token is shown once, when it is made; use --rotate to make a new one.")
        return 1
    settings = load_settings()
    if settings.api_token:
        print("API_TOKEN is set in the environment; change it there.", file=sys.stderr)
        return 1

    async def rotate() -> str:
        store = await open_store(settings.database_url)
        try:
            return (await rotate_api_token(store))[1]
        finally:
            await store.close()

    print(asyncio.run(rotate()))
    print("A running server takes the new token up within a second.", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    token = commands.add_parser("api-token", help="make a new REST API token")
    token.add_argument("--rotate", action="store_true", help="replace the stored token")
    token.set_defaults(run=_api_token)
    # Bot flows: validate, schema, graph, chat.
    from engine.flows.cli import add_commands as add_flow_commands

    add_flow_commands(commands)
    from engine.devtools.customer import add_command as add_customer_command

    add_customer_command(commands)
    from engine.worker import add_command as add_worker_command

    add_worker_command(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # ``python -m engine`` alone: what it can do
        parser.print_help()
        sys.exit(0)
    run: Command = args.run
    try:
        sys.exit(run(args))
    except InvalidSettings as invalid:
        print(invalid, file=sys.stderr)
        sys.exit(2)
