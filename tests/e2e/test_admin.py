"""The operator console on the running stack: a stuck generation found across users, put back
to work, then failed with its credits back exactly once; credits granted and clawed back by
hand (never below zero); every action in the audit log with the operator and the reason; the
`visiona admin` CLI. That no one else reaches these routes: tests/e2e/test_isolation.py."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_billing import balance, ledger
from tests.e2e.test_cli import cli
from tests.e2e.test_generation import AFTER_TRAINING, IMAGE, generate, prediction_started
from tests.e2e.training_helpers import emulator
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for
from visiona.kit.bus import EventBus

OPERATOR = "opsjo"


def as_operator(stack: RunningStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token(OPERATOR, role='operator')}"}


def admin(
    stack: RunningStack,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    return httpx.request(
        method,
        f"{stack.url}/v1/admin{path}",
        headers=as_operator(stack) | (headers or {}),
        timeout=30,
        **kwargs,
    )


def audit_entries(stack: RunningStack, user_id: str | None) -> list[tuple[Any, ...]]:
    where = "user_id IS NULL" if user_id is None else "user_id = %s"
    params = () if user_id is None else (user_id,)
    return stack.admin_sql(
        f"SELECT actor, action, details FROM gateway.audit_log WHERE {where} "
        "AND action LIKE 'admin.%%' ORDER BY at, id",
        *params,
    )


def operator_named(details: dict[str, Any]) -> str:
    """The audit log's name for the operator: a keyed hash, never the Clerk id."""
    name = str(details["operator"])
    assert len(name) == 64 and OPERATOR not in name
    return name


