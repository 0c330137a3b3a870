"""``visiona-gateway serve``: the REST edge on uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from visiona.gateway.app import create_app
from visiona.gateway.config import GatewaySettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="visiona-gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the REST API until SIGTERM")
    parser.parse_args(argv)
    settings = GatewaySettings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
