"""Credit ledger, accounts, holds, subscriptions, checkout sessions, Stripe events.

Every credit movement is one call to a function below, i.e. one round trip and one atomic
statement from the service's point of view; the balance can never go negative because the
table forbids it (CHECKs), not because the code is careful.

``accounts.balance`` is what the user owns; ``accounts.held`` what open holds reserve of it;
available = balance - held. ``ledger_entries`` is append-only (trigger and privileges) and
carries both deltas, so ``sum(delta_balance) = balance`` and ``sum(delta_held) = held`` for
every user at every commit.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

from visiona.kit.migrations import enable_user_rls

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "billing"

TABLES = f"""
CREATE TABLE "{SCHEMA}".accounts (
    user_id text PRIMARY KEY,
    balance bigint NOT NULL DEFAULT 0 CONSTRAINT balance_non_negative CHECK (balance >= 0),
    held bigint NOT NULL DEFAULT 0 CONSTRAINT held_non_negative CHECK (held >= 0),
    stripe_customer_id text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT held_within_balance CHECK (held <= balance)
);

CREATE TABLE "{SCHEMA}".ledger_entries (
    id bigint GENERATED ALWAYS AS IDENTITY,
    user_id text NOT NULL,
    kind text NOT NULL CONSTRAINT ledger_kind CHECK (kind IN (
        'purchase', 'plan_grant', 'hold', 'capture', 'release', 'refund_clawback',
        'adjustment')),
    delta_balance bigint NOT NULL,
    delta_held bigint NOT NULL,
    balance_after bigint NOT NULL,
    held_after bigint NOT NULL,
    idempotency_key text NOT NULL,
    hold_id uuid,
    reference text,
    payment_intent text,
    actor text,
    reason text,
    metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- A user's entries in order (the ledger page reads it backwards). Every index costs
    -- each hold a write, so there is no other.
    CONSTRAINT ledger_entries_pkey PRIMARY KEY (user_id, id),
    -- Keys are per user: one user's key can never collide with, or reveal, another's.
    CONSTRAINT ledger_entries_key UNIQUE (user_id, idempotency_key)
);
CREATE INDEX ledger_entries_payment_intent ON "{SCHEMA}".ledger_entries (payment_intent)
    WHERE payment_intent IS NOT NULL;

CREATE FUNCTION "{SCHEMA}".ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON "{SCHEMA}".ledger_entries
    FOR EACH ROW EXECUTE FUNCTION "{SCHEMA}".ledger_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON "{SCHEMA}".ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION "{SCHEMA}".ledger_append_only();

CREATE TABLE "{SCHEMA}".holds (
    id uuid NOT NULL,
    user_id text NOT NULL,
    idempotency_key text NOT NULL,
    job_kind text NOT NULL,
    job_id text NOT NULL,
    amount bigint NOT NULL CONSTRAINT hold_amount_positive CHECK (amount > 0),
    -- What the amount buys (images of a generation, 1 for a training); an outcome captures
    -- amount * delivered / units.
    units integer NOT NULL DEFAULT 1 CONSTRAINT hold_units_positive CHECK (units > 0),
    status text NOT NULL CONSTRAINT hold_status CHECK (
        status IN ('open', 'rejected', 'settled', 'expired')),
    captured bigint NOT NULL DEFAULT 0,
    released bigint NOT NULL DEFAULT 0,
    outcome text,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    settled_at timestamptz,
    -- A hold that expired (all released) may still capture a late outcome, see settle_hold.
    -- Holds are found by their key (the job), never by id: no index on id.
    CONSTRAINT holds_pkey PRIMARY KEY (user_id, idempotency_key),
    CONSTRAINT hold_settlement CHECK (captured BETWEEN 0 AND amount
        AND released BETWEEN 0 AND amount)
);
CREATE INDEX holds_due ON "{SCHEMA}".holds (expires_at) WHERE status = 'open';

CREATE TABLE "{SCHEMA}".checkout_sessions (
    id text PRIMARY KEY,
    user_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('pack', 'plan')),
    item_id text NOT NULL,
    credits bigint NOT NULL CHECK (credits >= 0),
    amount bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL DEFAULT 'open',
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX checkout_sessions_user ON "{SCHEMA}".checkout_sessions (user_id, created_at);

