"""The edge: rate-limit buckets (GCRA), idempotency keys, the audit log, and the functions
that make each edge check one round trip.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from visiona.kit.migrations import enable_user_rls

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "gateway"

# Rate limits are GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp
# per key): a bucket of `burst` requests refills one request every `interval` seconds. `tat`
# (theoretical arrival time) is when the bucket would be full again; a request is admitted
# when tat + interval <= now + burst * interval, and then moves tat on by one interval. A
# bucket whose tat has passed is full, exactly as if it had no row: the sweep deletes those.
#
# UNLOGGED: no WAL for the hottest write of the gateway. After a crash of Postgres the table
# is empty, which only means every bucket starts full once. Keys are keyed hashes
# (visiona.gateway.pseudonyms): no user id or IP is stored.
BUCKETS = f"""
CREATE UNLOGGED TABLE "{SCHEMA}".rate_buckets (
    key text PRIMARY KEY,
    tat timestamptz NOT NULL
) WITH (fillfactor = 70);
"""

# SECURITY INVOKER (the default): the functions run under the caller's row-level security.
FUNCTIONS = f"""
-- One request against one bucket: a single INSERT ... ON CONFLICT DO UPDATE ... RETURNING,
-- atomic under concurrency (the row lock orders the instances of every gateway). A refused
-- request writes nothing; the conflicting row stays locked until the statement ends, so the
-- read that follows sees the tat that refused it. p_now is the database clock unless a test
-- passes its own: every gateway instance shares one clock.
CREATE FUNCTION "{SCHEMA}".gcra_take(
    p_key text, p_interval_s double precision, p_burst integer, p_now timestamptz,
    OUT allowed boolean, OUT remaining integer, OUT reset_s double precision,
    OUT retry_after_s double precision)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_t interval := make_interval(secs => p_interval_s);
    v_tau interval := make_interval(secs => p_interval_s) * p_burst;
    -- The interval as Postgres holds it (microseconds), so counting intervals is exact.
    v_t_s double precision := extract(epoch FROM make_interval(secs => p_interval_s));
    v_tat timestamptz;
BEGIN
    INSERT INTO "{SCHEMA}".rate_buckets AS b (key, tat) VALUES (p_key, p_now + v_t)
    ON CONFLICT (key) DO UPDATE SET tat = greatest(b.tat, p_now) + v_t
        WHERE greatest(b.tat, p_now) + v_t <= p_now + v_tau
    RETURNING b.tat INTO v_tat;
    allowed := FOUND;
    IF NOT allowed THEN
        SELECT b.tat INTO v_tat FROM "{SCHEMA}".rate_buckets b WHERE b.key = p_key;
    END IF;
    reset_s := greatest(extract(epoch FROM v_tat - p_now), 0);
    IF allowed THEN
        remaining := floor(extract(epoch FROM p_now + v_tau - v_tat) / v_t_s + 1e-6);
        retry_after_s := 0;
    ELSE
        remaining := 0;
        retry_after_s := extract(epoch FROM v_tat + v_t - v_tau - p_now);
    END IF;
END $$;

-- Every check the edge makes before a request, in one round trip: the client's IP bucket,
-- then (for a write by a signed-in user) whether the user's account is being erased, then
-- the user's bucket. A NULL key skips that bucket. The first check that refuses decides:
-- verdict 'ip_limited' | 'user_limited' | 'erasing' | 'ok'. quota, remaining and reset_s
-- describe the bucket that refused or, when admitted, the one with the fewest requests left.
CREATE FUNCTION "{SCHEMA}".edge_admit(
    p_ip_key text, p_ip_interval_s double precision, p_ip_burst integer,
    p_user_id text, p_user_key text, p_user_interval_s double precision,
    p_user_burst integer, p_check_erasure boolean, p_now timestamptz DEFAULT NULL,
    OUT verdict text, OUT quota integer, OUT remaining integer, OUT reset_s double precision,
    OUT retry_after_s double precision)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    g record;
