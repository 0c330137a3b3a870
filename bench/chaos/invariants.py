"""What must hold once the platform has settled, counted as ok / lost / duplicated / unexpected.

Everything is read after the run from the sources of truth, never from the services' APIs:
the database as the private server's superuser (no row-level security), the bucket's listing,
the broker's queues (``rabbitmqctl``), Stripe's own sessions (the emulator's API), and the
workload's journal of what each user asked for and was told.

=================================  ==============  ============================================
invariant                          unit            counted as
=================================  ==============  ============================================
balance_equals_ledger              users           unexpected: balance or held differs from the
                                                   sums of the user's ledger deltas
balance_never_negative             users           unexpected: a negative balance or held, held
                                                   above balance, or an entry that left either
                                                   negative
paid_checkout_credited_once        paid sessions   lost: no purchase entry; duplicated: more
                                                   than one; unexpected: another amount or user,
                                                   or a purchase no paid session explains
stripe_events_applied              Stripe events   lost: stored but never applied
delivered_images_captured_once     generations     lost: fewer credits captured than the images
                                                   stored are worth (or none); duplicated: more
                                                   (or several captures); unexpected: images
                                                   stored that the row does not count
undelivered_released               generation      lost: the hold still open, or credits still
                                   holds           held; duplicated: more released than held;
                                                   unexpected: a hold of no generation
training_charged_once              trainings       lost: a trained model not charged, or its hold
                                                   still held; duplicated: charged more than once;
                                                   unexpected: a failed training charged
one_generation_per_key             keys            see below
one_model_per_key                  keys            the same, for ``POST /v1/models``
stored_objects_referenced          objects         unexpected: an object no row names; lost: a
                                                   row naming an object that is not there
outbox_drained                     outbox rows     lost: never published
dlq_empty                          dead-letter     lost: a dead-letter queue holding messages
                                   queues          (their count in the examples)
queues_drained                     queues          lost: a consumer queue with messages left
generations_final                  generations     lost: not succeeded, failed or canceled
trainings_final                    models          lost: not succeeded, failed or canceled
=================================  ==============  ============================================

**One generation per key.** Every generation's prompt names the key of the request that made
it (``… take generation-7``), so each stored generation is attributed to one request. Per key:

- acknowledged (2xx, the id known): *ok* when exactly that generation exists; *lost* when it
  does not; *duplicated* when others carry the key too (a retry ran the request again);
- refused (a definitive 4xx, e.g. ``409 generation_limit_reached``): *ok* when nothing carries
  the key; *unexpected* otherwise (the user was told no, yet it exists and is charged);
- unanswered (the run gave up on it): its outcome was never known, so *ok* with none or one
  generation, *duplicated* with more.

A generation whose prompt names no key the user sent is *unexpected* too.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.chaos.platform import TERMINAL, ChaosPlatform
from bench.chaos.workload import Journal, KeyRecord
from visiona.billing.domain.catalog import Catalog

CATEGORIES = ("ok", "lost", "duplicated", "unexpected")
EXAMPLES = 5
GENERATION_KEY = re.compile(r"take (generation-\d+)$")
MODEL_KEY = re.compile(r"^chaos (model-\d+)$")


@dataclass
class Tally:
    unit: str
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, category: str, example: str | None = None, n: int = 1) -> None:
        assert category in CATEGORIES
        self.counts[category] += n
        if example is not None and category != "ok":
            shown = self.examples.setdefault(category, [])
            if len(shown) < EXAMPLES:
                shown.append(example)

    @property
    def violations(self) -> int:
        return sum(self.counts[c] for c in CATEGORIES[1:])

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            **{c: self.counts[c] for c in CATEGORIES},
            "examples": self.examples,
        }


@dataclass
class Facts:
    """What the sources of truth hold after the run."""

    accounts: list[tuple[Any, ...]]
    ledger_sums: dict[str, tuple[int, int]]
    ledger_minima: dict[str, tuple[int, int]]
    purchases: list[tuple[Any, ...]]
    hold_entries: dict[str, dict[str, tuple[int, int, int]]]  # hold id → kind → (n, Σb, Σh)
    holds: list[tuple[Any, ...]]
    generations: list[tuple[Any, ...]]
    models: list[tuple[Any, ...]]
    photos: list[tuple[Any, ...]]
    images: list[tuple[Any, ...]]
    stripe_events: list[tuple[Any, ...]]
    outboxes: dict[str, tuple[int, int]]  # schema → (unpublished, all)
    inbox_rows: int
    objects: set[str]
    queues: list[dict[str, Any]]
    sessions: list[dict[str, Any]]


async def gather_facts(platform: ChaosPlatform) -> Facts:
    sql = platform.sql
    accounts = await sql("SELECT user_id, balance, held FROM billing.accounts")
    sums = await sql(
        "SELECT user_id, sum(delta_balance), sum(delta_held) FROM billing.ledger_entries "
        "GROUP BY user_id"
    )
    minima = await sql(
        "SELECT user_id, min(balance_after), min(held_after) FROM billing.ledger_entries "
        "GROUP BY user_id"
    )
    entries = await sql(
        "SELECT hold_id::text, kind, count(*), sum(delta_balance), sum(delta_held) "
        "FROM billing.ledger_entries WHERE hold_id IS NOT NULL GROUP BY hold_id, kind"
    )
    hold_entries: dict[str, dict[str, tuple[int, int, int]]] = defaultdict(dict)
    for hold_id, kind, n, balance, held in entries:
        hold_entries[hold_id][kind] = (int(n), int(balance), int(held))
    outboxes: dict[str, tuple[int, int]] = {}
    inbox_rows = 0
    for (schema,) in await sql(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'"
    ):
        ((unpublished, total),) = await sql(
            f'SELECT count(*) FILTER (WHERE published_at IS NULL), count(*) FROM "{schema}".outbox'
        )
        outboxes[schema] = (int(unpublished), int(total))
    for (schema,) in await sql(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'inbox'"
    ):
        ((count,),) = await sql(f'SELECT count(*) FROM "{schema}".inbox')
        inbox_rows += int(count)
    return Facts(
        accounts=accounts,
        ledger_sums={u: (int(b), int(h)) for u, b, h in sums},
        ledger_minima={u: (int(b), int(h)) for u, b, h in minima},
        purchases=await sql(
            "SELECT user_id, reference, payment_intent, delta_balance FROM billing.ledger_entries "
            "WHERE kind = 'purchase'"
        ),
        hold_entries=dict(hold_entries),
        holds=await sql(
            "SELECT id::text, user_id, job_kind, job_id, status, amount, units FROM billing.holds"
        ),
        generations=await sql(
            "SELECT g.id::text, g.user_id, g.prompt, g.status, g.num_outputs, g.delivered, "
            "g.failure_reason, (SELECT count(*) FROM generation.images i "
            "WHERE i.generation_id = g.id) FROM generation.generations g"
        ),
        models=await sql(
            "SELECT id::text, user_id, name, status, training_id::text, dataset_key, weights_key, "
            "failure_reason, deleted_at IS NOT NULL FROM training.models"
        ),
        photos=await sql("SELECT id::text, status, upload_key, object_key FROM training.photos"),
        images=await sql(
            "SELECT generation_id::text, object_key, thumbnail_key FROM generation.images"
        ),
        stripe_events=await sql(
            "SELECT id, type, processed_at IS NOT NULL, outcome FROM billing.stripe_events"
        ),
        outboxes=outboxes,
        inbox_rows=inbox_rows,
        objects=await asyncio.to_thread(_list_objects, platform),
        queues=await asyncio.to_thread(platform.mq.queues),
        sessions=await _stripe_sessions(platform),
    )


def _list_objects(platform: ChaosPlatform) -> set[str]:
    assert platform.cfg.s3 is not None
    client = platform.s3()
    return {
        str(o.object_name)
        for o in client.list_objects(platform.cfg.s3.bucket, recursive=True)
        if o.object_name
    }


async def _stripe_sessions(platform: ChaosPlatform) -> list[dict[str, Any]]:
    """Every Checkout Session in the Stripe emulator's account (its list API, paged)."""
    sessions: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    async with httpx.AsyncClient(
        base_url=platform.stripe_url, auth=(platform.cfg.stripe_api_key, ""), timeout=30
    ) as client:
        while True:
            page = (await client.get("/v1/checkout/sessions", params=params)).json()
            sessions += page["data"]
            if not page.get("has_more") or not page["data"]:
                return sessions
            params["starting_after"] = page["data"][-1]["id"]


