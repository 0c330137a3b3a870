"""credit_hold: placing a credit hold through the billing ledger against a raw conditional debit.

Candidate: the real path a job takes to reserve credits — ``Database.uow()`` (BEGIN) +
``Ledger.place_hold`` (one statement: ``set_config('app.user_id', …)`` for row-level security,
then the SQL function ``place_hold``: the hold row, the conditional ``UPDATE accounts``, the
ledger entry) + ``commit``, on the billing schema built by billing's own Alembic migrations, as the
app role, through the kit's SQLAlchemy engine (psycopg 3 async). Every hold has its own key
(``generation:<uuid>``), amount 1, units 1.

Baseline: the least a correct debit can do: ``UPDATE bench_balances SET balance = balance - $1
WHERE user_id = $2 AND balance >= $1`` in autocommit (one statement, one transaction), on a
plain table (no RLS, no ledger) in the same database, as the same role, with plain
``psycopg.AsyncConnection``s, one per worker (no pool checkout at all: the cheapest raw path).

Both sides run ``CONCURRENCY`` workers back to back (closed loop) on one asyncio loop, in two
scenarios: ``spread`` (operation n on user n mod ``USERS``, so concurrent operations never
share a row) and ``hot`` (every operation on one user, so they queue on its row lock). The
side that goes first alternates by round. ratio = candidate holds/s ÷ baseline updates/s
(medians over rounds), for ``spread``; ``hot`` has its own goal. A third loop per scenario,
``same_sql``, sends the candidate's exact statements (BEGIN, the hold, COMMIT) over the
baseline's raw connections, and a fourth, ``function``, sends the hold statement alone in
autocommit (one round trip, one transaction: the baseline's shape). Neither is in a ratio:
candidate vs same_sql is what the kit's unit of work and SQLAlchemy cost, same_sql vs function
the two extra round trips, function vs baseline what the ledger's data design costs
(``function_ratio``).

After each round the ledger is checked exactly (admin connection, past RLS): per user, open
holds = ``held`` = Σ ledger ``delta_held``, ``balance`` = Σ ``delta_balance``, nothing
negative, as many open holds as were placed; and the baseline table lost exactly one credit
per update.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import psycopg
from psycopg.conninfo import make_conninfo

from bench.common import (
    ADMIN_URL,
    BenchError,
    Measurement,
    Result,
    Schema,
    closed_loop,
    goal_met,
    interleaved,
    load_average,
    provisioned_schema,
)
from visiona.billing import config as billing_config
from visiona.billing.repository.ledger import Ledger
from visiona.kit import migrations
from visiona.kit.db import Database

NAME = "credit_hold"
GOAL = ">= 0.5"
GOAL_HOT = ">= 0.33"
SCHEMA = "billing"
CONCURRENCY = 16
USERS = 1000
HOT_USER = "user_bench_hot"
FUNDS = 1_000_000  # credits per user: never the limit, so every hold and update succeeds
OPS = {"spread": 1000, "hot": 500}  # per side, per round
WARMUP_OPS = 200
AMOUNT = 1
TTL = timedelta(hours=1)  # longer than the run: nothing expires while it is checked
SCENARIOS = ("spread", "hot")
SIDES = ("candidate", "baseline")

_DEBIT = "UPDATE bench_balances SET balance = balance - %s WHERE user_id = %s AND balance >= %s"
# The candidate's statement as Ledger sends it, for the raw-driver probes.
_PLACE_HOLD = (
    "SELECT f.hold_id, f.status, f.amount, f.balance, f.held, f.expires_at, f.created "
    "FROM (SELECT set_config('app.user_id', %s, true) AS u) AS me, LATERAL place_hold("
    "me.u, %s, 'generation', %s, %s, 1, make_interval(secs => %s)) AS f"
)

Call = Callable[[], Awaitable[None]]


def _users(scenario: str) -> list[str]:
    return [f"user_bench{i:04d}" for i in range(USERS)] if scenario == "spread" else [HOT_USER]


class Ledgers:
    """Both sides on one database, and what they have done so far (for the exactness check)."""

    def __init__(self, schema: Schema) -> None:
        self.db = Database(schema.app_url, SCHEMA, pool_size=CONCURRENCY)
        self.app_conninfo = schema.app_url.replace("+psycopg", "")
        self.admin_conninfo = make_conninfo(ADMIN_URL, dbname=schema.database)
        self.connections: list[psycopg.AsyncConnection[tuple[object, ...]]] = []
        self.holds = 0
        self.debits = 0

    async def open(self) -> None:
        self.connections = [
            await psycopg.AsyncConnection.connect(
                self.app_conninfo, autocommit=True, options=f"-c search_path={SCHEMA}"
            )
            for _ in range(CONCURRENCY)
        ]

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()
        await self.db.dispose()

    async def fund(self) -> None:
        """Every user's account through the ledger (a purchase), and the same in the table."""
        everyone = _users("spread") + _users("hot")
        pending = iter(everyone)

        async def purchase() -> None:
            user = next(pending)
            async with self.db.uow(user) as uow:
                result = await Ledger(uow.session).post(
                    user_id=user, key=f"purchase:bench-{user}", kind="purchase", delta=FUNDS
                )
                await uow.commit()
            if result.status != "applied":
                raise BenchError(f"funding {user}: {result.status}")

        await closed_loop(purchase, len(everyone), CONCURRENCY)
        async with (
            await psycopg.AsyncConnection.connect(
                self.app_conninfo, autocommit=True, options=f"-c search_path={SCHEMA}"
            ) as conn,
            conn.cursor() as cur,
        ):
            await cur.executemany(
                "INSERT INTO bench_balances (user_id, balance) VALUES (%s, %s)",
                [(user, FUNDS) for user in everyone],
            )

    def candidate(self, scenario: str, ops: int) -> Call:
        users = _users(scenario)
        # Keys and job ids made before the clock starts.
        work = iter(
            [
                (users[n % len(users)], f"generation:{uuid.uuid4()}", str(uuid.uuid4()))
                for n in range(ops)
            ]
        )

        async def place_hold() -> None:
            user, key, job_id = next(work)
            async with self.db.uow() as uow:
                result = await Ledger(uow.session).place_hold(
                    user_id=user,
                    key=key,
                    job_kind="generation",
                    job_id=job_id,
                    amount=AMOUNT,
                    units=1,
                    ttl=TTL,
                )
                await uow.commit()
            if result.status != "open" or not result.created:
                raise BenchError(f"place_hold answered {result.status} (created={result.created})")
            self.holds += 1

        return place_hold

    def same_sql(self, scenario: str, ops: int, *, transaction: bool = True) -> Call:
        """The candidate's transaction (BEGIN, the hold, COMMIT) on the raw connections: what
        the hold costs without the kit's unit of work and SQLAlchemy; without ``transaction``
        the statement alone in autocommit."""
        users = _users(scenario)
        work = iter(
            [
                (users[n % len(users)], f"generation:{uuid.uuid4()}", str(uuid.uuid4()))
                for n in range(ops)
            ]
        )
        free = list(self.connections)
        ttl_s = TTL.total_seconds()

        async def place_hold() -> None:
            user, key, job_id = next(work)
            conn = free.pop()
            try:
                if transaction:
                    async with conn.transaction():
                        cur = await conn.execute(_PLACE_HOLD, (user, key, job_id, AMOUNT, ttl_s))
                        row = await cur.fetchone()
                else:
                    cur = await conn.execute(_PLACE_HOLD, (user, key, job_id, AMOUNT, ttl_s))
                    row = await cur.fetchone()
            finally:
                free.append(conn)
            if row is None or row[1] != "open" or not row[6]:
                raise BenchError(f"place_hold answered {row}")
            self.holds += 1

        return place_hold

    def baseline(self, scenario: str, ops: int) -> Call:
        users = _users(scenario)
        work = iter([users[n % len(users)] for n in range(ops)])
        free = list(self.connections)

        async def debit() -> None:
            user = next(work)
            conn = free.pop()
            try:
                cur = await conn.execute(_DEBIT, (AMOUNT, user, AMOUNT))
            finally:
                free.append(conn)
            if cur.rowcount != 1:
                raise BenchError(f"conditional debit of {user} updated {cur.rowcount} rows")
            self.debits += 1

        return debit

    async def check(self) -> None:
        """The ledger is exact and nothing is negative; raise BenchError otherwise."""
        async with await psycopg.AsyncConnection.connect(
            self.admin_conninfo, autocommit=True
        ) as conn:
            wrong = await (
                await conn.execute(
                    """
                    SELECT a.user_id, a.balance, a.held, COALESCE(h.open, 0),
                           COALESCE(l.balance, 0), COALESCE(l.held, 0)
                    FROM billing.accounts a
                    LEFT JOIN (SELECT user_id, sum(amount) AS open FROM billing.holds
                               WHERE status = 'open' GROUP BY user_id) h USING (user_id)
                    LEFT JOIN (SELECT user_id, sum(delta_balance) AS balance,
                                      sum(delta_held) AS held
                               FROM billing.ledger_entries GROUP BY user_id) l USING (user_id)
                    WHERE a.held <> COALESCE(h.open, 0) OR a.balance - a.held < 0
                       OR a.held < 0 OR a.balance <> COALESCE(l.balance, 0)
                       OR a.held <> COALESCE(l.held, 0)
                    LIMIT 5
                    """
                )
            ).fetchall()
            if wrong:
                raise BenchError(
                    "ledger not exact (user, balance, held, open holds, Σ delta_balance, "
                    f"Σ delta_held): {wrong}"
                )
            row = await (
                await conn.execute(
                    "SELECT (SELECT count(*) FROM billing.holds WHERE status = 'open'),"
                    " (SELECT COALESCE(sum(held), 0) FROM billing.accounts),"
                    " (SELECT count(*) FROM billing.holds WHERE status <> 'open'),"
                    " (SELECT COALESCE(sum(%s - balance), 0) FROM billing.bench_balances),"
                    " (SELECT COALESCE(min(balance), 0) FROM billing.bench_balances)",
                    (FUNDS,),
                )
            ).fetchone()
        assert row is not None
        open_holds, held, other_holds, debited, lowest = (int(v) for v in row)  # type: ignore[call-overload]
        if open_holds != self.holds or held != self.holds * AMOUNT or other_holds:
            raise BenchError(
                f"{self.holds} holds placed, but {open_holds} open ({other_holds} not open) "
                f"holding {held} credits"
            )
        if debited != self.debits * AMOUNT or lowest < 0:
            raise BenchError(
                f"{self.debits} debits made, but bench_balances lost {debited} (lowest {lowest})"
            )


