"""A user's erasure: anonymised payment records kept for the law, erasure jobs, and the one
way a user's ledger entries can be deleted.

- ``retained_payments``: what was paid, when, how much, and Stripe's id of the payment, of an
  erased user, under a random ``account_ref`` instead of any identifier (no user id, customer
  id, email or name). Kept until ``retain_until``, then deleted by the service. Not
  user-owned, so no row-level security: nothing in it names a user.
- ``erasures``: one row per erasure round still waiting on Stripe (deleting the customer); a
  row-as-job (visiona.kit.jobs.RowJobs), user-owned. It goes in the transaction that answers
  the round, so nothing names the user afterwards.
- ``erase_ledger_entries(user)``: the ledger stays append-only for everyone (the app role has
  no DELETE on it and the trigger refuses it) except this function, which runs as the table
  owner (SECURITY DEFINER) and deletes only the entries of the user the calling transaction
  acts as (``app.user_id``; row-level security still applies).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from alembic import op

from visiona.kit.migrations import enable_user_rls

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "billing"

DDL = f"""
CREATE TABLE "{SCHEMA}".retained_payments (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Random, one per erased account and round: ties its records to each other, to no person.
    account_ref uuid NOT NULL,
    kind text NOT NULL CONSTRAINT retained_kind CHECK (
        kind IN ('pack_purchase', 'plan_invoice', 'refund')),
    -- The Checkout Session (pack), invoice (plan) or charge (refund) at Stripe.
    stripe_reference text NOT NULL,
    payment_intent text,
    -- Minor units of the currency; NULL where billing never learnt the amount.
    amount bigint,
    currency text,
    item_id text,
    credits bigint NOT NULL DEFAULT 0,
    occurred_at timestamptz NOT NULL,
    retained_at timestamptz NOT NULL DEFAULT now(),
    retain_until timestamptz NOT NULL
);
CREATE INDEX retained_payments_due ON "{SCHEMA}".retained_payments (retain_until);

CREATE TABLE "{SCHEMA}".erasures (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    deletion_id uuid NOT NULL,
    round integer NOT NULL,
    stripe_customer_id text,
    -- What the round removed before the Stripe step.
    removed bigint NOT NULL DEFAULT 0,
    work text,
    work_after timestamptz NOT NULL DEFAULT now(),
    work_attempts integer NOT NULL DEFAULT 0,
    lease_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT erasures_round UNIQUE (user_id, deletion_id, round)
);
CREATE INDEX erasures_due ON "{SCHEMA}".erasures (work_after) WHERE work IS NOT NULL;

CREATE OR REPLACE FUNCTION "{SCHEMA}".ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The one exception: erase_ledger_entries (the table owner) deleting its user's entries.
    IF TG_OP = 'DELETE' THEN
        IF current_setting('billing.erasing_user', true) = OLD.user_id
           AND (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID)
               = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'ledger entries are append-only' USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE FUNCTION "{SCHEMA}".erase_ledger_entries(p_user text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = "{SCHEMA}", pg_temp AS $$
DECLARE
    v_count bigint;
BEGIN
    IF coalesce(p_user, '') = '' OR p_user IS DISTINCT FROM current_setting('app.user_id', true)
    THEN
        RAISE EXCEPTION 'a ledger is erased only by a transaction acting as its user'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('billing.erasing_user', p_user, true);
    DELETE FROM ledger_entries WHERE user_id = p_user;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    PERFORM set_config('billing.erasing_user', '', true);
    RETURN v_count;
END $$;
REVOKE ALL ON FUNCTION "{SCHEMA}".erase_ledger_entries(text) FROM PUBLIC;
"""


def upgrade() -> None:
    op.execute(DDL)
    # The worker finds due rounds of every user as the system principal, then acts as the user.
    enable_user_rls(SCHEMA, "erasures", system_read=True)


def downgrade() -> None:
    op.execute(
        f"""
        DROP FUNCTION "{SCHEMA}".erase_ledger_entries(text);
        CREATE OR REPLACE FUNCTION "{SCHEMA}".ledger_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'ledger entries are append-only'
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        DROP TABLE "{SCHEMA}".erasures, "{SCHEMA}".retained_payments;
        """
    )
