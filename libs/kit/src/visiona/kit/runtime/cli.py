"""``visiona-<service> serve|migrate|dead-letters``."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from typing import Any

import grpc

from visiona.kit import deadletters, migrations
from visiona.kit.bus import EventBus
from visiona.kit.db import Database
from visiona.kit.internal_token import Minter
from visiona.kit.logging import configure_logging, get_logger
from visiona.kit.runtime.serve import serve
from visiona.kit.runtime.spec import Runtime, ServiceSpec
from visiona.kit.settings import ServiceSettings
from visiona.kit.storage import Storage

log = get_logger(__name__)


def migrate(spec: ServiceSpec, settings: ServiceSettings | None = None) -> None:
    settings = settings or spec.settings_factory()
    configure_logging(settings)
    url = settings.migration_database_url or settings.database_url
    migrations.upgrade(spec.migrations_dir, url.get_secret_value(), settings.db_schema)
    log.info("migrations.applied", schema=settings.db_schema)


def run_cli(spec: ServiceSpec, argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"visiona-{spec.name}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run gRPC, consumers and the outbox relay until SIGTERM")
    sub.add_parser("migrate", help="apply database migrations (as the schema owner)")
    add_dead_letters_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "migrate":
        migrate(spec)
    elif args.command == "dead-letters":
        settings = spec.settings_factory()
        configure_logging(settings)
        asyncio.run(dead_letters(spec, args.action, args.consumer, args.limit, settings))
    else:
        asyncio.run(serve(spec))


def add_dead_letters_parser(sub: Any) -> None:
    cmd = sub.add_parser(
        "dead-letters",
        help="list the dead-lettered events of this service's consumers, or "
        "send them back to their queue once the cause is fixed",
    )
    cmd.add_argument("action", nargs="?", choices=("list", "redrive"), default="list")
    cmd.add_argument("--consumer", help="one consumer group (default: all of this service's)")
    cmd.add_argument("--limit", type=int, default=None, help="at most this many per group")


async def dead_letters(
    spec: ServiceSpec,
    action: str,
    consumer: str | None,
    limit: int | None,
    settings: ServiceSettings,
) -> dict[str, int]:
    """``dead-letters list|redrive``: prints each group's dead letters (event ids and routing
    keys, never payloads) or redrives them; answers the count listed or moved per group."""
    names = [consumer] if consumer else await registered_consumers(spec, settings)
    bus = EventBus.from_settings(settings, connection_name=f"{settings.service_name}-dead-letters")
    await bus.connect()
    done: dict[str, int] = {}
    try:
        for name in names:
            if not await deadletters.declared(bus, name):
                print(f"{name}: no dead-letter queue (the group was never started)")
                continue
            if action == "redrive":
                done[name] = await deadletters.redrive(bus, name, limit)
                print(f"{name}: {done[name]} redriven")
                continue
            done[name] = await bus.dead_letter_count(name)
            print(f"{name}: {done[name]} dead-lettered")
            for letter in await deadletters.peek(bus, name, limit or 50):
                died = letter.died_at.isoformat() if letter.died_at else "-"
                print(
                    f"  {letter.event_id} {letter.routing_key} reason={letter.reason} "
                    f"deaths={letter.deaths} died_at={died}"
                )
    finally:
        await bus.close()
    return done


async def registered_consumers(spec: ServiceSpec, settings: ServiceSettings) -> list[str]:
    """The consumer groups ``spec.setup`` registers, from a runtime that never starts
    (nothing is served, consumed or connected)."""
    try:
        minter = Minter.from_settings(settings)
    except ValueError as exc:
        raise SystemExit(f"visiona-{spec.name}: {exc}") from None
    db = Database.from_settings(settings)
    bus = EventBus.from_settings(settings)
    storage = Storage.from_settings(settings) if settings.s3_endpoint else None
    runtime = Runtime(settings, db, bus, grpc.aio.server(), storage, minter)
    try:
        await spec.setup(runtime)
        return [c.name for c in runtime.consumers]
    finally:
        for close in runtime.closers:
            await close()
        await db.dispose()