BEGIN
    verdict := 'ok';
    retry_after_s := 0;
    IF p_ip_key IS NOT NULL THEN
        SELECT * INTO g FROM "{SCHEMA}".gcra_take(p_ip_key, p_ip_interval_s, p_ip_burst, v_now);
        quota := p_ip_burst;
        remaining := g.remaining;
        reset_s := g.reset_s;
        IF NOT g.allowed THEN
            verdict := 'ip_limited';
            retry_after_s := g.retry_after_s;
            RETURN;
        END IF;
    END IF;
    IF p_check_erasure AND p_user_id IS NOT NULL THEN
        -- deletions has row-level security: act as the user for the rest of this statement's
        -- transaction (autocommit: just this call).
        PERFORM set_config('app.user_id', p_user_id, true);
        IF EXISTS (SELECT 1 FROM "{SCHEMA}".deletions d WHERE d.user_id = p_user_id) THEN
            verdict := 'erasing';
            RETURN;
        END IF;
    END IF;
    IF p_user_key IS NOT NULL THEN
        SELECT * INTO g
            FROM "{SCHEMA}".gcra_take(p_user_key, p_user_interval_s, p_user_burst, v_now);
        IF NOT g.allowed THEN
            verdict := 'user_limited';
            quota := p_user_burst;
            remaining := 0;
            reset_s := g.reset_s;
            retry_after_s := g.retry_after_s;
            RETURN;
        END IF;
        IF quota IS NULL OR g.remaining <= remaining THEN
            quota := p_user_burst;
            remaining := g.remaining;
            reset_s := g.reset_s;
        END IF;
    END IF;
END $$;

-- Claim (user, key) for a request with this fingerprint, or say what is there. One call:
-- outcome 'claimed' (run the request), or the stored state ('in_progress' | 'done') with
-- whether the fingerprint matches and, when done, the stored response. An attempt whose
-- lease lapsed (its gateway died mid-request) is taken over by a request with the same
-- fingerprint; an expired row is as good as absent.
CREATE FUNCTION "{SCHEMA}".idempotency_claim(
    p_user text, p_key text, p_fingerprint bytea, p_attempt uuid,
    p_lease_s double precision, p_ttl_s double precision,
    OUT outcome text, OUT same_request boolean, OUT status integer, OUT headers jsonb,
    OUT body bytea)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    PERFORM set_config('app.user_id', p_user, true);
    LOOP
        INSERT INTO "{SCHEMA}".idempotency_keys AS k
            (user_id, key, fingerprint, state, attempt, locked_until, expires_at)
        VALUES (p_user, p_key, p_fingerprint, 'in_progress', p_attempt,
            now() + make_interval(secs => p_lease_s), now() + make_interval(secs => p_ttl_s))
        ON CONFLICT (user_id, key) DO UPDATE SET
            fingerprint = EXCLUDED.fingerprint, state = 'in_progress',
            attempt = EXCLUDED.attempt, locked_until = EXCLUDED.locked_until,
            status = NULL, headers = NULL, body = NULL, created_at = now(),
            expires_at = EXCLUDED.expires_at
        WHERE k.expires_at <= now()
            OR (k.state = 'in_progress' AND k.locked_until <= now()
                AND k.fingerprint = EXCLUDED.fingerprint)
        RETURNING k.attempt INTO r;
        IF FOUND THEN
            outcome := 'claimed';
            same_request := true;
            RETURN;
        END IF;
        SELECT k.state, k.fingerprint = p_fingerprint AS same, k.status, k.headers, k.body
            INTO r FROM "{SCHEMA}".idempotency_keys k
            WHERE k.user_id = p_user AND k.key = p_key;
        IF FOUND THEN
            outcome := r.state;
            same_request := r.same;
            IF r.same AND r.state = 'done' THEN
                status := r.status;
                headers := r.headers;
                body := r.body;
            END IF;
            RETURN;
        END IF;
        -- Released between the two statements (its attempt failed): claim it again.
    END LOOP;
END $$;

