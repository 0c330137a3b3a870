"""``visiona admin``: the operator console from a terminal.

Every command calls the gateway's ``/v1/admin`` routes with the signed-in session, which must
be an operator's (``GATEWAY_OPERATOR_USER_IDS`` or ``GATEWAY_OPERATOR_ROLE``; locally:
``visiona login --dev NAME --role operator``). To anyone else the routes do not exist (404).
Every change needs ``--reason``: it is kept, with who you are, in the audit log of the user
you acted on.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from visiona.cli.api import ApiError, Gateway
from visiona.cli.config import Session

admin_app = typer.Typer(
    no_args_is_help=True,
    help=(
        "The operator console: stuck jobs, credits by hand, dead letters, outboxes. Your session must be an "
        "operator's (locally: visiona login --dev NAME --role operator); to anyone else "
        "these commands answer 404. Every change needs --reason, kept with who you are in "
        "the audit log of the user you acted on."
    ),
)
jobs_app = typer.Typer(no_args_is_help=True, help="Paid jobs that have not ended, of every user.")
credits_app = typer.Typer(no_args_is_help=True, help="A user's credits, by hand.")
admin_app.add_typer(jobs_app, name="jobs")
admin_app.add_typer(credits_app, name="credits")
console = Console()

Reason = Annotated[
    str,
    typer.Option(
        "--reason",
        help="Why (required; kept in the audit log with who you are)",
        show_default=False,
    ),
]
Key = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="An Idempotency-Key (e.g. the support ticket): the same key is applied once. "
        "Default: a new one each time.",
    ),
]
Kind = Annotated[str, typer.Argument(help="training or generation")]


def call(method: str, path: str, **kwargs: Any) -> Any:
    """``method path`` with the saved session; an API error ends the command (exit 1) with
    its message and stable code, and a 404 says what it most likely means."""
    session = Session.load()
    if not session.token:
        console.print("[red]Not signed in.[/] Run [bold]visiona login[/] first.")
        raise typer.Exit(2)
    with Gateway(session.gateway, session.token) as gw:
        try:
            return gw.call(method, path, **kwargs)
        except ApiError as exc:
            console.print(f"[red]{exc.message}[/] [dim]({exc.code}, HTTP {exc.status})[/]")
            if exc.code == "route_not_found":
                console.print("Is the signed-in user an operator?")
            raise typer.Exit(1) from None


def change(path: str, body: dict[str, Any], key: str | None) -> Any:
    return call("POST", path, json=body, headers={"Idempotency-Key": key or str(uuid.uuid4())})


def _job_row(table: Table, job: dict[str, Any]) -> None:
    table.add_row(
        job["kind"],
        job["id"],
        job["user_id"],
        job["status"],
        (job["work"] or "-") + (" (running)" if job["leased"] else ""),
        str(job["work_attempts"]),
        job["created_at"][:19],
    )


def _jobs_table(jobs: list[dict[str, Any]]) -> None:
    table = Table("kind", "id", "user", "status", "next step", "attempts", "created")
    for job in jobs:
        _job_row(table, job)
    console.print(table)


@jobs_app.command("list")
def jobs_list(
    kind: Annotated[
        str, typer.Option(help="training, generation or generation_ingest")
    ] = "generation",
    older_than: Annotated[int, typer.Option(help="Created more than this many seconds ago")] = 600,
    reason: Annotated[str | None, typer.Option(help="Why you look (audited)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the jobs as JSON")] = False,
) -> None:
    """Jobs that have not ended and are older than --older-than, newest first."""
    params: dict[str, Any] = {"kind": kind, "older_than_s": older_than, "limit": limit}
    if reason:
        params["reason"] = reason
    page = call("GET", "/v1/admin/jobs", params=params)
    if as_json:
        print(json.dumps(page["jobs"], indent=2))
        return
    _jobs_table(page["jobs"])
    more = " (more: narrow with --older-than)" if page["next_cursor"] else ""
    console.print(f"{len(page['jobs'])} job(s){more}")


@jobs_app.command("retry")
def jobs_retry(kind: Kind, job_id: str, reason: Reason, key: Key = None) -> None:
    """Put a job back to work: its next step is due now, its attempts counted afresh."""
    job = change(f"/v1/admin/jobs/{kind}/{job_id}/retry", {"reason": reason}, key)
    console.print(f"Retrying {job['kind']} {job['id']}: next step {job['work']} now")


@jobs_app.command("fail")
def jobs_fail(kind: Kind, job_id: str, reason: Reason, key: Key = None) -> None:
    """End a job as failed; the credits it held go back to the user."""
    done = change(f"/v1/admin/jobs/{kind}/{job_id}/fail", {"reason": reason}, key)
    job = done["job"]
    if done["failed"]:
        console.print(f"Failed {job['kind']} {job['id']}; its held credits are released")
    else:
        console.print(f"{job['kind']} {job['id']} had already ended ({job['status']}): unchanged")


def _credits(user_id: str, action: str, amount: int, reason: str, key: str | None) -> None:
    r = change(
        f"/v1/admin/users/{user_id}/credits/{action}", {"amount": amount, "reason": reason}, key
    )
    said = "" if r["applied"] else " (this key was applied before: nothing changed)"
    console.print(f"{user_id}: {r['balance']} credits, {r['available']} available{said}")


@credits_app.command("grant")
def credits_grant(
    user_id: Annotated[str, typer.Argument(help="The user's Clerk id (user_...)")],
    amount: Annotated[int, typer.Argument(min=1, help="Credits to grant")],
    reason: Reason,
    key: Key = None,
) -> None:
    """Grant a user credits (a ledger entry of kind adjustment)."""
    _credits(user_id, "grant", amount, reason, key)


@credits_app.command("clawback")
def credits_clawback(
    user_id: Annotated[str, typer.Argument(help="The user's Clerk id (user_...)")],
    amount: Annotated[int, typer.Argument(min=1, help="Credits to take back")],
    reason: Reason,
    key: Key = None,
) -> None:
    """Take credits back from a user; never more than they have available (409)."""
    _credits(user_id, "clawback", amount, reason, key)


dead_app = typer.Typer(no_args_is_help=True, help="Events a consumer group kept failing on.")
admin_app.add_typer(dead_app, name="dead-letters")
Service = Annotated[str, typer.Argument(help="gateway, training, generation, billing or prompts")]
Consumer = Annotated[str, typer.Argument(help="The consumer group (see dead-letters list)")]
EventId = Annotated[str, typer.Argument(help="The event's id")]


@dead_app.command("list")
def dead_letters_list(
    service: Annotated[str | None, typer.Option(help="One service (default: all)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Letters shown per group")] = 20,
    reason: Annotated[str | None, typer.Option(help="Why you look (audited)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON")] = False,
) -> None:
    """Each consumer group's dead letters: how many, and the oldest few (never a payload)."""
    params: dict[str, Any] = {"limit": limit}
    if service:
        params["service"] = service
    if reason:
        params["reason"] = reason
    found = call("GET", "/v1/admin/dead-letters", params=params)
    if as_json:
        print(json.dumps(found["services"], indent=2))
        return
    table = Table("service", "group", "waiting", "event id", "routing key", "why", "died")
    for s in found["services"]:
        for group in s["consumers"]:
            if not group["count"]:
                continue
            for letter in group["letters"] or [{}]:
                table.add_row(
                    s["service"],
                    group["consumer"],
                    str(group["count"]),
                    letter.get("event_id", ""),
                    letter.get("routing_key", ""),
                    letter.get("reason") or "",
                    (letter.get("died_at") or "")[:19],
                )
    console.print(table)