CREATE TABLE "{SCHEMA}".subscriptions (
    id text PRIMARY KEY,
    user_id text NOT NULL,
    plan_id text,
    status text NOT NULL,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    current_period_end timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_user ON "{SCHEMA}".subscriptions (user_id);

-- Verified Stripe events, stored before anything acts on them. Not user-owned: the payload is
-- Stripe's, and which user it concerns is only known once it is applied.
CREATE TABLE "{SCHEMA}".stripe_events (
    id text PRIMARY KEY,
    type text NOT NULL,
    payload jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    outcome text,
    -- When it was last handed to the applier; an event still open long after is staged again.
    staged_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_open ON "{SCHEMA}".stripe_events (staged_at)
    WHERE processed_at IS NULL;
"""

# SECURITY INVOKER (the default): every function runs under the caller's row-level security.
FUNCTIONS = f"""
-- Credit (or, with a negative delta, debit the available credits of) one user, once per key.
-- Returns applied=false for a key seen before, and status 'insufficient' for a debit that
-- would take available credits below zero (nothing is written then).
CREATE FUNCTION "{SCHEMA}".post_entry(
    p_user text, p_key text, p_kind text, p_delta bigint, p_reference text,
    p_payment_intent text, p_actor text, p_reason text, p_metadata jsonb)
RETURNS TABLE (status text, balance bigint, held bigint, entry_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_balance bigint; v_held bigint; v_id bigint;
BEGIN
    -- Serialise writers of one key; the second sees the first's committed entry.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_user || '/' || p_key, 0));
    SELECT e.id INTO v_id FROM ledger_entries e
        WHERE e.user_id = p_user AND e.idempotency_key = p_key;
    IF FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text, a.balance, a.held, v_id
            FROM accounts a WHERE a.user_id = p_user;
        RETURN;
    END IF;
    IF p_delta >= 0 THEN
        INSERT INTO accounts AS a (user_id, balance) VALUES (p_user, p_delta)
        ON CONFLICT (user_id) DO UPDATE SET balance = a.balance + p_delta, updated_at = now()
        RETURNING a.balance, a.held INTO v_balance, v_held;
    ELSE
        UPDATE accounts a SET balance = a.balance + p_delta, updated_at = now()
            WHERE a.user_id = p_user AND a.balance - a.held + p_delta >= 0
            RETURNING a.balance, a.held INTO v_balance, v_held;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'insufficient'::text, COALESCE(a.balance, 0),
                    COALESCE(a.held, 0), NULL::bigint
                FROM (SELECT 1) one LEFT JOIN accounts a ON a.user_id = p_user;
            RETURN;
        END IF;
    END IF;
    INSERT INTO ledger_entries (user_id, kind, delta_balance, delta_held, balance_after,
        held_after, idempotency_key, reference, payment_intent, actor, reason, metadata)
    VALUES (p_user, p_kind, p_delta, 0, v_balance, v_held, p_key, p_reference,
        p_payment_intent, p_actor, p_reason, COALESCE(p_metadata, '{{}}'::jsonb))
    RETURNING id INTO v_id;
    RETURN QUERY SELECT 'applied'::text, v_balance, v_held, v_id;
END $$;

-- Hold p_amount of the user's available credits for a job, once per key: the hold row claims
-- the key first (a concurrent duplicate waits for it, then finds it), then one conditional
-- UPDATE moves the credits. No read-then-write.
CREATE FUNCTION "{SCHEMA}".place_hold(
    p_user text, p_key text, p_job_kind text, p_job_id text, p_amount bigint,
    p_units integer, p_ttl interval)
RETURNS TABLE (hold_id uuid, status text, amount bigint, balance bigint, held bigint,
               expires_at timestamptz, created boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_id uuid; v_balance bigint; v_held bigint; v_expires timestamptz := now() + p_ttl;
BEGIN
    INSERT INTO holds AS h (id, user_id, idempotency_key, job_kind, job_id, amount, units,
        status, expires_at)
    VALUES (gen_random_uuid(), p_user, p_key, p_job_kind, p_job_id, p_amount, p_units, 'open',
        v_expires)
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING h.id INTO v_id;
    IF v_id IS NULL THEN
        RETURN QUERY SELECT h.id, h.status, h.amount, COALESCE(a.balance, 0),
                COALESCE(a.held, 0), h.expires_at, false
            FROM holds h LEFT JOIN accounts a ON a.user_id = h.user_id
            WHERE h.user_id = p_user AND h.idempotency_key = p_key;
        RETURN;
    END IF;
    UPDATE accounts a SET held = a.held + p_amount, updated_at = now()
        WHERE a.user_id = p_user AND a.balance - a.held >= p_amount
        RETURNING a.balance, a.held INTO v_balance, v_held;
    IF NOT FOUND THEN
        UPDATE holds h SET status = 'rejected', outcome = 'insufficient_credits',
            settled_at = now() WHERE h.user_id = p_user AND h.idempotency_key = p_key;
        RETURN QUERY SELECT v_id, 'rejected'::text, p_amount, COALESCE(a.balance, 0),
                COALESCE(a.held, 0), v_expires, true
            FROM (SELECT 1) one LEFT JOIN accounts a ON a.user_id = p_user;
        RETURN;
    END IF;
    INSERT INTO ledger_entries (user_id, kind, delta_balance, delta_held, balance_after,
        held_after, idempotency_key, hold_id, reference)
    VALUES (p_user, 'hold', 0, p_amount, v_balance, v_held, 'hold:' || p_key, v_id,
        p_job_kind || ':' || p_job_id);
    RETURN QUERY SELECT v_id, 'open'::text, p_amount, v_balance, v_held, v_expires, true;
END $$;

-- Settle an open hold: capture the price of the p_delivered units (of the hold's units) from
-- the balance, release the rest.
-- p_final is 'settled' (an outcome arrived) or 'expired' (the sweeper). A hold that is no
-- longer open is left alone, except that an outcome arriving after expiry still captures
-- what was delivered from the available credits (never below zero; the shortfall is
-- recorded on the entry).
CREATE FUNCTION "{SCHEMA}".settle_hold(
    p_user text, p_key text, p_delivered integer, p_outcome text, p_final text)
RETURNS TABLE (status text, captured bigint, released bigint, balance bigint, held bigint,
               changed boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    h holds%ROWTYPE; v_cap bigint; v_rel bigint; v_balance bigint; v_held bigint;
    v_want bigint;
BEGIN
    SELECT * INTO h FROM holds WHERE holds.idempotency_key = p_key AND holds.user_id = p_user
        FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown'::text, 0::bigint, 0::bigint, NULL::bigint,
            NULL::bigint, false;
        RETURN;
    END IF;
    v_want := h.amount * LEAST(GREATEST(p_delivered, 0), h.units) / h.units;
    IF h.status = 'expired' AND p_final = 'settled' AND v_want > 0 THEN
        -- Late outcome: the job delivered after its hold lapsed. Take what is available.
        SELECT LEAST(v_want, GREATEST(a.balance - a.held, 0)) INTO v_cap
            FROM accounts a WHERE a.user_id = p_user FOR UPDATE;
        v_cap := COALESCE(v_cap, 0);
        UPDATE accounts a SET balance = a.balance - v_cap, updated_at = now()
            WHERE a.user_id = p_user
            RETURNING a.balance, a.held INTO v_balance, v_held;
        INSERT INTO ledger_entries (user_id, kind, delta_balance, delta_held, balance_after,
            held_after, idempotency_key, hold_id, reference, reason, metadata)
        VALUES (p_user, 'capture', -v_cap, 0, v_balance, v_held, 'capture:' || p_key,
            h.id, h.job_kind || ':' || h.job_id, p_outcome,
            jsonb_build_object('late', true, 'wanted', v_want, 'uncollected', v_want - v_cap));
        UPDATE holds SET status = 'settled', outcome = p_outcome, captured = v_cap,
            settled_at = now()
        WHERE holds.user_id = p_user AND holds.idempotency_key = p_key;
        RETURN QUERY SELECT 'settled'::text, v_cap, h.released, v_balance, v_held, true;
        RETURN;
    END IF;
    IF h.status <> 'open' THEN
        RETURN QUERY SELECT h.status, h.captured, h.released, a.balance, a.held, false
            FROM accounts a WHERE a.user_id = p_user;
        RETURN;
    END IF;
    v_cap := v_want;
    v_rel := h.amount - v_cap;
    UPDATE accounts a SET balance = a.balance - v_cap, held = a.held - h.amount,
            updated_at = now()
        WHERE a.user_id = p_user
        RETURNING a.balance, a.held INTO v_balance, v_held;
    IF v_cap > 0 THEN
        INSERT INTO ledger_entries (user_id, kind, delta_balance, delta_held, balance_after,
            held_after, idempotency_key, hold_id, reference, reason)
        VALUES (p_user, 'capture', -v_cap, -v_cap, v_balance + 0, v_held + v_rel,
            'capture:' || p_key, h.id, h.job_kind || ':' || h.job_id, p_outcome);
    END IF;
    IF v_rel > 0 THEN
        INSERT INTO ledger_entries (user_id, kind, delta_balance, delta_held, balance_after,
            held_after, idempotency_key, hold_id, reference, reason)
        VALUES (p_user, 'release', 0, -v_rel, v_balance, v_held,
            'release:' || p_key, h.id, h.job_kind || ':' || h.job_id, p_outcome);
    END IF;
    UPDATE holds SET status = p_final, outcome = p_outcome, captured = v_cap,
        released = v_rel, settled_at = now()
        WHERE holds.user_id = p_user AND holds.idempotency_key = p_key;
    RETURN QUERY SELECT p_final, v_cap, v_rel, v_balance, v_held, true;
END $$;

-- Take back credits a refund paid for, once per key: never more than is available (held
-- credits back running jobs), and the part that could not be taken is recorded.
CREATE FUNCTION "{SCHEMA}".claw_back(
    p_user text, p_key text, p_amount bigint, p_reference text, p_payment_intent text,
    p_metadata jsonb)
RETURNS TABLE (status text, taken bigint, uncollected bigint, balance bigint, held bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_before bigint; v_balance bigint; v_held bigint; v_taken bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_user || '/' || p_key, 0));
    IF EXISTS (SELECT 1 FROM ledger_entries e
               WHERE e.user_id = p_user AND e.idempotency_key = p_key) THEN
        RETURN QUERY SELECT 'duplicate'::text, 0::bigint, 0::bigint, a.balance, a.held
            FROM accounts a WHERE a.user_id = p_user;
        RETURN;
    END IF;
    SELECT a.balance - a.held INTO v_before FROM accounts a WHERE a.user_id = p_user
        FOR UPDATE;
    v_taken := LEAST(GREATEST(p_amount, 0), GREATEST(COALESCE(v_before, 0), 0));
    INSERT INTO accounts AS a (user_id) VALUES (p_user)
    ON CONFLICT (user_id) DO UPDATE SET balance = a.balance - v_taken, updated_at = now()
    RETURNING a.balance, a.held INTO v_balance, v_held;
    INSERT INTO ledger_entries (user_id, kind, delta_balance, delta_held, balance_after,
        held_after, idempotency_key, reference, payment_intent, metadata)
    VALUES (p_user, 'refund_clawback', -v_taken, 0, v_balance, v_held, p_key, p_reference,
        p_payment_intent, COALESCE(p_metadata, '{{}}'::jsonb) || jsonb_build_object(
            'requested', p_amount, 'uncollected', p_amount - v_taken));
    RETURN QUERY SELECT 'applied'::text, v_taken, p_amount - v_taken, v_balance, v_held;
END $$;
"""


def upgrade() -> None:
    op.execute(TABLES)
    op.execute(FUNCTIONS)
    for table in ("accounts", "holds", "checkout_sessions", "subscriptions"):
        # The system principal finds owners (a Stripe customer's user, due holds) by reading.
        enable_user_rls(SCHEMA, table, system_read=True)
    enable_user_rls(SCHEMA, "ledger_entries")
    # Append-only for the service too: beyond the trigger, no role but the owner keeps UPDATE,
    # DELETE or TRUNCATE on the ledger (the app role got them by default privileges).
    op.execute(
        f"""
        DO $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT DISTINCT grantee FROM information_schema.role_table_grants
                WHERE table_schema = '{SCHEMA}' AND table_name = 'ledger_entries'
                  AND privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
                  AND grantee <> current_user
            LOOP
                EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON "{SCHEMA}".ledger_entries
                    FROM %I', r.grantee);
            END LOOP;
        END $$;
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DROP FUNCTION "{SCHEMA}".claw_back, "{SCHEMA}".settle_hold, "{SCHEMA}".place_hold,
            "{SCHEMA}".post_entry;
        DROP TABLE "{SCHEMA}".stripe_events, "{SCHEMA}".subscriptions,
            "{SCHEMA}".checkout_sessions, "{SCHEMA}".holds, "{SCHEMA}".ledger_entries,
            "{SCHEMA}".accounts;
        DROP FUNCTION "{SCHEMA}".ledger_append_only();
        """
    )