def check(facts: Facts, journal: Journal) -> dict[str, Tally]:
    """Every invariant's tally, in the order they are reported."""
    tallies: dict[str, Tally] = {}
    tallies |= _ledger(facts)
    tallies["paid_checkout_credited_once"] = _checkouts(facts)
    events = Tally("Stripe events")
    for event_id, kind, processed, outcome in facts.stripe_events:
        events.add("ok" if processed else "lost", f"{event_id} {kind} ({outcome})")
    tallies["stripe_events_applied"] = events
    tallies |= _holds(facts)
    tallies["one_generation_per_key"] = _per_key(
        journal.keys,
        "generation",
        [(g[0], g[1], g[2]) for g in facts.generations],
        GENERATION_KEY,
    )
    tallies["one_model_per_key"] = _per_key(
        journal.keys, "model", [(m[0], m[1], m[2]) for m in facts.models], MODEL_KEY
    )
    tallies["stored_objects_referenced"] = _objects(facts)
    outbox = Tally("outbox rows")
    for schema, (unpublished, total) in sorted(facts.outboxes.items()):
        outbox.add("ok", n=total - unpublished)
        if unpublished:
            outbox.add("lost", f"{schema}.outbox: {unpublished} unpublished", n=unpublished)
    tallies["outbox_drained"] = outbox
    dlq, backlog = Tally("dead-letter queues"), Tally("queues")
    for queue in facts.queues:
        left = int(queue.get("messages_ready") or 0) + int(
            queue.get("messages_unacknowledged") or 0
        )
        tally = dlq if str(queue["name"]).endswith(".dlq") else backlog
        tally.add("lost" if left else "ok", f"{queue['name']}: {left} messages")
    tallies["dlq_empty"] = dlq
    tallies["queues_drained"] = backlog
    final = Tally("generations")
    for gen_id, user, _, status, *_ in facts.generations:
        final.add("ok" if status in TERMINAL else "lost", f"{gen_id} ({user}) {status}")
    tallies["generations_final"] = final
    trained = Tally("models")
    for model_id, user, _, status, *_ in facts.models:
        trained.add("ok" if status in TERMINAL else "lost", f"{model_id} ({user}) {status}")
    tallies["trainings_final"] = trained
    return tallies


