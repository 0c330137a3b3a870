"""Where the tests' PostgreSQL and RabbitMQ come from.

- A configured URL wins (``VISIONA_ADMIN_DATABASE_URL``, ``VISIONA_AMQP_URL``; a broker
  elsewhere than the default port names its node in ``VISIONA_RABBITMQ_NODE``).
- With no URL configured and a Docker engine present, testcontainers starts both (PostgreSQL
  with trust auth, RabbitMQ 3.13) for the session.
- Otherwise the machine's own services at their default addresses are used (this is what
  CI and the developers' machines here do: they have no Docker engine).

``rabbitmqctl`` runs where the broker runs: locally, or inside the container.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
ADMIN_ENV = "VISIONA_ADMIN_DATABASE_URL"
AMQP_ENV = "VISIONA_AMQP_URL"
NODE_ENV = "VISIONA_RABBITMQ_NODE"

Mode = Literal["configured", "containers", "local"]


def choose_mode(env: Mapping[str, str], docker_engine: Callable[[], bool]) -> Mode:
    if env.get(ADMIN_ENV) or env.get(AMQP_ENV):
        return "configured"
    return "containers" if docker_engine() else "local"


def docker_engine_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def local_rabbitmqctl(amqp_url: str, node: str | None) -> Callable[[list[str]], str]:
    """``rabbitmqctl`` against the broker the tests use: the machine's default node when the
    broker is the default one, else the node named by ``VISIONA_RABBITMQ_NODE`` (a broker of
    another address with no node named is an error, not a silent look at the wrong broker)."""
    target = ["-n", node] if node else []
    if not node and urlsplit(amqp_url).port not in (None, 5672):
        target = None  # type: ignore[assignment]

    def rabbitmqctl(args: list[str]) -> str:
        if target is None:
            raise RuntimeError(
                f"the tests' broker is {urlsplit(amqp_url).netloc.rsplit('@', 1)[-1]}: name its "
                f"node in {NODE_ENV} (e.g. rabbit@localhost) for rabbitmqctl"
            )
        argv = ["rabbitmqctl", *target, *args]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    return rabbitmqctl


@dataclass
class Infra:
    mode: Mode
    admin_url: str
    amqp_url: str
    rabbitmqctl: Callable[[list[str]], str] = field(
        default_factory=lambda: local_rabbitmqctl(DEFAULT_AMQP_URL, None)
    )
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()


def _containers() -> Infra:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    postgres = (
        DockerContainer("postgres:16")
        .with_env("POSTGRES_HOST_AUTH_METHOD", "trust")
        .with_exposed_ports(5432)
    )
    rabbitmq = DockerContainer("rabbitmq:3.13").with_exposed_ports(5672)
    infra = Infra("containers", "", "")
    postgres.start()
    infra.closers.append(postgres.stop)
    rabbitmq.start()
    infra.closers.append(rabbitmq.stop)
    # Postgres restarts once after initdb; the second "ready" line is the real one.
    wait_for_logs(postgres, r"database system is ready to accept connections", timeout=60)
    wait_for_logs(rabbitmq, r"Server startup complete", timeout=120)
    pg_host, pg_port = postgres.get_container_host_ip(), postgres.get_exposed_port(5432)
    mq_host, mq_port = rabbitmq.get_container_host_ip(), rabbitmq.get_exposed_port(5672)
    infra.admin_url = f"postgresql://postgres@{pg_host}:{pg_port}/postgres"
    infra.amqp_url = f"amqp://guest:guest@{mq_host}:{mq_port}/"

    def rabbitmqctl(args: list[str]) -> str:
        result = rabbitmq.exec(["rabbitmqctl", *args])
        if result.exit_code != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.output!r}")
        return bytes(result.output).decode()

    infra.rabbitmqctl = rabbitmqctl
    return infra


_current: Infra | None = None


def start() -> Infra:
    """Decide once per session and export the URLs for every process the tests start.

    Called by the ``infra`` fixture, never at import: collecting or running the unit tier
    starts nothing."""
    global _current
    if _current is None:
        mode = choose_mode(os.environ, docker_engine_available)
        if mode == "containers":
            _current = _containers()
        else:
            amqp_url = os.environ.get(AMQP_ENV, DEFAULT_AMQP_URL)
            _current = Infra(
                mode,
                os.environ.get(ADMIN_ENV, DEFAULT_ADMIN_URL),
                amqp_url,
                rabbitmqctl=local_rabbitmqctl(amqp_url, os.environ.get(NODE_ENV) or None),
            )
        os.environ[ADMIN_ENV] = _current.admin_url
        os.environ[AMQP_ENV] = _current.amqp_url
    return _current


def stop() -> None:
    global _current
    if _current is not None:
        _current.close()
        _current = None


async def purge_broker(infra: Infra, prefixes: tuple[str, ...]) -> None:
    """Delete a run's queues and exchanges (rabbitmqctl lists them; names are unique)."""
    import aio_pika

    names: dict[str, list[str]] = {}
    for kind in ("queues", "exchanges"):
        listed = await asyncio.to_thread(infra.rabbitmqctl, ["-q", f"list_{kind}", "name"])
        names[kind] = [n for n in listed.split() if n.startswith(prefixes)]
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in names["queues"]:
            await channel.queue_delete(queue)
        for exchange in names["exchanges"]:
            await channel.exchange_delete(exchange)