async def _measure(schema: Schema, rounds: int) -> Result:
    ledgers = Ledgers(schema)
    makers: dict[str, Callable[[str, int], Call]] = {
        "candidate": ledgers.candidate,
        "baseline": ledgers.baseline,
        "same_sql": ledgers.same_sql,
        "function": lambda scenario, ops: ledgers.same_sql(scenario, ops, transaction=False),
    }
    results = {s: {side: list[Measurement]() for side in makers} for s in SCENARIOS}
    cpu = {s: {side: list[float]() for side in makers} for s in SCENARIOS}
    load_at_start = load_average()
    try:
        await ledgers.open()
        await ledgers.fund()
        # Warm-up: pools, connections, prepared statements, plan caches.
        for scenario in SCENARIOS:
            for make in makers.values():
                await closed_loop(make(scenario, WARMUP_OPS), WARMUP_OPS, CONCURRENCY)
        await ledgers.check()
        for _, candidate_first in interleaved(rounds):
            # The probe runs last: it is context, not one of the two sides compared.
            order = [*(SIDES if candidate_first else SIDES[::-1]), "same_sql", "function"]
            for scenario in SCENARIOS:
                ops = OPS[scenario]
                for side in order:
                    call = makers[side](scenario, ops)
                    started = time.process_time()
                    measured = Measurement.of(*await closed_loop(call, ops, CONCURRENCY))
                    cpu[scenario][side].append((time.process_time() - started) * 1000 / ops)
                    results[scenario][side].append(measured)
            await ledgers.check()
    finally:
        await ledgers.close()

    med = {s: {side: Measurement.median(results[s][side]) for side in makers} for s in SCENARIOS}
    by_round = {
        s: [
            c.rps / b.rps
            for c, b in zip(results[s]["candidate"], results[s]["baseline"], strict=True)
        ]
        for s in SCENARIOS
    }
    ratio = med["spread"]["candidate"].rps / med["spread"]["baseline"].rps
    hot_ratio = med["hot"]["candidate"].rps / med["hot"]["baseline"].rps
    function_ratio = med["spread"]["function"].rps / med["spread"]["baseline"].rps
    hot_goal = f"hot_ratio {GOAL_HOT}"
    hot_met = goal_met(hot_ratio, GOAL_HOT)
    extra: dict[str, object] = {
        "hot_ratio": round(hot_ratio, 3),
        "goal_hot_ratio": GOAL_HOT,
        "hot_goal_met": hot_met,
        "function_ratio": round(function_ratio, 3),
    }
    for s in SCENARIOS:
        for side in makers:
            m = med[s][side]
            extra[f"{s}_{side}_ops_per_s"] = round(m.rps, 1)
            extra[f"{s}_{side}_p50_ms"] = round(m.p50_ms, 3)
            extra[f"{s}_{side}_p99_ms"] = round(m.p99_ms, 3)
            extra[f"{s}_{side}_client_cpu_ms_per_op"] = round(statistics.median(cpu[s][side]), 3)
        extra[f"{s}_ratio_by_round"] = [round(r, 3) for r in by_round[s]]
        extra[f"{s}_ratio_spread"] = round(statistics.pstdev(by_round[s]), 3)
    extra |= {
        "holds_total": ledgers.holds,
        "debits_total": ledgers.debits,
        "ops_per_side_per_round": OPS,
        "concurrency": CONCURRENCY,
        "spread_users": USERS,
        "load_avg_1m_at_start": load_at_start,
        "baseline": (
            "UPDATE bench_balances SET balance = balance - $1 WHERE user_id = $2 AND balance >= "
            "$1, autocommit, one psycopg.AsyncConnection per worker"
        ),
        "same_sql": (
            "probe, not in the ratio: the candidate's exact statements (BEGIN, the hold, "
            "COMMIT) on the baseline's raw connections; candidate vs same_sql is what the kit's "
            "unit of work and SQLAlchemy cost"
        ),
        "function": (
            "probe: the hold statement alone in autocommit on the raw connections, the "
            "baseline's shape (one round trip, one transaction); function_ratio = function ÷ "
            "baseline, what the ledger's data design costs"
        ),
        "notes": (
            "Throughput = operations ÷ wall time of a closed loop of CONCURRENCY workers; p50/p99 "
            "are per operation in that loop (queueing included). A candidate hold is 3 round "
            "trips (BEGIN, the hold, COMMIT) writing 3 rows (hold, account, ledger entry) and "
            "4 index entries; the baseline is 1 round trip updating 1 row. Both commit synchronously. The "
            "load generator shares the machine's 2 cores with Postgres, so the client's CPU "
            "(client_cpu_ms_per_op, this process) is part of each side's cost. ratio is the "
            "spread scenario; hot_ratio the one-user scenario, where the row lock is held from "
            "the accounts UPDATE to COMMIT (candidate: a ledger INSERT and one more round trip "
            "longer than the baseline)."
        ),
    }
    return Result(
        name=NAME,
        ratio=ratio,
        goal=GOAL,
        candidate=med["spread"]["candidate"],
        baseline=med["spread"]["baseline"],
        rounds=rounds,
        extra=extra,
        headline=(
            "hot_ratio",
            "spread_candidate_ops_per_s",
            "spread_baseline_ops_per_s",
            "spread_same_sql_ops_per_s",
            "function_ratio",
            "hot_candidate_ops_per_s",
            "hot_baseline_ops_per_s",
        ),
        other_goals={hot_goal: hot_met},
    )


def _create_tables(schema: Schema) -> None:
    migrations.upgrade(migrations.locate(billing_config.__file__), schema.migrator_url, SCHEMA)
    # A plain table beside the ledger: no RLS, no trigger, no ledger; the app role gets DML
    # through the schema's default privileges, like on the ledger's tables.
    schema.owner_sql(
        f"CREATE TABLE {SCHEMA}.bench_balances (user_id text PRIMARY KEY,"
        " balance bigint NOT NULL CHECK (balance >= 0))"
    )


def run(rounds: int) -> Result:
    with provisioned_schema("credit", SCHEMA) as schema:
        _create_tables(schema)
        return asyncio.run(_measure(schema, rounds))