@dead_app.command("replay")
def dead_letters_replay(
    service: Service, consumer: Consumer, event_id: EventId, reason: Reason, key: Key = None
) -> None:
    """Send one dead letter back to its group (after fixing why it failed)."""
    change(
        f"/v1/admin/dead-letters/{service}/{consumer}/{event_id}/replay", {"reason": reason}, key
    )
    console.print(f"Replayed {event_id} to {service} {consumer}")


@dead_app.command("discard")
def dead_letters_discard(
    service: Service, consumer: Consumer, event_id: EventId, reason: Reason, key: Key = None
) -> None:
    """Remove one dead letter for good: it will never be applied."""
    change(
        f"/v1/admin/dead-letters/{service}/{consumer}/{event_id}/discard", {"reason": reason}, key
    )
    console.print(f"Discarded {event_id} from {service} {consumer}")


@admin_app.command("outbox")
def outbox(
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON")] = False,
) -> None:
    """Each service's outbox: events not yet published, and how old the oldest is."""
    found = call("GET", "/v1/admin/outbox")
    if as_json:
        print(json.dumps(found["services"], indent=2))
        return
    table = Table("service", "unpublished", "oldest (s)")
    for s in found["services"]:
        table.add_row(s["service"], str(s["unpublished"]), f"{s['oldest_age_s']:.1f}")
    console.print(table)


user_app = typer.Typer(no_args_is_help=True, help="A user's account, as support may see it.")
admin_app.add_typer(user_app, name="user")


@user_app.command("show")
def user_show(
    user_id: Annotated[str, typer.Argument(help="The user's Clerk id (user_...)")],
    reason: Reason,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Items per list")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON")] = False,
) -> None:
    """A user's credits and ledger, and their models' and generations' states (never their
    photos, images or prompts). Needs --reason: the look is in the user's audit log."""
    seen = call("GET", f"/v1/admin/users/{user_id}", params={"reason": reason, "limit": limit})
    if as_json:
        print(json.dumps(seen, indent=2))
        return
    c = seen["credits"]
    console.print(
        f"{user_id}: {c['balance']} credits ({c['held']} held, {c['available']} available)"
    )
    ledger = Table("when", "kind", "change", "balance after", "reference", "reason")
    for e in seen["ledger"]:
        ledger.add_row(
            e["created_at"][:19],
            e["kind"],
            f"{e['delta_balance']:+d}",
            str(e["balance_after"]),
            e["reference"] or "",
            e["reason"] or "",
        )
    console.print(ledger)
    _jobs_table(seen["models"] + seen["generations"])
