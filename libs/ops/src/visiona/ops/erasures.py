"""The erasure journal: what a restore must erase again (docs/adr/0014).

The gateway writes ``erasures/<subject>.json`` to the backup bucket when it accepts an
erasure (visiona.gateway.account.erasure, its ``journal`` step); ``subject`` is its keyed
pseudonym of the user id, the one its erasure receipts carry. A restore computes that
pseudonym for every user the restored database holds and, for each one the journal names,
records a deletion in the gateway's schema due at once: the gateway's normal saga then erases
the user again as soon as the restored platform starts.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from visiona.ops.db import user_ids
from visiona.ops.store import ERASURES, Buckets

# The gateway's Pseudonyms.of("subject", user_id) (visiona.gateway.edge.pseudonyms; a unit
# test holds the two to the same answer).
SUBJECT = "subject"


def subject_of(key: bytes, user_id: str) -> str:
    message = SUBJECT.encode() + b":" + user_id.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Tombstone:
    subject: str
    source: str
    requested_at: str

    @classmethod
    def parse(cls, value: dict[str, Any]) -> Tombstone:
        return cls(str(value["subject"]), str(value["source"]), str(value["requested_at"]))


def journal(buckets: Buckets) -> list[Tombstone]:
    return [
        Tombstone.parse(buckets.get_json(key))
        for key, _ in buckets.objects(buckets.backups, ERASURES)
    ]


def reapply(url: str, key: bytes, tombstones: list[Tombstone]) -> list[str]:
    """Schedule, in the restored gateway schema, the erasure of every restored user the
    journal names (no grace: nothing of theirs is in flight on a platform not yet started);
    the user ids scheduled. One already erasing keeps its own deletion."""
    wanted = {t.subject: t for t in tombstones}
    if not wanted:
        return []
    if not key:
        raise ValueError(
            "the erasure journal has entries: BACKUP_PSEUDONYM_KEY (the gateway's "
            "GATEWAY_PSEUDONYM_KEY) is needed to re-apply them"
        )
    due = [(u, wanted[s]) for u in sorted(user_ids(url)) if (s := subject_of(key, u)) in wanted]
    scheduled = []
    with psycopg.connect(url) as conn:
        for user, tombstone in due:
            row = conn.execute(
                "INSERT INTO gateway.deletions (id, user_id, subject, source, status,"
                " clerk_user_deleted, requested_at, work, work_after)"
                " VALUES (%s, %s, %s, %s, 'scheduled', %s, %s, 'start_round', now())"
                " ON CONFLICT DO NOTHING RETURNING id",
                (
                    uuid.uuid4(),
                    user,
                    tombstone.subject,
                    tombstone.source,
                    tombstone.source == "clerk",
                    tombstone.requested_at,
                ),
            ).fetchone()
            if row is not None:
                scheduled.append(user)
        conn.commit()
    return scheduled
