"""End-to-end idempotency (ADR 0009).

- ``idempotency_claim`` gets ``p_take_over``: for a route whose owning service deduplicates
  on the key itself, a request finding its key still in progress (same fingerprint) takes the
  claim over at once instead of waiting for the lease: the service answers it the first
  result (or waits for the first transaction), so a key whose first attempt died never blocks
  the user for the lease.
- ``exports`` remembers the key an export was requested with, unique per user, so a retry
  gets that export (in the same transaction as the create).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "gateway"

# The claim of 0002, with {params} added to its signature and {lapsed} deciding when an
# in-progress attempt with the same fingerprint is taken over.
CLAIM = """
CREATE FUNCTION "{schema}".idempotency_claim(
    p_user text, p_key text, p_fingerprint bytea, p_attempt uuid,
    p_lease_s double precision, p_ttl_s double precision{params},
    OUT outcome text, OUT same_request boolean, OUT status integer, OUT headers jsonb,
    OUT body bytea)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    PERFORM set_config('app.user_id', p_user, true);
    LOOP
        INSERT INTO "{schema}".idempotency_keys AS k
            (user_id, key, fingerprint, state, attempt, locked_until, expires_at)
        VALUES (p_user, p_key, p_fingerprint, 'in_progress', p_attempt,
            now() + make_interval(secs => p_lease_s), now() + make_interval(secs => p_ttl_s))
        ON CONFLICT (user_id, key) DO UPDATE SET
            fingerprint = EXCLUDED.fingerprint, state = 'in_progress',
            attempt = EXCLUDED.attempt, locked_until = EXCLUDED.locked_until,
            status = NULL, headers = NULL, body = NULL, created_at = now(),
            expires_at = EXCLUDED.expires_at
        WHERE k.expires_at <= now()
            OR (k.state = 'in_progress' AND ({lapsed})
                AND k.fingerprint = EXCLUDED.fingerprint)
        RETURNING k.attempt INTO r;
        IF FOUND THEN
            outcome := 'claimed';
            same_request := true;
            RETURN;
        END IF;
        SELECT k.state, k.fingerprint = p_fingerprint AS same, k.status, k.headers, k.body
            INTO r FROM "{schema}".idempotency_keys k
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
"""
OLD_SIGNATURE = "text, text, bytea, uuid, double precision, double precision"


def upgrade() -> None:
    op.execute(f'DROP FUNCTION "{SCHEMA}".idempotency_claim({OLD_SIGNATURE})')
    op.execute(
        CLAIM.format(
            schema=SCHEMA,
            params=", p_take_over boolean DEFAULT false",
            lapsed="p_take_over OR k.locked_until <= now()",
        )
    )
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".exports
            ADD COLUMN idempotency_key text,
            ADD CONSTRAINT exports_idempotency_key UNIQUE (user_id, idempotency_key);
        """
    )


def downgrade() -> None:
    op.execute(f'ALTER TABLE "{SCHEMA}".exports DROP COLUMN idempotency_key')
    op.execute(f'DROP FUNCTION "{SCHEMA}".idempotency_claim({OLD_SIGNATURE}, boolean)')
    op.execute(CLAIM.format(schema=SCHEMA, params="", lapsed="k.locked_until <= now()"))
