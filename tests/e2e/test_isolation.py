"""Each service's role sees only its own schema; RLS shows a user only their own rows."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support.stack import RunningStack
from visiona.kit.provision import SERVICES


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


# Tables with no user_id column, and why none is needed.
NOT_USER_OWNED = {
    "outbox": "events in flight; each event carries its user in the payload, read by the relay",
    "inbox": "ids of consumed events",
    "alembic_version": "the schema's migration revision",
    "replicate_webhooks": "provider delivery ids and statuses",
    "style_packs": "the curated catalogue, the same for everyone",
    "style_templates": "the curated catalogue, the same for everyone",
    "stripe_events": "Stripe's events by id; applied to users by billing's consumer",
    "retained_payments": (
        "an erased user's payments kept for the accounting records the law requires, under a "
        "random reference: no user id, customer id, email or name"
    ),
    "clerk_webhooks": "Svix delivery ids and event types, nothing of the user",
    "deletion_receipts": "proof of an erasure, keyed by a keyed hash, not by the user id",
    "rate_buckets": "rate-limit buckets keyed by keyed hashes of user ids and client addresses",
    "erasure_answers": "answers given to erasure rounds (deletion id, round, count); names no user",
}


def test_every_user_owned_table_has_forced_row_level_security(stack: RunningStack) -> None:
    tables = stack.admin_sql(
        "SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity, "
        "EXISTS (SELECT 1 FROM information_schema.columns col WHERE col.table_schema = "
        "n.nspname AND col.table_name = c.relname AND col.column_name = 'user_id'), "
        "EXISTS (SELECT 1 FROM pg_policies p WHERE p.schemaname = n.nspname AND "
        "p.tablename = c.relname AND p.qual LIKE '%%app.user_id%%') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) ORDER BY 1, 2",
        list(SERVICES),
    )
    assert len(tables) > 10
    unprotected = [
        f"{schema}.{table}"
        for schema, table, rls, forced, has_user, policy in tables
        if has_user and not (rls and forced and policy)
    ]
    assert unprotected == []
    unexplained = [
        f"{schema}.{table}"
        for schema, table, _, _, has_user, _ in tables
        if not has_user and table not in NOT_USER_OWNED
    ]
    assert unexplained == [], "a table without user_id: is it user-owned?"


# A body the route accepts, so that only ownership can refuse the call.
_BODIES = {
    ("PATCH", "model_id"): {"name": "mine now"},
    ("PATCH", "image_id"): {"favourite": True},
}


def test_every_route_with_a_resource_id_is_404_for_another_user(stack: RunningStack) -> None:
    from tests.e2e.test_billing import buy_starter, wait_balance
    from tests.e2e.test_generation import generate, wait_generation
    from tests.e2e.training_helpers import trained_model

    owner, intruder = "walker-owner", "walker-intruder"
    buy_starter(stack, owner)
    wait_balance(stack, owner, 200)
    model = trained_model(stack, owner)
    gen = wait_generation(stack, owner, generate(stack, owner, model_id=model["id"]).json()["id"])
    photos = httpx.get(f"{stack.url}/v1/photos", headers=stack.auth(owner)).json()["photos"]
    export = httpx.post(f"{stack.url}/v1/me/export", headers=stack.auth(owner))
    assert export.status_code == 202, export.text
    ids = {
        "export_id": export.json()["id"],
        "photo_id": photos[0]["id"],
        "model_id": model["id"],
        "generation_id": gen["id"],
        "image_id": gen["images"][0]["id"],
        # The operator console's routes name any user's jobs and account: to a user who is
        # no operator they are not found either (as routes, not only as resources).
        "kind": "generation",
        "job_id": gen["id"],
        "user_id": f"user_{owner}",
        "service": "gateway",
        "consumer": "gateway-audit",
        "event_id": str(uuid.uuid4()),
    }
    spec = httpx.get(f"{stack.url}/openapi.json", timeout=60).json()
    checked = []
    for path, operations in spec["paths"].items():
        if "{" not in path:
            continue
        for method in operations:
            params = [
                p["name"] for p in operations[method].get("parameters", []) if p["in"] == "path"
            ]
            assert all(p in ids for p in params), f"no resource of the owner for {path}"
            url = path
            for name in params:
                url = url.replace("{" + name + "}", ids[name])
            body = next(
                (_BODIES[(method.upper(), p)] for p in params if (method.upper(), p) in _BODIES),
                None,
            )
            response = httpx.request(
                method.upper(), f"{stack.url}{url}", headers=stack.auth(intruder), json=body
            )
            assert response.status_code == 404, (method, url, response.status_code, response.text)
            checked.append(f"{method.upper()} {path}")
    assert len(checked) >= 13 + 6, checked
    # The owner still has everything, unchanged.
    again = httpx.get(f"{stack.url}/v1/models/{model['id']}", headers=stack.auth(owner)).json()
    assert again["name"] == model["name"]
    image = httpx.get(f"{stack.url}/v1/images/{ids['image_id']}", headers=stack.auth(owner))
    assert image.status_code == 200 and image.json()["favourite"] is False


def test_every_admin_route_is_an_unknown_route_to_anyone_but_an_operator(
    stack: RunningStack,
) -> None:
    """Every operation under /v1/admin in the OpenAPI, with and without path parameters, to
    the signed out, to a token that does not verify, to a user, to a user with another role:
    the very answer of a route that does not exist, and nothing done."""
    spec = httpx.get(f"{stack.url}/openapi.json", timeout=60).json()
    unknown = httpx.get(f"{stack.url}/v1/no-such-route", headers=stack.auth("plain-user")).json()
    callers = {
        "signed out": {},
        "bad token": {"Authorization": "Bearer not-a-token"},
        "user": stack.auth("plain-user"),
        "other role": {"Authorization": f"Bearer {stack.token('plain-user', role='viewer')}"},
    }
    values = {
        "kind": "generation",
        "job_id": str(uuid.uuid4()),
        "user_id": "user_plain-user",
        "service": "gateway",
        "consumer": "gateway-audit",
        "event_id": str(uuid.uuid4()),
    }
    checked = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/admin/"):
            continue
        url = path
        for name, value in values.items():
            url = url.replace("{" + name + "}", value)
        assert "{" not in url, f"a path parameter of {path} this test does not know"
        for method in operations:
            for who, headers in callers.items():
                response = httpx.request(
                    method.upper(),
                    f"{stack.url}{url}",
                    headers=headers,
                    params={"kind": "generation", "older_than_s": 0},
                    json={"reason": "curious", "amount": 1000} if method == "post" else None,
                )
                assert response.status_code == 404, (who, method, path, response.text)
                body = response.json()
                body.pop("request_id", None)
                assert body == {k: v for k, v in unknown.items() if k != "request_id"}
            checked.append(f"{method.upper()} {path}")
    assert len(checked) >= 9, checked
    # Nothing was granted.
    granted = httpx.get(f"{stack.url}/v1/billing/balance", headers=stack.auth("plain-user"))
    assert granted.json()["balance"] == 0