def stuck(stack: RunningStack, kind: str, older_than_s: int) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"kind": kind, "older_than_s": older_than_s, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = admin(stack, "GET", "/jobs", params=params | {"reason": "stuck-job sweep"})
        assert page.status_code == 200, page.text
        jobs += page.json()["jobs"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return jobs


def stuck_generation(stack: RunningStack, user: str, model: dict[str, Any]) -> dict[str, Any]:
    """A generation of two images the provider never finishes: it runs on, holding its
    credits."""
    emulator(stack, "config", {"prediction_duration_s": 3600})
    gen: dict[str, Any] = generate(stack, user, model_id=model["id"], num_outputs=2).json()
    prediction_started(stack, gen["id"])
    return gen


def test_an_operator_fails_a_stuck_generation_and_its_credits_come_back_once(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    user, model = owner
    user_id = f"user_{user}"
    gen = stuck_generation(stack, user, model)
    assert balance(stack, user) == {
        "balance": AFTER_TRAINING,
        "held": 2 * IMAGE,
        "available": AFTER_TRAINING - 2 * IMAGE,
    }

    listed = {j["id"]: j for j in stuck(stack, "generation", 0)}
    assert listed[gen["id"]]["user_id"] == user_id
    assert listed[gen["id"]]["status"] in ("queued", "running")
    assert gen["id"] not in {j["id"] for j in stuck(stack, "generation", 3600)}
    assert gen["id"] not in {j["id"] for j in stuck(stack, "training", 0)}

    # Put back to work: its next step (asking the provider) is due now, attempts afresh.
    refused = admin(stack, "POST", f"/jobs/generation/{gen['id']}/retry", json={})
    assert refused.status_code == 422 and refused.json()["code"] == "reason_required"
    retried = admin(
        stack, "POST", f"/jobs/generation/{gen['id']}/retry", json={"reason": "ticket 41"}
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["work"] == "poll" and retried.json()["work_attempts"] == 0

    blank = admin(stack, "POST", f"/jobs/generation/{gen['id']}/fail", json={"reason": "  "})
    assert blank.status_code == 422 and blank.json()["code"] == "reason_required"
    failed = admin(
        stack, "POST", f"/jobs/generation/{gen['id']}/fail", json={"reason": "ticket 42: stuck"}
    )
    assert failed.status_code == 200, failed.text
    assert failed.json()["failed"] is True and failed.json()["job"]["status"] == "failed"
    wait_for(
        "the hold released",
        lambda: balance(stack, user),
        lambda b: b == {"balance": AFTER_TRAINING, "held": 0, "available": AFTER_TRAINING},
    )
    # Failing it again changes nothing and releases nothing again; it cannot be retried.
    again = admin(stack, "POST", f"/jobs/generation/{gen['id']}/fail", json={"reason": "twice"})
    assert again.status_code == 200 and again.json()["failed"] is False
    late = admin(stack, "POST", f"/jobs/generation/{gen['id']}/retry", json={"reason": "late"})
    assert late.status_code == 409 and late.json()["code"] == "job_finished"
    unknown = admin(stack, "POST", f"/jobs/generation/{uuid.uuid4()}/fail", json={"reason": "x"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "job_not_found"

    mine = httpx.get(f"{stack.url}/v1/generations/{gen['id']}", headers=stack.auth(user)).json()
    assert mine["status"] == "failed" and mine["failure"]["reason"] == "operator_failed"
    moves = [e for e in ledger(stack, user) if gen["id"] in (e["reference"] or "")]
    assert sorted(e["kind"] for e in moves) == ["hold", "release"], moves
    assert balance(stack, user)["balance"] == AFTER_TRAINING

    entries = audit_entries(stack, user_id)
    assert [(a, action, d["reason"]) for a, action, d in entries] == [
        ("operator", "admin.job.retried", "ticket 41"),
        ("operator", "admin.job.failed", "ticket 42: stuck"),
        ("operator", "admin.job.failed", "twice"),
    ]
    assert [d["failed"] for _, action, d in entries if action == "admin.job.failed"] == [
        True,
        False,
    ]
    assert len({operator_named(d) for _, _, d in entries}) == 1
    # The user reads in their own audit log that support acted, and why.
    theirs = httpx.get(f"{stack.url}/v1/me/audit", headers=stack.auth(user)).json()
    assert "admin.job.failed" in [e["action"] for e in theirs["entries"]]
    # The look across users is audited too, about no user.
    sweeps = [d for _, action, d in audit_entries(stack, None) if action == "admin.jobs.listed"]
    assert any(d["reason"] == "stuck-job sweep" and d["kind"] == "generation" for d in sweeps)


def test_credits_granted_and_clawed_back_by_an_operator_never_below_zero(
    stack: RunningStack,
) -> None:
    user = f"comped{uuid.uuid4().hex[:8]}"
    user_id = f"user_{user}"
    key = {"Idempotency-Key": f"ticket-{uuid.uuid4().hex}"}
    path = f"/users/{user_id}/credits"

    missing = admin(stack, "POST", f"{path}/grant", json={"amount": 30})
    assert missing.status_code == 422 and missing.json()["code"] == "reason_required"
    granted = admin(
        stack, "POST", f"{path}/grant", json={"amount": 30, "reason": "outage"}, headers=key
    )
    assert granted.status_code == 200, granted.text
    assert granted.json() == {"applied": True, "balance": 30, "available": 30}
    # The same key again is the same grant, replayed, not a second one.
    replayed = admin(
        stack, "POST", f"{path}/grant", json={"amount": 30, "reason": "outage"}, headers=key
    )
    assert replayed.status_code == 200 and replayed.headers["idempotent-replayed"] == "true"
    taken = admin(stack, "POST", f"{path}/clawback", json={"amount": 10, "reason": "fraud"})
    assert taken.status_code == 200 and taken.json()["balance"] == 20
    too_much = admin(stack, "POST", f"{path}/clawback", json={"amount": 21, "reason": "all"})
    assert too_much.status_code == 409 and too_much.json()["code"] == "insufficient_credits"
    zero = admin(stack, "POST", f"{path}/grant", json={"amount": 0, "reason": "none"})
    assert zero.status_code == 422

    assert balance(stack, user) == {"balance": 20, "held": 0, "available": 20}
    entries = ledger(stack, user)
    assert [(e["kind"], e["delta_balance"], e["reason"]) for e in entries] == [
        ("adjustment", -10, "fraud"),
        ("adjustment", 30, "outage"),
    ]
    assert sum(e["delta_balance"] for e in entries) == 20 == entries[0]["balance_after"]

    audited = audit_entries(stack, user_id)
    assert [(action, d["reason"], d["amount"]) for _, action, d in audited] == [
        ("admin.credits.granted", "outage", 30),
        ("admin.credits.clawed_back", "fraud", 10),
    ]
    assert {a for a, _, _ in audited} == {"operator"}
    operator_named(audited[0][2])


def test_the_admin_cli_against_the_stack(stack: RunningStack, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    user_id = f"user_clicomp{uuid.uuid4().hex[:6]}"
    issuer = stack.cfg.clerk_issuer
    signed = cli(stack, config, "login", "--dev", "clinobody", "--issuer", issuer)
    assert signed.returncode == 0, signed.stderr
    nobody = cli(stack, config, "admin", "credits", "grant", user_id, "5", "--reason", "x")
    assert nobody.returncode == 1 and "route_not_found" in nobody.stdout
    assert "operator" in nobody.stdout

    login = cli(stack, config, "login", "--dev", "cliops", "--role", "operator", "--issuer", issuer)
    assert login.returncode == 0, login.stderr
    no_reason = cli(stack, config, "admin", "credits", "grant", user_id, "5")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    granted = cli(stack, config, "admin", "credits", "grant", user_id, "5", "--reason", "cli comp")
    assert granted.returncode == 0, granted.stdout + granted.stderr
    assert f"{user_id}: 5 credits, 5 available" in granted.stdout
    refused = cli(
        stack, config, "admin", "credits", "clawback", user_id, "6", "--reason", "too much"
    )
    assert refused.returncode == 1 and "insufficient_credits" in refused.stdout
    back = cli(stack, config, "admin", "credits", "clawback", user_id, "2", "--reason", "half")
    assert back.returncode == 0 and f"{user_id}: 3 credits" in back.stdout
    listed = cli(
        stack, config, "admin", "jobs", "list", "--kind", "training", "--older-than", "0", "--json"
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
    shown = cli(stack, config, "admin", "user", "show", user_id, "--reason", "cli", "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert json.loads(shown.stdout)["credits"]["balance"] == 3
    missing = cli(
        stack, config, "admin", "jobs", "fail", "training", str(uuid.uuid4()), "--reason", "x"
    )
    assert missing.returncode == 1 and "job_not_found" in missing.stdout
    outboxes = cli(stack, config, "admin", "outbox", "--json")
    assert outboxes.returncode == 0, outboxes.stdout + outboxes.stderr
    assert len(json.loads(outboxes.stdout)) == 5
    dead = cli(stack, config, "admin", "dead-letters", "list", "--service", "billing", "--json")
    assert dead.returncode == 0 and json.loads(dead.stdout)[0]["service"] == "billing"
    nothing = cli(
        stack,
        config,
        "admin",
        "dead-letters",
        "discard",
        "billing",
        "billing.credits",
        str(uuid.uuid4()),
        "--reason",
        "x",
    )
    assert nothing.returncode == 1
    assert "dead_letter_not_found" in nothing.stdout or "consumer_not_found" in nothing.stdout
    assert [action for _, action, _ in audit_entries(stack, user_id)] == [
        "admin.credits.granted",
        "admin.credits.clawed_back",
        "admin.user.viewed",
    ]


async def publish_poison(stack: RunningStack, routing_key: str) -> str:
    """A message no consumer can decode, on the stack's exchange; its event id."""
    event_id = str(uuid.uuid4())
    bus = EventBus(stack.cfg.amqp_url, stack.cfg.exchange, queue_prefix=stack.cfg.queue_prefix)
    await bus.connect()
    try:
        await bus.publish(routing_key, b"{not json", message_id=event_id)
    finally:
        await bus.close()
    return event_id


def dead_letters_of(stack: RunningStack, service: str) -> dict[str, dict[str, Any]]:
    found = admin(stack, "GET", "/dead-letters", params={"service": service, "limit": 100})
    assert found.status_code == 200, found.text
    (only,) = found.json()["services"]
    assert only["service"] == service
    return {g["consumer"]: g for g in only["consumers"]}


def letter(groups: dict[str, dict[str, Any]], consumer: str, event_id: str) -> dict[str, Any]:
    return next((x for x in groups[consumer]["letters"] if x["event_id"] == event_id), {})


def test_a_poison_message_is_listed_replayed_and_discarded_by_an_operator(
    stack: RunningStack,
) -> None:
    # The gateway's audit group reads billing's credit changes: a body it cannot decode is
    # dead-lettered at once. So is it in every other group bound to that key.
    event_id = asyncio.run(publish_poison(stack, "billing.credits.changed.v1"))
    consumer = "gateway-audit"
    first = wait_for(
        "the poison message dead-lettered",
        lambda: letter(dead_letters_of(stack, "gateway"), consumer, event_id),
        lambda x: bool(x),
    )
    assert first["routing_key"] == "billing.credits.changed.v1"
    assert first["reason"] == "rejected" and first["deaths"] == 1
    everywhere = admin(stack, "GET", "/dead-letters", params={"limit": 1})
    assert {s["service"] for s in everywhere.json()["services"]} == {
        "gateway",
        "training",
        "generation",
        "billing",
        "prompts",
    }

    path = f"/dead-letters/gateway/{consumer}/{event_id}"
    no_reason = admin(stack, "POST", f"{path}/replay", json={})
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "reason_required"
    replayed = admin(stack, "POST", f"{path}/replay", json={"reason": "decoder fixed?"})
    assert replayed.status_code == 204, replayed.text
    # Sent back to the group, which still cannot decode it: it dies a second time.
    wait_for(
        "the replayed message back among the dead",
        lambda: letter(dead_letters_of(stack, "gateway"), consumer, event_id),
        lambda x: x.get("deaths") == 2,
    )
    discarded = admin(stack, "POST", f"{path}/discard", json={"reason": "garbage, not ours"})
    assert discarded.status_code == 204, discarded.text
    assert letter(dead_letters_of(stack, "gateway"), consumer, event_id) == {}
    gone = admin(stack, "POST", f"{path}/discard", json={"reason": "again"})
    assert gone.status_code == 404 and gone.json()["code"] == "dead_letter_not_found"
    stranger = admin(
        stack, "POST", f"/dead-letters/billing/{consumer}/{event_id}/replay", json={"reason": "x"}
    )
    assert stranger.status_code == 404 and stranger.json()["code"] == "consumer_not_found"

    actions = [
        (action, d["reason"], d["event_id"])
        for _, action, d in audit_entries(stack, None)
        if d.get("event_id") == event_id
    ]
    assert actions == [
        ("admin.dead_letter.replayed", "decoder fixed?", event_id),
        ("admin.dead_letter.discarded", "garbage, not ours", event_id),
    ]


def test_every_outbox_backlog_is_readable(stack: RunningStack) -> None:
    found = admin(stack, "GET", "/outbox", params={"reason": "latency alert"})
    assert found.status_code == 200, found.text
    services = {s["service"]: s for s in found.json()["services"]}
    assert set(services) == {"gateway", "training", "generation", "billing", "prompts"}
    for s in services.values():
        assert s["unpublished"] >= 0 and s["oldest_age_s"] >= 0
        assert (s["unpublished"] == 0) == (s["oldest_age_s"] == 0)
    # What an unpublished row looks like to it: a row the relay has not reached yet is one
    # more, as old as it is (written straight into billing's outbox, due in an hour).
    stack.admin_sql(
        "INSERT INTO billing.outbox (event_id, routing_key, payload, headers, next_attempt_at, "
        "created_at) VALUES (gen_random_uuid(), 'billing.test.held_back.v1', '{}', '{}', "
        "now() + interval '1 hour', now() - interval '90 seconds')"
    )
    try:
        later = admin(stack, "GET", "/outbox").json()
        billing = next(s for s in later["services"] if s["service"] == "billing")
        assert billing["unpublished"] >= 1 and billing["oldest_age_s"] >= 90
    finally:
        stack.admin_sql(
            "DELETE FROM billing.outbox WHERE routing_key = 'billing.test.held_back.v1'"
        )
    reads = [d for _, action, d in audit_entries(stack, None) if action == "admin.outbox.read"]
    assert any(d["reason"] == "latency alert" for d in reads)


def test_an_operator_looks_up_a_user_without_seeing_their_photos_or_prompts(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    user, model = owner
    user_id = f"user_{user}"
    path = f"/users/{user_id}"
    refused = admin(stack, "GET", path)
    assert refused.status_code == 422 and refused.json()["code"] == "reason_required"
    before = len(audit_entries(stack, user_id))
    found = admin(stack, "GET", path, params={"reason": "ticket 7: refund?", "limit": 1})
    assert found.status_code == 200, found.text
    seen = found.json()
    assert seen["user_id"] == user_id
    assert seen["credits"] == {"balance": AFTER_TRAINING, "held": 0, "available": AFTER_TRAINING}
    assert len(seen["ledger"]) == 1 and seen["ledger_next_cursor"]
    assert [(m["id"], m["status"]) for m in seen["models"]] == [(model["id"], "succeeded")]
    assert seen["generations"] == [] and seen["generations_next_cursor"] is None
    # The next page of the ledger, by its own cursor.
    more = admin(
        stack,
        "GET",
        path,
        params={"reason": "ticket 7", "limit": 100, "ledger_cursor": seen["ledger_next_cursor"]},
    ).json()
    assert "purchase" in [e["kind"] for e in more["ledger"]]
    assert seen["ledger"][0]["id"] not in [e["id"] for e in more["ledger"]]
    text = found.text
    assert "http" not in text and model["trigger_word"] not in text and "photo" not in text
    assert [(a, d["reason"]) for a, _, d in audit_entries(stack, user_id)[before:]] == [
        ("operator", "ticket 7: refund?"),
        ("operator", "ticket 7"),
    ]
