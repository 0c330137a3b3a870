"""No credential is ever written to the database: after traffic that reaches every provider
(Stripe checkout, payment webhook and portal; a Replicate training and prediction with their
signed webhooks; Claude enhancing prompts), every row of every table of every schema, read as
a superuser, contains none of the stack's configured secrets."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import re
import uuid
from collections.abc import Iterator

import httpx

from tests.e2e.test_billing import buy_starter, wait_balance
from tests.e2e.training_helpers import api, replicate_get, trained_model
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for

STARTER_CREDITS = 200
# StackConfig fields (and S3Config's) that hold a credential: API keys and tokens, webhook
# signing secrets, the internal token secret, S3's secret key and SSE key.
SECRET_FIELD = re.compile(r"secret|token|api_key|sse_key")


def configured_secrets(stack: RunningStack) -> dict[str, str]:
    """Every credential the stack hands to a process, by where it comes from."""
    found: dict[str, str] = {}
    for holder, prefix in ((stack.cfg, "stack"), (stack.cfg.s3, "s3")):
        if holder is None:
            continue
        for f in dataclasses.fields(holder):
            value = getattr(holder, f.name)
            if SECRET_FIELD.search(f.name) and isinstance(value, str) and value:
                found[f"{prefix}.{f.name}"] = value
    # Replicate's webhook signing secret is not configured: the services ask the API for it.
    answer = replicate_get(stack, "/v1/webhooks/default/secret")
    assert answer.status_code == 200, answer.text
    found["replicate.webhook_secret"] = answer.json()["key"]
    return found


def needles(secret: str) -> list[str]:
    """How a secret would read in a row cast to text: as is, as bytea (hex), and for a
    Standard Webhooks ``whsec_`` secret, its HMAC key as bytea."""
    forms = [secret, secret.encode().hex()]
    if secret.startswith("whsec_"):
        with contextlib.suppress(ValueError):
            forms.append(base64.b64decode(secret.removeprefix("whsec_"), validate=True).hex())
    return forms


def every_row_as_text(stack: RunningStack) -> Iterator[tuple[str, str]]:
    """(schema.table, row) for every row of every table outside the system catalogues."""
    tables = stack.admin_sql(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' "
        "AND table_schema NOT IN ('pg_catalog', 'information_schema') "
        "AND table_schema NOT LIKE 'pg\\_%' ORDER BY 1, 2"
    )
    assert tables, "no tables found"
    for schema, table in tables:
        name = f'"{schema}"."{table}"'
        for (row,) in stack.admin_sql(f"SELECT t::text FROM {name} t"):
            yield f"{schema}.{table}", str(row)


def provider_traffic(stack: RunningStack, user: str) -> None:
    """Stripe, Replicate (training and prediction) and the LLM, each with its webhooks."""
    buy_starter(stack, user)
    wait_balance(stack, user, STARTER_CREDITS)
    with api(stack, user) as c:
        assert c.post("/v1/billing/portal").status_code == 201
        enhanced = c.post("/v1/prompts/enhance", json={"prompt": "me on a beach"})
        assert enhanced.status_code == 201, enhanced.text
    model = trained_model(stack, user)
    with api(stack, user) as c:
        created = c.post(
            "/v1/generations",
            json={"model_id": model["id"], "prompt": "me in the snow", "enhance": True},
        )
        assert created.status_code == 202, created.text
        gen_id = created.json()["id"]
        status = wait_for(
            f"generation {gen_id}",
            lambda: c.get(f"/v1/generations/{gen_id}").json()["status"],
            lambda status: status in ("succeeded", "failed", "canceled"),
            timeout_s=60,
        )
        assert status == "succeeded"


def test_no_configured_secret_is_stored_in_any_table(stack: RunningStack) -> None:
    secrets = configured_secrets(stack)
    assert {
        "stack.stripe_api_key",
        "stack.stripe_webhook_secret",
        "stack.replicate_api_token",
        "stack.anthropic_api_key",
        "s3.secret_key",
        "replicate.webhook_secret",
    } <= set(secrets)
    # A short value would match by accident and prove nothing.
    assert all(len(value) >= 8 for value in secrets.values()), secrets.keys()

    provider_traffic(stack, f"keeper{uuid.uuid4().hex[:8]}")

    leaks: set[tuple[str, str]] = set()
    rows = 0
    for table, row in every_row_as_text(stack):
        rows += 1
        for name, secret in secrets.items():
            if any(needle in row for needle in needles(secret)):
                leaks.add((table, name))
    assert rows > 0
    assert not leaks, f"secrets stored in the database (table, secret): {sorted(leaks)}"


def test_the_scan_reads_the_traffics_rows(stack: RunningStack) -> None:
    """The scan sees what the traffic wrote: a row holding a known value is found."""
    marker = f"marker-{uuid.uuid4().hex}"
    with httpx.Client(base_url=stack.url, headers=stack.auth("scanned"), timeout=60) as c:
        assert c.post("/v1/prompts/enhance", json={"prompt": marker}).status_code == 201
    assert any(marker in row for _, row in every_row_as_text(stack))