-- Store the response of the attempt that holds the claim (not of one that lost it).
CREATE FUNCTION "{SCHEMA}".idempotency_finish(
    p_user text, p_key text, p_attempt uuid, p_status integer, p_headers jsonb, p_body bytea)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.user_id', p_user, true);
    UPDATE "{SCHEMA}".idempotency_keys k
        SET state = 'done', status = p_status, headers = p_headers, body = p_body,
            locked_until = NULL
        WHERE k.user_id = p_user AND k.key = p_key AND k.attempt = p_attempt
            AND k.state = 'in_progress';
    RETURN FOUND;
END $$;

-- Give the key back after a failed attempt (5xx, an exception), so a retry runs.
CREATE FUNCTION "{SCHEMA}".idempotency_release(p_user text, p_key text, p_attempt uuid)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.user_id', p_user, true);
    DELETE FROM "{SCHEMA}".idempotency_keys k
        WHERE k.user_id = p_user AND k.key = p_key AND k.attempt = p_attempt
            AND k.state = 'in_progress';
    RETURN FOUND;
END $$;
"""


def _now() -> sa.Column[object]:
    return sa.func.now()  # type: ignore[return-value]


def upgrade() -> None:
    op.execute(BUCKETS)

    # A POST's Idempotency-Key, per user: the request's fingerprint and, once it finished, the
    # response to replay (status, the headers that describe the body, the body's bytes).
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("attempt", UUID(as_uuid=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("status", sa.Integer),
        sa.Column("headers", JSONB),
        sa.Column("body", sa.LargeBinary),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('in_progress', 'done')", name="idempotency_keys_state"),
        sa.CheckConstraint(
            "state = 'in_progress' OR status IS NOT NULL", name="idempotency_keys_done"
        ),
        schema=SCHEMA,
    )
    op.create_index("idempotency_keys_expires", "idempotency_keys", ["expires_at"], schema=SCHEMA)
    enable_user_rls(SCHEMA, "idempotency_keys")
    # The sweeper deletes expired keys of every user as the system principal; it can neither
    # read nor touch a live one.
    op.execute(
        f"""
        CREATE POLICY system_sweep ON "{SCHEMA}".idempotency_keys FOR DELETE
            USING (current_setting('app.principal', true) = 'system' AND expires_at <= now());
        CREATE POLICY system_sweep_read ON "{SCHEMA}".idempotency_keys FOR SELECT
            USING (current_setting('app.principal', true) = 'system' AND expires_at <= now());
        """
    )

    # Security-relevant actions (visiona.gateway.audit). Details never hold secrets or
    # personal data; the client's address is kept only as a keyed hash.
    op.create_table(
        "audit_log",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("user_id", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("ip_hash", sa.Text),
        sa.Column("request_id", sa.Text),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.CheckConstraint("actor IN ('user', 'system', 'operator')", name="audit_log_actor"),
        schema=SCHEMA,
    )
    op.create_index("audit_log_user_at", "audit_log", ["user_id", "at", "id"], schema=SCHEMA)
    enable_user_rls(SCHEMA, "audit_log", system_read=True)
    # An entry about no user (user_id NULL) is written by the system principal.
    op.execute(
        f"""
        CREATE POLICY system_insert ON "{SCHEMA}".audit_log FOR INSERT
            WITH CHECK (user_id IS NULL AND current_setting('app.principal', true) = 'system');
        """
    )

    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute(
        f"""
        DROP FUNCTION "{SCHEMA}".idempotency_release(text, text, uuid);
        DROP FUNCTION "{SCHEMA}".idempotency_finish(text, text, uuid, integer, jsonb, bytea);
        DROP FUNCTION "{SCHEMA}".idempotency_claim(
            text, text, bytea, uuid, double precision, double precision);
        DROP FUNCTION "{SCHEMA}".edge_admit(
            text, double precision, integer, text, text, double precision, integer, boolean,
            timestamptz);
        DROP FUNCTION "{SCHEMA}".gcra_take(text, double precision, integer, timestamptz);
        """
    )
    for table in ("audit_log", "idempotency_keys", "rate_buckets"):
        op.drop_table(table, schema=SCHEMA)
