"""The suite's tiers and the fixtures that reach real servers (loaded by the root conftest).

Tiers follow from what a test uses, so a marker cannot lie:

- ``e2e``: the running stack (the ``stack`` fixture), or a whole platform the test starts on
  servers of its own (``own_servers``: the chaos run);
- ``integration``: PostgreSQL, RabbitMQ or S3 but no stack (``infra``, ``s3``), or servers the
  test starts itself as processes (a SeaweedFS: ``new_seaweedfs``; provider emulators to stop,
  kill and restart: ``emulator_processes``);
- ``unit``: none of them: no servers, nothing started.

``disruptive`` is declared by the test: it kills, stops or reconfigures stack processes. Such
a test gets the stack restored and proven ready after it (one on servers of its own tears its
platform down itself). ``make test`` runs them in a pytest session of their own, on a stack
of their own, after everything else; a session that selects both kinds runs the disruptive
tests last.

Nothing here starts at import: the servers start with the first fixture that needs them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import infra as infra_module
from tests.support.budget import ConnectionWatcher
from tests.support.emulator_process import EmulatorProcess
from tests.support.infra import Infra, purge_broker
from tests.support.schemas import SchemaDb, fresh_schema
from tests.support.stack import RunningStack, running_stack
from visiona.emulators.stack import S3Config, SeaweedFS, check_postgres, check_rabbitmq
from visiona.kit.bus import EventBus
from visiona.kit.migrations import outbox_inbox_ddl, user_rls_ddl
from visiona.kit.storage import Storage


@dataclass(frozen=True)
class OwnServers:
    postgres_bin: Path  # initdb, postgres, pg_ctl
    rabbitmq_bin: Path  # rabbitmq-server, rabbitmqctl


# Every database, role, exchange and queue this session makes carries it.
RUN = uuid.uuid4().hex[:8]
TIERS = ("unit", "integration", "e2e")
DISRUPTIVE = "disruptive"
OWN_SERVERS = "own_servers"
_watcher: ConnectionWatcher | None = None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "unit: no servers at all (derived from the fixtures)")
    config.addinivalue_line(
        "markers", "integration: PostgreSQL, RabbitMQ or S3, no stack (derived)"
    )
    config.addinivalue_line("markers", "e2e: the running stack (derived)")
    config.addinivalue_line(
        "markers", "disruptive: kills, stops or reconfigures stack processes (declared)"
    )
    config.addinivalue_line(
        "markers",
        "own_servers: starts PostgreSQL and RabbitMQ servers of its own, no stack of the "
        "session's (derived); make test runs these beside the rest, with the disruptive tests",
    )


def tier_of(item: pytest.Item) -> str:
    names = set(getattr(item, "fixturenames", ()))
    if names & {"stack", "own_servers"}:
        return "e2e"
    if names & {"infra", "s3", "new_seaweedfs", "emulator_processes"}:
        return "integration"
    return "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        declared = [t for t in TIERS if item.get_closest_marker(t)]
        if declared:
            raise pytest.UsageError(
                f"{item.nodeid}: tiers are derived from the fixtures a test uses; "
                f"remove @pytest.mark.{declared[0]}"
            )
        tier = tier_of(item)
        if item.get_closest_marker(DISRUPTIVE) and tier != "e2e":
            raise pytest.UsageError(f"{item.nodeid} is marked disruptive but uses no stack")
        item.add_marker(tier)
        if "own_servers" in getattr(item, "fixturenames", ()):
            item.add_marker(OWN_SERVERS)
    # Stable: the order within each group stays as collected.
    items.sort(key=lambda item: item.get_closest_marker(DISRUPTIVE) is not None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _watcher is not None:
        terminalreporter.write_line(_watcher.summary())
        if _watcher.over_budget:
            terminalreporter.write_line(
                "FAILED: over the connection budget (tests/support/budget.py)", red=True
            )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _watcher is not None:
        _watcher.stop()
        if _watcher.over_budget and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    infra_module.stop()


# --- servers --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def infra() -> Infra:
    """PostgreSQL and RabbitMQ, checked once; the connection watcher starts with them."""
    global _watcher
    started = infra_module.start()
    problems = [
        p for p in (check_postgres(started.admin_url), check_rabbitmq(started.amqp_url)) if p
    ]
    if problems:
        pytest.exit("\n".join(problems), returncode=pytest.ExitCode.USAGE_ERROR)
    if _watcher is None:
        watcher = ConnectionWatcher(started.admin_url, RUN)
        try:
            watcher.start()
        except RuntimeError as exc:
            pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
        _watcher = watcher
    return started


@pytest.fixture(scope="session")
def run_id() -> str:
    return RUN


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Config]:
    """One SeaweedFS for the session (the stack's S3 too), with SSE-S3 as the stack runs it."""
    server = SeaweedFS(
        tmp_path_factory.mktemp("s3"),
        access_key="test",
        secret_key="test-secret",
        sse_key="visiona-test-sse-key-encryption",
    )
    server.start()
    try:
        yield server.s3
    finally:
        server.discard()  # the session's data goes with its temporary folder


@pytest.fixture
def new_seaweedfs(tmp_path: Path) -> Iterator[SeaweedFS]:
    """A SeaweedFS of the test's own, not started yet (the test starts and stops it; one
    still running afterwards is killed: its data is thrown away)."""
    server = SeaweedFS(tmp_path / "seaweedfs", access_key="test", secret_key="test-secret")
    try:
        yield server
    finally:
        server.discard()


@pytest.fixture
def emulator_processes() -> Iterator[list[EmulatorProcess]]:
    """Provider emulators as processes of the test's own (it starts, stops and kills them,
    appending each here); any still running afterwards are killed."""
    started: list[EmulatorProcess] = []
    yield started
    for emulator in started:
        emulator.kill()


@pytest.fixture(scope="module")
async def storage(s3: S3Config) -> AsyncIterator[Storage]:
    """A bucket of the session's S3 for one test module, emptied and removed afterwards."""
    storage = Storage(s3.endpoint, s3.access_key, s3.secret_key, f"it-{uuid.uuid4().hex}")
    await storage.ensure_bucket()
    try:
        yield storage
    finally:
        client = storage.client
        for obj in client.list_objects(storage.bucket, recursive=True):
            client.remove_object(storage.bucket, obj.object_name)
        client.remove_bucket(storage.bucket)


@pytest.fixture(scope="session")
def own_servers() -> OwnServers:
    """The binaries a test needs to start PostgreSQL and RabbitMQ servers of its own (it
    starts, stops and kills them itself; the session's servers are not used)."""
    from bench.chaos.servers import ServerError, postgres_bindir, rabbitmq_sbindir

    try:
        return OwnServers(postgres_bindir(), rabbitmq_sbindir())
    except ServerError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def stack(
    infra: Infra, s3: S3Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    """The whole platform as processes, on free ports, for this session only."""
    with running_stack(infra, s3, tmp_path_factory.mktemp("stack"), RUN) as running:
        yield running


@pytest.fixture(autouse=True)
def _stack_as_it_was(request: pytest.FixtureRequest) -> Iterator[None]:
    """After an end-to-end test the emulators' switches are as the stack started them; after
    a disruptive one every process runs and the stack is ready again, or the test fails in
    its teardown (naming what it left down), not the tests after it."""
    yield
    if "stack" not in request.fixturenames:
        return
    running: RunningStack = request.getfixturevalue("stack")
    running.restore_emulators()
    restarted = running.restart_dead()
    if restarted or request.node.get_closest_marker(DISRUPTIVE) is not None:
        running.processes.wait_ready()
    assert not restarted, f"the test left {', '.join(restarted)} down (restarted now)"


# --- databases and the broker ---------------------------------------------------------------


@pytest.fixture(scope="session")
def stack_urls(infra: Infra) -> tuple[str, str]:
    """The admin PostgreSQL URL and the AMQP URL this session uses."""
    return infra.admin_url, infra.amqp_url


KIT_SCHEMA = "kittest"
KIT_DDL = (
    outbox_inbox_ddl(KIT_SCHEMA)
    + f";CREATE TABLE {KIT_SCHEMA}.effects (event_id uuid PRIMARY KEY, user_id text NOT NULL,"
    " n integer NOT NULL);" + user_rls_ddl(KIT_SCHEMA, "effects")
)


@pytest.fixture(scope="session")
def kit_database(infra: Infra) -> Iterator[SchemaDb]:
    """A database with one kit-shaped schema: outbox, inbox and an ``effects`` table (RLS)."""
    with fresh_schema(infra, RUN, KIT_SCHEMA, ddl=KIT_DDL) as created:
        yield created


@pytest.fixture
async def bus(infra: Infra) -> AsyncIterator[EventBus]:
    """An event bus on an exchange and queue prefix unique to the test, removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    exchange = f"visiona.events.k{RUN}{tag}"
    bus = EventBus(
        infra.amqp_url,
        exchange,
        queue_prefix=f"k{RUN}{tag}.",
        delivery_limit=3,
        prefetch=16,
        connection_name=f"test-{RUN}{tag}",
    )
    await bus.connect()
    try:
        yield bus
    finally:
        await bus.close()
        await purge_broker(infra, (f"k{RUN}{tag}.", exchange))


@pytest.fixture(scope="session")
def repo() -> Path:
    return Path(__file__).resolve().parents[2]
