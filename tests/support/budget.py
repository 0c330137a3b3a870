"""The suite's PostgreSQL connections, budgeted against a stock server, and watched.

A stock PostgreSQL allows ``max_connections = 100``, three of them kept for superusers.
``make test`` runs two pytest sessions side by side, each with a stack of its own: the
disruptive tests (with the tests on servers of their own, which use none of the shared
server's connections) and everything else. One session has at most this open:

=============================================================  =====
its stack: 5 processes x (pool 3 + overflow 2 + 1 LISTEN)          30
the most one test adds, the larger of:                             16
  test_scale_out: the second instance of each back service,
  4 x (pool 1 + overflow 1 + 1 LISTEN) = 12, and a gateway
  listing both, pool 2 + 1 + 1 = 4: 16
  test_edge's two extra gateways, 2 x (pool 2 + 1 + 1) = 8,
  and a test's own pools (64 holds at once, on 6): 14
-------------------------------------------------------------  -----
budget of a session                                                46
=============================================================  =====

The restore test (test_backup_restore) starts a second set of services on the restored
database, in place of the row above (16), which it never shares a test with:

=============================================================  =====
restored services: 4 x (pool 1 + overflow 0 + 1 LISTEN)            8
restored gateway: pool 1 + overflow 1 + 1 LISTEN                    3
pg_dump / pg_restore / verify (one at a time, not while it runs)    1
-------------------------------------------------------------  -----
on top of its stack                                                12
=============================================================  =====

Two sessions: 92 at most, within the 97 a stock server gives non-superusers; what the tests
read as a superuser (``admin_sql``, fixtures, the watcher below) comes on top, a connection or
two at a time, and may use the reserved slots.

A pool that is full makes a unit of work wait (``db_pool_timeout_s``), it never fails it, so
a test that wants more concurrency than its pool gets queueing, not an error. The watcher
samples ``pg_stat_activity`` for the run's databases (every name carries the run id) and the
session fails if the peak passes :data:`BUDGET`: a pool added without a cap shows here first.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

import psycopg

from visiona.kit.provision import SERVICES

STACK_POOL_SIZE = 3
STACK_POOL_OVERFLOW = 2
STACK_POOL_ENV = {
    f"{service.upper()}_{setting}": str(value)
    for service in SERVICES
    for setting, value in (
        ("DB_POOL_SIZE", STACK_POOL_SIZE),
        ("DB_POOL_OVERFLOW", STACK_POOL_OVERFLOW),
    )
}
# A gateway the tests run in process (services/gateway/tests), and the extra gateways test_edge
# starts beside the stack's: smaller pools.
IN_PROCESS_POOL = {"db_pool_size": 2, "db_pool_overflow": 1}
EXTRA_GATEWAY_POOL_ENV = {"GATEWAY_DB_POOL_SIZE": "2", "GATEWAY_DB_POOL_OVERFLOW": "1"}
# The restore test's second set of services (see the table above): the smallest pools.
RESTORED_STACK_POOL_ENV = {
    f"{service.upper()}_{setting}": value
    for service in SERVICES
    for setting, value in (
        ("DB_POOL_SIZE", "1"),
        ("DB_POOL_OVERFLOW", "1" if service == "gateway" else "0"),
    )
}
# The second instances of the back services test_scale_out starts beside the stack's.
SECOND_INSTANCE_POOL_ENV = {
    f"{service.upper()}_{setting}": value
    for service in SERVICES
    if service != "gateway"
    for setting, value in (("DB_POOL_SIZE", "1"), ("DB_POOL_OVERFLOW", "1"))
}
BUDGET = 46
# make test's sessions at once (the disruptive tests and the rest).
SESSIONS = 2
SAMPLE_EVERY_S = 0.2


@dataclass
class ConnectionWatcher:
    """Samples how many connections the run's databases have, from a thread of its own."""

    admin_url: str
    run: str
    peak: int = 0
    peak_by_role: Counter[str] = field(default_factory=Counter)
    max_connections: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Read the server's limits (a server too small for the budget is named at once, not
        met by a failing test) and start sampling."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT name, setting::int FROM pg_settings "
                "WHERE name IN ('max_connections', 'superuser_reserved_connections')"
            ).fetchall()
        settings = dict(rows)
        self.max_connections = settings["max_connections"]
        usable = self.max_connections - settings["superuser_reserved_connections"]
        if usable < SESSIONS * BUDGET:
            raise RuntimeError(
                f"PostgreSQL allows {usable} connections to non-superusers (max_connections "
                f"{self.max_connections}); the suite's {SESSIONS} sessions budget {BUDGET} each "
                "(tests/support/budget.py)"
            )
        self._thread = threading.Thread(target=self._run, name="connection-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        query = (
            "SELECT usename, count(*) FROM pg_stat_activity "
            "WHERE datname LIKE 'visiona\\_%%' AND strpos(datname, %s) > 0 GROUP BY usename"
        )
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while not self._stop.wait(SAMPLE_EVERY_S):
                rows = conn.execute(query, (self.run,)).fetchall()
                total = sum(int(n) for _, n in rows)
                if total > self.peak:
                    self.peak = total
                    self.peak_by_role = Counter({str(u): int(n) for u, n in rows})

    def summary(self) -> str:
        roles = ", ".join(f"{role} {n}" for role, n in self.peak_by_role.most_common())
        return (
            f"PostgreSQL connections: peak {self.peak} (budget {BUDGET}, server "
            f"max_connections {self.max_connections}){': ' + roles if roles else ''}"
        )

    @property
    def over_budget(self) -> bool:
        return self.peak > BUDGET
