"""Two checkouts' ``make up`` side by side on one PostgreSQL server and one broker, and
Ctrl-C.

Each stack is ``visiona-dev up`` for a checkout of its own (``tests/support/devstack.py``),
both on a PostgreSQL of the test's own (two whole stacks would not fit the session's
connection budget on the shared server) and on the session's broker.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from bench.chaos.servers import PrivatePostgres
from tests.e2e.test_billing import pay
from tests.support.devstack import DevStack, broker_names, dev_env, dev_stack
from tests.support.infra import Infra, purge_broker
from tests.support.plugin import OwnServers
from tests.support.waiting import wait_for
from visiona.billing.domain.catalog import Catalog

_STARTER = Catalog.load().pack("starter")
assert _STARTER is not None
STARTER_NAME = _STARTER.name


def queues(infra: Infra) -> dict[str, int]:
    """Every queue on the broker and its consumer count."""
    listed = json.loads(
        infra.rabbitmqctl(["-q", "list_queues", "name", "consumers", "--formatter", "json"])
    )
    return {q["name"]: int(q["consumers"]) for q in listed}


def consumer_queues(infra: Infra, prefix: str) -> dict[str, int]:
    """A stack's consumer groups (not its dead letters, not a gateway's live stream)."""
    return {
        name: n
        for name, n in queues(infra).items()
        if name.startswith(prefix) and not name.endswith(".dlq") and ".live." not in name
    }


def buy_starter(stack: DevStack, user: str) -> None:
    session = httpx.post(
        f"{stack.url}/v1/billing/checkout",
        headers=stack.auth(user),
        json={"kind": "pack", "item_id": "starter"},
        timeout=30,
    )
    assert session.status_code == 201, session.text
    pay(session.json(), timeout_s=30)


def balance(stack: DevStack, user: str) -> Any:
    answer = httpx.get(f"{stack.url}/v1/billing/balance", headers=stack.auth(user), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["balance"]


def seaweedfs_sockets(stack: DevStack) -> list[Path]:
    s3 = int(stack.env["S3_PORT"])
    ports = [s3, *(s3 + 10_000 + n for n in range(1, 8))]
    return [s for port in ports for s in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")]


def assert_serves_the_web_app(stack: DevStack) -> None:
    output = stack.output()
    opening = f"Open {stack.web_url} in your browser"
    assert opening in output, output[-3000:]
    assert output.index(opening) < output.index("Visiona is starting"), output[-3000:]

    def landing() -> httpx.Response | None:
        try:
            return httpx.get(stack.web_url, timeout=30)
        except httpx.TransportError:
            return None  # still starting

    page = wait_for(
        f"the web app at {stack.web_url}",
        landing,
        lambda answer: (
            answer is not None and answer.status_code == 200 and STARTER_NAME in answer.text
        ),
        timeout_s=60,
    )
    assert page is not None and page.headers["content-type"].startswith("text/html")
    preflight = httpx.options(
        f"http://127.0.0.1:{stack.env['S3_PORT']}/visiona",
        headers={"Origin": stack.web_url, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.headers.get("access-control-allow-origin") == stack.web_url


# Two make up side by side: minutes to start on a loaded machine.
@pytest.mark.timeout(1200)
def test_two_checkouts_stacks_share_a_broker_and_a_server_without_meeting(
    own_servers: OwnServers, infra: Infra, tmp_path: Path
) -> None:
    # In a folder of its own under /tmp: the postgres OS user cannot reach pytest's.
    postgres = PrivatePostgres(Path(tempfile.mkdtemp(prefix="visiona-devstacks-")))
    postgres.init()
    postgres.start()
    envs = [
        dev_env(tmp_path / checkout / ".dev", postgres.admin_url, infra.amqp_url)
        for checkout in ("a", "b")
    ]
    try:
        with (
            dev_stack(envs[0], tmp_path / "a.log") as a,
            dev_stack(envs[1], tmp_path / "b.log") as b,
        ):
            a.wait_ready()
            b.wait_ready()
            settings = [s.service_env("billing") for s in (a, b)]
            names = [(s["BILLING_QUEUE_PREFIX"], s["BILLING_EVENTS_EXCHANGE"]) for s in settings]
            databases = [
                psycopg.conninfo.conninfo_to_dict(
                    s["BILLING_DATABASE_URL"].replace("+psycopg", "")
                )["dbname"]
                for s in settings
            ]
            assert names[0][0] != names[1][0], f"both stacks' queues are named {names[0][0]!r}*"
            assert names[0][1] != names[1][1], f"both stacks publish to {names[0][1]!r}"
            assert databases[0] != databases[1], f"both stacks use database {databases[0]!r}"

            # Each stack's consumer groups are its own: one consumer each, its own service.
            for prefix, _ in names:
                wait_for(
                    f"every consumer group under {prefix!r} consumed, once",
                    lambda prefix=prefix: consumer_queues(infra, prefix),
                    lambda found, prefix=prefix: (
                        f"{prefix}billing.holds" in found and set(found.values()) == {1}
                    ),
                    timeout_s=60,
                )

            # Each serves its web app, where its first words send a newcomer, with the prices
            # its gateway gives anyone, and its S3 takes the app's uploads from the browser.
            for stack in (a, b):
                assert_serves_the_web_app(stack)

            # The same user on each stack: paid once on each, credited once on each.
            for stack in (a, b):
                buy_starter(stack, "alice")
            for stack in (a, b):
                wait_for("alice's credits", lambda s=stack: balance(s, "alice"), lambda v: v == 200)

            # Ctrl-C: everything stops, SeaweedFS cleanly, and leaves no socket behind.
            for stack in (a, b):
                stack.interrupt()
                assert "web stopped" in stack.output(), stack.output()[-3000:]
                assert "S3 (SeaweedFS) stopped (exit status 0)" in stack.output(), stack.output()[
                    -3000:
                ]
                assert seaweedfs_sockets(stack) == []
    finally:
        postgres.stop()
        shutil.rmtree(postgres.root, ignore_errors=True)
        # Only names of these stacks' own (none before a stack made its id).
        ours = tuple(n for env in envs for n in broker_names(Path(env["VISIONA_DEV_DIR"])))
        if ours:
            asyncio.run(purge_broker(infra, ours))
