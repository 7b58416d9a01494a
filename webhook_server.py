"""Run optinflow: ``python webhook_server.py [--host H] [--port P]``.

Configuration comes from the environment (see README); with none, the server runs on
a SQLite file in the working folder.
"""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from engine.config import InvalidSettings, load_settings
from engine.flows.flowset import FlowsInvalid
from engine.store import StoreUnavailable
from engine.web.app import GENERATED_API_TOKEN, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the optinflow server.")
    parser.add_argument("--host", help="address to listen on (default: HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: PORT or 8080)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = load_settings().model_copy(update=overrides)
    except InvalidSettings as invalid:
        print(f"optinflow did not start: {invalid}", file=sys.stderr, flush=True)
        sys.exit(2)
    app = create_app(settings)

    async def announce(app: web.Application) -> None:
        lines = [f"optinflow is serving on {settings.base_url}"]
        token = app.get(GENERATED_API_TOKEN)
        if token is not None:
            lines += [
                f"API token (shown once, keep it): {token}",
                f"  try: curl -H 'Authorization: Bearer {token}' "
                f"{settings.base_url}/api/v1/contacts",
            ]
        elif settings.api_token is None:
            lines.append(
                "API token: the one shown at first start "
                "(make a new one with: python -m engine api-token --rotate)"
            )
        print("\n".join(lines), flush=True)

    app.on_startup.append(announce)
    try:
        web.run_app(app, host=settings.host, port=settings.port, print=None)
    except (FlowsInvalid, StoreUnavailable) as cannot:
        # A broken FLOWS_DIR (every problem shown) or a database that cannot be reached.
        print(f"optinflow did not start: {cannot}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
