"""Each service's role sees only its own schema; RLS shows a user only their own rows."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import RunningStack


@pytest.mark.parametrize(
    ("role_of", "other_table"),
    [
        ("prompts", "billing.usage_records"),
        ("billing", "prompts.enhancements"),
        ("training", "billing.outbox"),
        ("generation", "prompts.outbox"),
    ],
)
def test_a_service_role_cannot_read_another_services_schema(
    stack: RunningStack, role_of: str, other_table: str
) -> None:
    with (
        psycopg.connect(stack.service_url(role_of)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(f"SELECT 1 FROM {other_table} LIMIT 1")


def test_a_service_role_cannot_create_objects_anywhere(stack: RunningStack) -> None:
    with (
        psycopg.connect(stack.service_url("prompts")) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("CREATE TABLE prompts.sneaky (id int)")


def test_service_roles_are_not_owners_superusers_or_bypassrls(stack: RunningStack) -> None:
    for service in ("training", "generation", "billing", "prompts"):
        role = stack.cfg.roles(service).app
        assert stack.admin_sql(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
            "WHERE rolname = %s",
            role,
        ) == [(False, False, False, False)]
        assert stack.admin_sql(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tableowner = %s",
            service,
            role,
        ) == [(0,)]


def test_rls_hides_enhancements_without_user_context_and_shows_only_own_rows(
    stack: RunningStack,
) -> None:
    for user, prompt in (("rls-a", "a lighthouse"), ("rls-b", "a mountain")):
        httpx.post(
            f"{stack.url}/v1/prompts/enhance", headers=stack.auth(user), json={"prompt": prompt}
        ).raise_for_status()
    with psycopg.connect(stack.service_url("prompts")) as conn:
        assert conn.execute("SELECT count(*) FROM prompts.enhancements").fetchone() == (0,)
        with conn.transaction():
            conn.execute("SELECT set_config('app.user_id', 'user_rls-a', true)")
            rows = conn.execute(
                "SELECT DISTINCT user_id, prompt FROM prompts.enhancements"
            ).fetchall()
        assert rows == [("user_rls-a", "a lighthouse")]


def test_rls_rejects_writing_a_row_for_another_user(stack: RunningStack) -> None:
    with (
        psycopg.connect(stack.service_url("billing")) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        conn.transaction(),
    ):
        conn.execute("SELECT set_config('app.user_id', 'user_x', true)")
        conn.execute(
            "INSERT INTO billing.usage_records (id, user_id, source_event_id, kind, quantity,"
            " occurred_at) VALUES (gen_random_uuid(), 'user_y', gen_random_uuid(),"
            " 'prompt_enhancement', 1, now())"
        )


def test_a_service_refuses_to_start_as_a_role_that_could_bypass_rls(
    stack: RunningStack, tmp_path: Path
) -> None:
    argv, env = stack.processes.specs["billing"]
    # The schema owner: FORCE makes RLS apply to it, but owning the tables lets it turn RLS off.
    owner = stack.cfg.database_url(stack.cfg.roles("billing").migrator)
    done = subprocess.run(
        argv,
        env=env | {"BILLING_DATABASE_URL": owner, "BILLING_GRPC_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "row-level security could be bypassed" in done.stderr
    assert "owns RLS table billing.usage_records" in done.stderr
