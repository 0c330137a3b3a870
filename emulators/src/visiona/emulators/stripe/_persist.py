"""The Stripe emulator's state on disk (visiona.emulators._state): every object by id, the
event log, the idempotent results of the last 24 hours, and the events still to be delivered
to the webhook endpoint (sent again, from the first attempt, after a restart). As Stripe
does, events older than 30 days are not kept (dropped when the emulator starts)."""

from __future__ import annotations

import base64
import time
from typing import Any

from visiona.emulators._state import StateFile
from visiona.emulators.stripe._api import IDEMPOTENCY_TTL_S, Idempotency, _Stored
from visiona.emulators.stripe._store import COLLECTIONS, Store
from visiona.emulators.stripe._webhooks import Dispatcher

# Store attributes that are sets of ids.
ID_SETS = ("seeded", "deleted_customers")
# Never changed once written.
_SETTLED = frozenset({"events", "idempotency", "outstanding", *ID_SETS})
_SEP = "\x1f"
# Stripe lists events of the last 30 days.
EVENT_RETENTION_S = 30 * 24 * 3600


def documents(store: Store, idempotency: Idempotency, dispatcher: Dispatcher) -> dict[str, Any]:
    docs: dict[str, Any] = {name: getattr(store, name) for name in COLLECTIONS}
    docs |= {name: dict.fromkeys(getattr(store, name), True) for name in ID_SETS}
    docs["idempotency"] = {
        f"{api_key}{_SEP}{key}": {
            "fingerprint": stored.fingerprint,
            "status": stored.status,
            "body": base64.b64encode(stored.body).decode(),
            "headers": stored.headers,
            "at": stored.at,
        }
        for (api_key, key), stored in idempotency.results.items()
    }
    docs["outstanding"] = dict.fromkeys(dispatcher.outstanding, True)
    return docs


def settled(kind: str, _doc: Any) -> bool:
    return kind in _SETTLED


def restore(
    state: StateFile, store: Store, idempotency: Idempotency, dispatcher: Dispatcher
) -> None:
    """Put what ``state`` holds back into a new store, idempotency cache and dispatcher."""
    docs = state.load()
    for name in COLLECTIONS:
        setattr(store, name, docs.get(name, {}))
    for name in ID_SETS:
        setattr(store, name, set(docs.get(name, {})))
    now = time.time()
    store.events = {
        eid: e for eid, e in store.events.items() if e["created"] >= now - EVENT_RETENTION_S
    }
    for scope, stored in docs.get("idempotency", {}).items():
        if stored["at"] < now - IDEMPOTENCY_TTL_S:
            continue
        api_key, _, key = scope.partition(_SEP)
        idempotency.results[(api_key, key)] = _Stored(
            fingerprint=stored["fingerprint"],
            status=stored["status"],
            body=base64.b64decode(stored["body"]),
            headers=stored["headers"],
            at=stored["at"],
        )
    dispatcher.restore_events(store.events, list(docs.get("outstanding", {})))


def sync(state: StateFile, store: Store, idempotency: Idempotency, dispatcher: Dispatcher) -> None:
    state.sync(documents(store, idempotency, dispatcher), settled)
