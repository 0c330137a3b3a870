"""GCRA in Postgres (gcra_take, edge_admit of migration 0002), on a clock the test sets."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.schemas import SchemaDb
from visiona.gateway.edge.pseudonyms import Pseudonyms, network_of
from visiona.gateway.edge.ratelimit import Admission, Quota, admit, seconds
from visiona.gateway.repository.rate_bucket import sweep as sweep_buckets

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def at(offset_s: float) -> datetime:
    return T0 + timedelta(seconds=offset_s)


def take(
    gateway_db: SchemaDb, key: str, rate_per_s: float, burst: int, now: datetime
) -> tuple[bool, int, float, float]:
    (row,) = gateway_db.sql(
        "SELECT allowed, remaining, reset_s, retry_after_s FROM gcra_take(%s, %s, %s, %s)",
        key,
        1.0 / rate_per_s,
        burst,
        now,
        as_role="app",
    )
    allowed, remaining, reset_s, retry_after_s = row
    assert isinstance(allowed, bool) and isinstance(remaining, int)
    return allowed, remaining, float(reset_s), float(retry_after_s)  # type: ignore[arg-type]


def fresh() -> str:
    return f"test:{uuid.uuid4().hex}"


def test_a_full_bucket_admits_its_burst_at_once_then_refuses(gateway_db: SchemaDb) -> None:
    key = fresh()
    results = [take(gateway_db, key, 10, 4, at(0)) for _ in range(5)]
    assert [r[0] for r in results] == [True, True, True, True, False]
    assert [r[1] for r in results] == [3, 2, 1, 0, 0]
    # Full again 4 intervals (0.4 s) from now; the next request fits after one interval.
    assert results[3][2] == pytest.approx(0.4)
    assert results[4][2] == pytest.approx(0.4)
    assert results[4][3] == pytest.approx(0.1)


def test_a_refused_request_costs_nothing_and_retry_after_is_exact(gateway_db: SchemaDb) -> None:
    key = fresh()
    for _ in range(2):
        take(gateway_db, key, 2, 2, at(0))
    for _ in range(10):
        assert take(gateway_db, key, 2, 2, at(0.1))[0] is False
    allowed, _, _, retry_after = take(gateway_db, key, 2, 2, at(0.2))
    assert not allowed and retry_after == pytest.approx(0.3)
    assert take(gateway_db, key, 2, 2, at(0.49))[0] is False
    assert take(gateway_db, key, 2, 2, at(0.5))[:2] == (True, 0)


def test_the_bucket_refills_at_the_rate_and_never_beyond_the_burst(gateway_db: SchemaDb) -> None:
    key = fresh()
    for _ in range(5):
        take(gateway_db, key, 5, 5, at(0))
    # 0.6 s at 5/s: three requests' worth.
    assert [take(gateway_db, key, 5, 5, at(0.6))[0] for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    # An hour idle fills it to the burst, not to 18 000.
    later = [take(gateway_db, key, 5, 5, at(3600))[0] for _ in range(6)]
    assert later == [True] * 5 + [False]


def test_a_steady_client_at_the_rate_is_never_refused(gateway_db: SchemaDb) -> None:
    key = fresh()
    for i in range(50):
        allowed, remaining, _, _ = take(gateway_db, key, 4, 3, at(i * 0.25))
        assert allowed and remaining == 2


def test_remaining_counts_exactly_at_a_rate_that_is_not_a_whole_microsecond(
    gateway_db: SchemaDb,
) -> None:
    key = fresh()
    remaining = [take(gateway_db, key, 3, 7, at(0))[1] for _ in range(7)]
    assert remaining == [6, 5, 4, 3, 2, 1, 0]
    assert take(gateway_db, key, 3, 7, at(0))[0] is False


def edge(
    gateway_db: SchemaDb,
    *,
    ip_key: str | None,
    user_id: str | None = None,
    user_key: str | None = None,
    check_erasure: bool = False,
    now: datetime = T0,
    ip: tuple[float, int] = (1.0, 3),
    user: tuple[float, int] = (1.0, 2),
) -> tuple[object, ...]:
    (row,) = gateway_db.sql(
        "SELECT verdict, quota, remaining FROM edge_admit(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        ip_key,
        1.0 / ip[0],
        ip[1],
        user_id,
        user_key,
        1.0 / user[0],
        user[1],
        check_erasure,
        now,
        as_role="app",
    )
    return tuple(row)


def test_edge_admit_reports_the_tighter_bucket_and_the_one_that_refused(
    gateway_db: SchemaDb,
) -> None:
    ip, user = fresh(), fresh()
    assert edge(gateway_db, ip_key=ip, user_id="u1", user_key=user) == ("ok", 2, 1)
    assert edge(gateway_db, ip_key=ip, user_id="u1", user_key=user) == ("ok", 2, 0)
    assert edge(gateway_db, ip_key=ip, user_id="u1", user_key=user) == ("user_limited", 2, 0)
    # The IP bucket paid for all three; the next request is refused by it, first.
    assert edge(gateway_db, ip_key=ip, user_id="u1", user_key=user) == ("ip_limited", 3, 0)
    # Another user behind another address is not affected; a NULL key skips a bucket.
    assert edge(gateway_db, ip_key=fresh(), user_id="u2", user_key=fresh())[0] == "ok"
    assert edge(gateway_db, ip_key=None, user_id="u1", user_key=None)[0] == "ok"


def test_an_erasing_user_is_refused_writes_without_spending_their_budget(
    gateway_db: SchemaDb,
) -> None:
    user_id, user = f"user_{uuid.uuid4().hex[:8]}", fresh()
    gateway_db.sql(
        "INSERT INTO deletions (id, user_id, subject, source, status) "
        "VALUES (%s, %s, %s, 'api', 'erasing')",
        uuid.uuid4(),
        user_id,
        uuid.uuid4().hex,
    )
    try:
        for _ in range(5):
            verdict = edge(
                gateway_db, ip_key=fresh(), user_id=user_id, user_key=user, check_erasure=True
            )
            assert verdict[0] == "erasing"
        # Reads are not checked; the user's bucket is still full.
        assert edge(gateway_db, ip_key=fresh(), user_id=user_id, user_key=user)[:1] == ("ok",)
        # Somebody else is never "erasing", row-level security or not.
        other = edge(gateway_db, ip_key=fresh(), user_id="u3", user_key=fresh(), check_erasure=True)
        assert other[0] == "ok"
    finally:
        gateway_db.sql("DELETE FROM deletions WHERE user_id = %s", user_id)
    after = edge(gateway_db, ip_key=fresh(), user_id=user_id, user_key=user, check_erasure=True)
    assert after[0] == "ok"


async def test_admit_disables_a_limit_with_rate_zero_and_uses_the_database_clock(
    gateway_db: SchemaDb,
) -> None:
    async with gateway_db.opened() as db:
        ip = fresh()
        off = Quota(0, 1)
        tight = Quota(0.001, 1)
        first = await admit(
            db, ip_key=ip, ip_quota=tight, user_id="u", user_key=fresh(), user_quota=off,
            check_erasure=False,
        )  # fmt: skip
        assert (first.verdict, first.quota, first.remaining) == ("ok", 1, 0)
        second = await admit(
            db, ip_key=ip, ip_quota=tight, user_id="u", user_key=None, user_quota=off,
            check_erasure=False,
        )  # fmt: skip
        assert second.verdict == "ip_limited"
        assert 999 < second.retry_after_s <= 1000
        assert second.headers()["Retry-After"] == "1000"
        unlimited = await admit(
            db, ip_key=ip, ip_quota=off, user_id=None, user_key=None, user_quota=off,
            check_erasure=False,
        )  # fmt: skip
        assert unlimited.verdict == "ok" and unlimited.headers() == {}


async def test_the_sweep_deletes_only_full_buckets(gateway_db: SchemaDb) -> None:
    full, busy = fresh(), fresh()
    gateway_db.sql(
        "INSERT INTO rate_buckets (key, tat) VALUES (%s, now() - interval '1 second'), "
        "(%s, now() + interval '1 hour')",
        full,
        busy,
    )
    async with gateway_db.opened() as db:
        assert await sweep_buckets(db) >= 1
    keys = {r[0] for r in gateway_db.sql("SELECT key FROM rate_buckets")}
    assert busy in keys and full not in keys


# --- pure ------------------------------------------------------------------------------------


def test_headers_round_up_to_whole_seconds_and_retry_after_is_at_least_one() -> None:
    limited = Admission("user_limited", 40, 0, 3.9, 0.01)
    assert limited.headers() == {
        "RateLimit-Limit": "40",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "4",
        "Retry-After": "1",
    }
    admitted = Admission("ok", 100, 57, 2.0, 0)
    assert admitted.headers() == {
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "57",
        "RateLimit-Reset": "2",
    }
    assert [seconds(v) for v in (0, 0.0000001, 0.5, 1.0, 1.000001, 2.3)] == [0, 0, 1, 1, 1, 3]


def test_a_client_is_its_ipv4_address_or_its_ipv6_64() -> None:
    assert network_of("203.0.113.9") == "203.0.113.9"
    assert network_of("2001:db8:1:2:aaaa::1") == network_of("2001:db8:1:2:bbbb::2")
    assert network_of("2001:db8:1:2::1") != network_of("2001:db8:1:3::1")
    assert network_of("::ffff:203.0.113.9") == "203.0.113.9"
    assert network_of(None) == "unknown"


def test_pseudonyms_depend_on_key_and_purpose_and_hide_the_value() -> None:
    a, b = Pseudonyms(b"a" * 32), Pseudonyms(b"b" * 32)
    assert a.of("ratelimit-user", "user_1") == a.of("ratelimit-user", "user_1")
    assert a.of("ratelimit-user", "user_1") != b.of("ratelimit-user", "user_1")
    assert a.of("ratelimit-user", "user_1") != a.of("audit-ip", "user_1")
    assert "user_1" not in a.of("ratelimit-user", "user_1")
    assert a.ip("ratelimit-ip", "2001:db8::1") == a.ip("ratelimit-ip", "2001:db8::ffff")