def _ledger(facts: Facts) -> dict[str, Tally]:
    equal, positive = Tally("users"), Tally("users")
    users = {u for u, *_ in facts.accounts} | set(facts.ledger_sums)
    accounts = {u: (int(b), int(h)) for u, b, h in facts.accounts}
    for user in sorted(users):
        balance, held = accounts.get(user, (0, 0))
        sums = facts.ledger_sums.get(user, (0, 0))
        if (balance, held) == sums:
            equal.add("ok")
        else:
            equal.add("unexpected", f"{user}: balance {balance} held {held}, ledger says {sums}")
        low_balance, low_held = facts.ledger_minima.get(user, (0, 0))
        if min(balance, held, balance - held, low_balance, low_held) < 0:
            positive.add(
                "unexpected",
                f"{user}: balance {balance} held {held}; lowest after an entry "
                f"{low_balance}/{low_held}",
            )
        else:
            positive.add("ok")
    return {"balance_equals_ledger": equal, "balance_never_negative": positive}


def _checkouts(facts: Facts) -> Tally:
    tally = Tally("paid sessions")
    catalog = Catalog.load()
    by_session: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in facts.purchases:
        by_session[str(row[1])].append(row)
    paid = [
        s
        for s in facts.sessions
        if s.get("mode") == "payment" and s.get("payment_status") == "paid"
    ]
    for session in paid:
        sid = session["id"]
        entries = by_session.pop(sid, [])
        pack = catalog.pack(str((session.get("metadata") or {}).get("item_id") or ""))
        user = session.get("client_reference_id")
        if not entries:
            tally.add("lost", f"{sid} ({user}) paid, never credited")
        elif len(entries) > 1:
            tally.add("duplicated", f"{sid} ({user}) credited {len(entries)} times")
        elif pack is None or entries[0][3] != pack.credits or entries[0][0] != user:
            tally.add("unexpected", f"{sid}: credited {entries[0][3]} to {entries[0][0]}")
        else:
            tally.add("ok")
    for sid, entries in by_session.items():
        tally.add("unexpected", f"purchase of {sid} with no paid session", n=len(entries))
    return tally


