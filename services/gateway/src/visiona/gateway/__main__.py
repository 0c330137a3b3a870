"""``visiona-gateway serve|migrate``: the REST edge on uvicorn; migrations of its schema."""

from __future__ import annotations

import argparse

import uvicorn

from visiona.gateway.app import create_app
from visiona.gateway.config import GatewaySettings
from visiona.kit import migrations
from visiona.kit.logging import configure_logging

MIGRATIONS = migrations.locate(__file__)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="visiona-gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the REST API until SIGTERM")
    sub.add_parser("migrate", help="apply database migrations (as the schema owner)")
    args = parser.parse_args(argv)
    settings = GatewaySettings()
    if args.command == "migrate":
        configure_logging(settings)
        url = settings.migration_database_url or settings.database_url
        migrations.upgrade(MIGRATIONS, url.get_secret_value(), settings.db_schema)
        return
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
