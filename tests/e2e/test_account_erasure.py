"""Account erasure and export, end to end through the gateway: DELETE /v1/me leaves nothing of
the user in any schema, bucket, provider or log line, and nothing of anyone else is touched;
it completes even when any one service is killed in the middle; an export holds exactly the
user's data."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

import httpx
import pytest

from tests.e2e.saga_helpers import wait_export
from tests.e2e.test_billing import buy_starter, wait_balance
from tests.e2e.test_clerk_webhooks import clerk, create_clerk_user, wait_me
from tests.e2e.test_generation import generate, wait_generation
from tests.e2e.training_helpers import replicate_get, storage, trained_model
from tests.support.rows import rows_naming as schema_rows_naming
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for

SERVICES = ("gateway", "training", "generation", "billing", "prompts")


def sub(user: str) -> str:
    """The user id a dev token for ``user`` carries (Clerk ids already have the prefix)."""
    return user if user.startswith("user_") else f"user_{user}"


def customer_of(stack: RunningStack, user: str) -> str:
    rows = stack.admin_sql(
        "SELECT stripe_customer_id FROM billing.accounts WHERE user_id = %s", sub(user)
    )
    assert rows and rows[0][0], rows
    return str(rows[0][0])


def populate(stack: RunningStack, user: str) -> dict[str, Any]:
    """Data of ``user`` in every service: credits and a Stripe customer (billing), photos and a
    trained model (training, Replicate), a generation with images (generation), an enhanced
    prompt (prompts)."""
    buy_starter(stack, user)
    wait_balance(stack, user, 200)
    model = trained_model(stack, user)
    gen = wait_generation(
        stack, user, generate(stack, user, model_id=model["id"], num_outputs=2).json()["id"]
    )
    assert gen["status"] == "succeeded", gen
    enhanced = httpx.post(
        f"{stack.url}/v1/prompts/enhance",
        json={"prompt": "me hiking in the alps"},
        headers=stack.auth(user),
        timeout=60,
    )
    assert enhanced.status_code == 201, enhanced.text
    images = httpx.get(f"{stack.url}/v1/images", headers=stack.auth(user)).json()["images"]
    photos = httpx.get(f"{stack.url}/v1/photos", headers=stack.auth(user)).json()["photos"]
    return {
        "model": model,
        "generation": gen,
        "images": [i["id"] for i in images],
        "photos": [p["id"] for p in photos],
        "customer": customer_of(stack, user),
    }


def request_deletion(stack: RunningStack, user: str) -> dict[str, Any]:
    response = httpx.delete(f"{stack.url}/v1/me", headers=stack.auth(user))
    assert response.status_code == 202, response.text
    assert response.headers["location"] == "/v1/me/deletion"
    return dict(response.json())


def wait_erased(stack: RunningStack, user: str, timeout_s: float = 120) -> dict[str, Any]:
    return wait_for(
        "the erasure to complete",
        lambda: httpx.get(f"{stack.url}/v1/me/deletion", headers=stack.auth(user)),
        lambda r: r.status_code == 200 and r.json()["status"] == "completed",
        timeout_s,
    ).json()


def rows_naming(stack: RunningStack, needles: list[str]) -> list[str]:
    """Every table, in every service schema, with rows whose text mentions one of ``needles``."""
    return [
        f"{schema}.{table}: {count}"
        for schema in SERVICES
        for table, count in schema_rows_naming(stack.admin_sql, schema, *needles).items()
    ]


def keys_naming(stack: RunningStack, needles: list[str]) -> list[str]:
    s3 = storage(stack)
    keys = [str(o.object_name) for o in s3.client.list_objects(s3.bucket, recursive=True)]
    return [k for k in keys if any(n in k for n in needles)]


def service_logs_naming(stack: RunningStack, needle: str) -> list[str]:
    return [name for name in SERVICES if needle in stack.processes.log(name)]


def needles_of(user: str, data: dict[str, Any], email: str | None = None) -> list[str]:
    return [
        user,
        data["model"]["id"],
        data["generation"]["id"],
        data["customer"],
        *data["images"],
        *data["photos"],
        *([email] if email else []),
    ]


def test_erasure_leaves_nothing_of_the_user_and_touches_nobody_else(stack: RunningStack) -> None:
    email = f"erase-{uuid.uuid4().hex[:6]}@example.com"
    user = create_clerk_user(stack, email)  # a real Clerk user: its sign-in must go too
    wait_me(stack, user, {"email": email})
    bystander = f"erasure-bystander-{uuid.uuid4().hex[:6]}"
    mine = populate(stack, user)
    theirs = populate(stack, bystander)
    their_balance = httpx.get(
        f"{stack.url}/v1/billing/balance", headers=stack.auth(bystander)
    ).json()
    assert rows_naming(stack, [user]) and keys_naming(stack, [mine["model"]["id"]])
    # Object keys name an opaque owner key: a bucket listing names no user.
    assert keys_naming(stack, [user, sub(bystander)]) == []

    started = request_deletion(stack, user)
    assert started["status"] == "scheduled"
    trail = httpx.get(f"{stack.url}/v1/me/audit", headers=stack.auth(user)).json()["entries"]
    assert "account.erasure_requested" in {e["action"] for e in trail}
    again = request_deletion(stack, user)  # idempotent: the same erasure
    assert again["id"] == started["id"]
    # While it runs, the user can follow it but not create anything new.
    blocked = httpx.post(
        f"{stack.url}/v1/prompts/enhance",
        json={"prompt": "one more"},
        headers=stack.auth(user),
    )
    assert blocked.status_code == 409 and blocked.json()["code"] == "account_erasing"

    done = wait_erased(stack, user)
    assert done["id"] == started["id"] and done["completed_at"]
    assert set(done["services"].values()) == {"done"} and done["removed"] > 0

    needles = needles_of(user, mine, email)
    assert rows_naming(stack, needles) == []
    assert keys_naming(stack, needles) == []
    # No log line of any service names the user, their email, customer, model (also as its
    # provider-side name), generation, images or photos.
    model_hex = uuid.UUID(mine["model"]["id"]).hex
    for needle in [*needles, model_hex]:
        assert service_logs_naming(stack, needle) == [], needle
    # Provider-side: the Replicate model, the Stripe customer, the Clerk user.
    destination = mine["model"]["version"].split(":")[0]
    assert replicate_get(stack, f"/v1/models/{destination}").status_code == 404
    customer = httpx.get(
        f"{stack.cfg.stripe_url}/v1/customers/{mine['customer']}",
        headers={"Authorization": f"Bearer {stack.cfg.stripe_api_key}"},
    ).json()
    assert customer.get("deleted") is True
    assert clerk(stack, "GET", f"/users/{user}").status_code == 404
    # Accounting records the law requires stay, with nothing that identifies the user.
    assert stack.admin_sql("SELECT count(*) FROM billing.retained_payments")[0][0] >= 1

    # Everyone else is as they were.
    assert rows_naming(stack, [bystander]) != []
    assert keys_naming(stack, [theirs["model"]["id"]]) != []
    with httpx.Client(base_url=stack.url, headers=stack.auth(bystander)) as c:
        assert c.get(f"/v1/models/{theirs['model']['id']}").json()["status"] == "succeeded"
        assert len(c.get("/v1/images").json()["images"]) == len(theirs["images"])
        assert c.get("/v1/billing/balance").json() == their_balance
    assert (
        replicate_get(stack, f"/v1/models/{theirs['model']['version'].split(':')[0]}").status_code
        == 200
    )


@pytest.mark.parametrize("victim", SERVICES)
@pytest.mark.disruptive
def test_erasure_completes_when_a_service_is_killed_in_the_middle(
    stack: RunningStack, victim: str
) -> None:
    user = f"erase-kill-{victim}-{uuid.uuid4().hex[:6]}"
    mine = populate(stack, user)
    request_deletion(stack, user)
    # Killed before the first round goes out (a one-second grace in the tests): the round's
    # request waits in its queue, or, for the gateway, the saga waits in its table.
    stack.processes.kill(victim)
    # While it is down the grace ends: the first round goes out to the others (a killed
    # gateway sends nothing, and its saga is due when it comes back).
    wait_for(
        "the first round to be due",
        lambda: stack.admin_sql(
            "SELECT round, work_after <= now() FROM gateway.deletions WHERE user_id = %s",
            f"user_{user}",
        ),
        lambda rows: bool(rows) and (rows[0][0] >= 1 or (victim == "gateway" and rows[0][1])),
    )
    stack.processes.start(victim)
    stack.processes.wait_ready()
    wait_erased(stack, user, timeout_s=180)
    assert rows_naming(stack, needles_of(user, mine)) == []
    assert keys_naming(stack, needles_of(user, mine)) == []


def test_an_export_holds_exactly_the_users_data(stack: RunningStack) -> None:
    user = f"export-{uuid.uuid4().hex[:6]}"
    other = f"export-other-{uuid.uuid4().hex[:6]}"
    mine = populate(stack, user)
    theirs = populate(stack, other)

    created = httpx.post(f"{stack.url}/v1/me/export", headers=stack.auth(user))
    assert created.status_code == 202, created.text
    export_id = created.json()["id"]
    assert created.headers["location"] == f"/v1/me/exports/{export_id}"
    # Asking again while it is prepared returns the same export.
    assert httpx.post(f"{stack.url}/v1/me/export", headers=stack.auth(user)).json()["id"] == (
        export_id
    )
    # Another user cannot see it.
    assert (
        httpx.get(f"{stack.url}/v1/me/exports/{export_id}", headers=stack.auth(other)).status_code
        == 404
    )
    ready = wait_export(stack, user, export_id)
    assert ready["status"] == "ready", ready
    assert sorted(ready["parts"]) == ["billing", "generation", "prompts", "training"]
    assert ready["download_url"] and ready["download_expires_at"]

    archive = httpx.get(ready["download_url"], timeout=60)
    assert archive.status_code == 200
    assert archive.headers["content-type"] == "application/zip"
    assert len(archive.content) == ready["bytes"]
    zf = zipfile.ZipFile(io.BytesIO(archive.content))
    names = zf.namelist()
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["user_id"] == sub(user) and manifest["export_id"] == export_id
    assert set(manifest["files"]) == set(names) - {"manifest.json"}
    for service in ("training", "generation", "billing", "prompts", "account"):
        assert any(n.startswith(f"{service}/records/") for n in names), (service, names)
    everything = b"".join(zf.read(n) for n in names if n.endswith(".json")).decode()
    for needle in (mine["model"]["id"], mine["generation"]["id"], *mine["images"]):
        assert needle in everything, needle
    for needle in needles_of(other, theirs):
        assert needle not in everything, needle
    # Files: the user's photos, weights and images, and nothing else.
    files = [n for n in names if "/files/" in n]
    assert any(n.startswith("generation/files/") for n in files)
    assert any(n.startswith("training/files/") for n in files)
    assert all(zf.getinfo(n).file_size > 0 for n in files)
    # The parts are removed once zipped (right after the archive is ready); only the archive
    # stays (until it expires).
    wait_for(
        "the export's parts to be removed",
        lambda: keys_naming(stack, [f"exports/{export_id}/"]),
        lambda keys: keys == [],
    )
    assert keys_naming(stack, [f"exports/{export_id}.zip"]) == [f"exports/{export_id}.zip"]
    listed = httpx.get(f"{stack.url}/v1/me/exports", headers=stack.auth(user)).json()
    assert [e["id"] for e in listed["exports"]] == [export_id]
    # Both the request and the link are in the user's audit trail.
    trail = httpx.get(f"{stack.url}/v1/me/audit", headers=stack.auth(user)).json()["entries"]
    actions = {e["action"] for e in trail}
    assert {"account.export_requested", "account.export_link_issued"} <= actions, actions