def _holds(facts: Facts) -> dict[str, Tally]:
    captured, released, trainings = (
        Tally("generations"),
        Tally("generation holds"),
        Tally("trainings"),
    )
    holds = {(h[2], h[3]): h for h in facts.holds}
    for gen_id, user, _, status, _, delivered, failure, images in facts.generations:
        if status not in TERMINAL:
            continue  # generations_final reports it
        hold = holds.pop(("generation", gen_id), None)
        reason = f" {failure}" if failure else ""
        what = f"{gen_id} ({user}, {status}{reason}, {images} images"
        if int(images) != int(delivered):
            captured.add("unexpected", f"{what}: the row says {delivered} delivered)")
            continue
        if hold is None:
            captured.add("lost" if images else "ok", f"{what}, no hold)")
            continue
        hold_id, _, _, _, hold_status, amount, units = hold
        entries = facts.hold_entries.get(hold_id, {})
        charged = -sum(b for _, b, _ in entries.values())
        left = sum(h for _, _, h in entries.values())
        captures = entries.get("capture", (0, 0, 0))[0]
        worth = int(amount) * int(images) // int(units)
        if hold_status == "rejected":
            captured.add("lost" if images else "ok", f"{what}, hold rejected)")
            continue
        if charged == worth and captures <= 1:
            captured.add("ok")
        elif charged < worth:
            captured.add("lost", f"{what}): captured {charged} of {worth}")
        else:
            captured.add("duplicated", f"{what}): captured {charged} of {worth} in {captures}")
        if hold_status == "open" or left > 0:
            released.add("lost", f"{what}): hold {hold_status}, {left} of {amount} still held")
        elif left < 0:
            released.add("duplicated", f"{what}): {-left} more released than held")
        else:
            released.add("ok")
    for model_id, user, _, status, training_id, *_ in facts.models:
        hold = holds.pop(("training", training_id), None)
        if status not in TERMINAL or hold is None or hold[4] == "rejected":
            continue
        entries = facts.hold_entries.get(hold[0], {})
        charged = -sum(b for _, b, _ in entries.values())
        left = sum(h for _, _, h in entries.values())
        what = f"model {model_id} ({user}, {status})"
        expected = int(hold[5]) if status == "succeeded" else 0
        if hold[4] == "open" or left > 0:
            trainings.add("lost", f"{what}: hold {hold[4]}, {left} still held")
        elif charged == expected:
            trainings.add("ok")
        elif charged < expected:
            trainings.add("lost", f"{what}: charged {charged} of {expected}")
        elif expected == 0:
            trainings.add("unexpected", f"{what}: charged {charged}")
        else:
            trainings.add("duplicated", f"{what}: charged {charged} of {expected}")
    for (kind, job_id), hold in holds.items():
        if kind == "generation" and not any(g[0] == job_id for g in facts.generations):
            released.add(
                "unexpected", f"hold {hold[0]} of generation {job_id}, which does not exist"
            )
    return {
        "delivered_images_captured_once": captured,
        "undelivered_released": released,
        "training_charged_once": trainings,
    }


def _per_key(
    keys: list[KeyRecord], op: str, rows: list[tuple[str, str, str]], pattern: re.Pattern[str]
) -> Tally:
    """``rows``: (id, user id, the text naming the key) of what the requests created."""
    tally = Tally("keys")
    sent = {(k.user_id, k.key): k for k in keys if k.op == op}
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row_id, user, text in rows:
        match = pattern.search(text)
        if match is None or (user, match[1]) not in sent:
            tally.add("unexpected", f"{row_id} ({user}) {text!r}: no request of ours made it")
            continue
        found[(user, match[1])].append(row_id)
    for (user, key), record in sent.items():
        ids = found.get((user, key), [])
        what = f"{user} {key} ({record.status} {record.code or ''})".replace(" )", ")")
        if record.acknowledged:
            extra = [i for i in ids if i != record.resource_id]
            if record.resource_id not in ids:
                tally.add("lost", f"{what}: {record.resource_id} does not exist")
            elif extra:
                tally.add("duplicated", f"{what}: also {', '.join(extra)}")
            else:
                tally.add("ok")
        elif record.refused:
            if ids:
                tally.add("unexpected", f"{what}: yet {', '.join(ids)} exists")
            else:
                tally.add("ok")
        elif len(ids) > 1:
            tally.add("duplicated", f"{what} unanswered: {', '.join(ids)}")
        else:
            tally.add("ok")
    return tally


def _objects(facts: Facts) -> Tally:
    tally = Tally("objects")
    named: dict[str, str] = {}
    for photo_id, status, upload_key, object_key in facts.photos:
        if object_key:
            named[object_key] = f"photo {photo_id}"
        if status == "uploading" and upload_key:
            # An upload in flight: the object may or may not be there yet.
            named.setdefault(upload_key, "")
    for model_id, *_, dataset_key, weights_key, _, _ in facts.models:
        for key in (dataset_key, weights_key):
            if key:
                named[key] = f"model {model_id}"
    for gen_id, object_key, thumbnail_key in facts.images:
        named[object_key] = named[thumbnail_key] = f"generation {gen_id}"
    for name in sorted(facts.objects):
        tally.add("ok" if name in named else "unexpected", f"{name}: no row names it")
    for key, owner in sorted(named.items()):
        if owner and key not in facts.objects:
            tally.add("lost", f"{key} of {owner} is not in the bucket")
    return tally
