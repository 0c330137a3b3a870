"""In-memory state of the emulator: every object by id, the event log, and shared helpers."""

from __future__ import annotations

import calendar
import copy
import json
import secrets
import string
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from visiona.emulators.stripe import _params as p
from visiona.emulators.stripe._errors import invalid, no_such

JSON = dict[str, Any]

# The version stripe==16.1.0 pins; events carry it as the webhook endpoint's version.
API_VERSION = "2026-10-28.endive"

_ALNUM = string.ascii_letters + string.digits

# Store attributes holding objects by id, in creation order.
COLLECTIONS = (
    "products",
    "prices",
    "customers",
    "checkout_sessions",
    "checkout_line_items",
    "checkout_child_metadata",
    "payment_intents",
    "charges",
    "refunds",
    "subscriptions",
    "invoices",
    "invoice_payments",
    "portal_sessions",
    "events",
)
# A Checkout Session's side tables, not objects of their own: not counted.
_SIDE_TABLES = frozenset({"checkout_line_items", "checkout_child_metadata"})

# (request id, idempotency key) of the API call being handled; events raised by it carry both.
REQUEST_CONTEXT: ContextVar[tuple[str | None, str | None]] = ContextVar(
    "stripe_emulator_request", default=(None, None)
)


class EventSink(Protocol):
    """Where new events go: the webhook dispatcher."""

    def wants_events(self) -> bool: ...

    def publish(self, event: JSON, payload: str) -> None: ...


def random_id(prefix: str, n: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(n))


def add_interval(ts: int, interval: str, count: int) -> int:
    """``ts`` moved on by ``count`` intervals, months clamped to the month's last day."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    if interval == "day":
        dt += timedelta(days=count)
    elif interval == "week":
        dt += timedelta(weeks=count)
    else:
        months = count * (12 if interval == "year" else 1)
        year, month0 = divmod(dt.month - 1 + months, 12)
        year += dt.year
        day = min(dt.day, calendar.monthrange(year, month0 + 1)[1])
        dt = dt.replace(year=year, month=month0 + 1, day=day)
    return int(dt.timestamp())


def next_period_end(anchor: int, after: int, interval: str, count: int) -> int:
    """The first billing boundary after ``after``, counted from ``anchor`` (Jan 31 → Feb 28 →
    Mar 31, as Stripe does, rather than drifting to the 28th)."""
    n = 1
    while (end := add_interval(anchor, interval, count * n)) <= after:
        n += 1
    return end


def list_object(url: str, data: list[JSON], *, has_more: bool = False) -> JSON:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def changed(before: JSON, after: JSON) -> JSON:
    """``previous_attributes`` of an update: the old value of every top-level key that changed."""
    return {k: copy.deepcopy(v) for k, v in before.items() if after.get(k) != v}


@dataclass
class Store:
    """All objects by id, in creation order. Dict values are the API's JSON objects."""

    sink: EventSink
    clock: Callable[[], float] = time.time
    products: dict[str, JSON] = field(default_factory=dict)
    prices: dict[str, JSON] = field(default_factory=dict)
    seeded: set[str] = field(default_factory=set)  # product and price ids that survive reset
    customers: dict[str, JSON] = field(default_factory=dict)
    deleted_customers: set[str] = field(default_factory=set)
    checkout_sessions: dict[str, JSON] = field(default_factory=dict)
    checkout_line_items: dict[str, list[JSON]] = field(default_factory=dict)
    # Per session: payment_intent_data[metadata] / subscription_data[metadata] to apply on payment.
    checkout_child_metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    payment_intents: dict[str, JSON] = field(default_factory=dict)
    charges: dict[str, JSON] = field(default_factory=dict)
    refunds: dict[str, JSON] = field(default_factory=dict)
    subscriptions: dict[str, JSON] = field(default_factory=dict)
    invoices: dict[str, JSON] = field(default_factory=dict)
    invoice_payments: dict[str, JSON] = field(default_factory=dict)
    portal_sessions: dict[str, JSON] = field(default_factory=dict)
    events: dict[str, JSON] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget everything except the seeded products and prices."""
        self.products = {k: v for k, v in self.products.items() if k in self.seeded}
        self.prices = {k: v for k, v in self.prices.items() if k in self.seeded}
        for name in COLLECTIONS:
            if name not in ("products", "prices"):
                getattr(self, name).clear()
        self.deleted_customers.clear()

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in COLLECTIONS if name not in _SIDE_TABLES}

    def now(self) -> int:
        return int(self.clock())

    def _by_prefix(self) -> tuple[tuple[str, dict[str, JSON]], ...]:
        # Longest prefixes first: "inpay_" before "in_".
        return (
            ("inpay_", self.invoice_payments),
            ("cs_", self.checkout_sessions),
            ("cus_", self.customers),
            ("pi_", self.payment_intents),
            ("ch_", self.charges),
            ("re_", self.refunds),
            ("sub_", self.subscriptions),
            ("in_", self.invoices),
            ("bps_", self.portal_sessions),
            ("evt_", self.events),
            ("prod_", self.products),
            ("price_", self.prices),
        )

    def find(self, obj_id: str) -> JSON | None:
        """Any stored object by id (for ``expand``); prices and products may have custom ids."""
        for prefix, objects in self._by_prefix():
            if obj_id.startswith(prefix):
                return objects.get(obj_id)
        return self.prices.get(obj_id) or self.products.get(obj_id)

    @staticmethod
    def get(objects: dict[str, JSON], obj_id: str, kind: str, param: str = "id") -> JSON:
        obj = objects.get(obj_id)
        if obj is None:
            raise no_such(kind, obj_id, param)
        return obj

    def customer(self, customer_id: str, param: str = "id") -> JSON:
        return self.get(self.customers, customer_id, "customer", param)

    def emit(self, event_type: str, obj: JSON, previous_attributes: JSON | None = None) -> JSON:
        """Record an event with a snapshot of ``obj`` and hand it to the webhook dispatcher."""
        request_id, idempotency_key = REQUEST_CONTEXT.get()
        data: JSON = {"object": copy.deepcopy(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = copy.deepcopy(previous_attributes)
        event: JSON = {
            "id": random_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1 if self.sink.wants_events() else 0,
            "request": {"id": request_id, "idempotency_key": idempotency_key},
            "type": event_type,
        }
        self.events[event["id"]] = event
        self.sink.publish(event, json.dumps(event))
        return event

    # Expansion -------------------------------------------------------------------------------

    def expand(self, obj: JSON, paths: Iterable[str]) -> JSON:
        """A copy of ``obj`` with the id fields named by ``paths`` (``a.b``, ``data.x``)
        replaced by the objects. Paths naming nothing expandable are ignored."""
        result = copy.deepcopy(obj)
        for path in paths:
            self._expand_path(result, path.split("."))
        return result

    def _expand_path(self, node: Any, path: list[str]) -> None:
        if not path or not isinstance(node, dict):
            return
        head, rest = path[0], path[1:]
        if node.get("object") == "list" and head == "data":
            for item in node.get("data", []):
                self._expand_path(item, rest)
            return
        if head == "line_items" and node.get("object") == "checkout.session":
            node[head] = self.session_line_items(str(node["id"]))
        value = node.get(head)
        if isinstance(value, str):
            found = self.find(value)
            if found is not None:
                value = node[head] = copy.deepcopy(found)
        self._expand_path(value, rest)

    def session_line_items(self, session_id: str, params: p.Params | None = None) -> JSON:
        items = self.checkout_line_items.get(session_id, [])
        url = f"/v1/checkout/sessions/{session_id}/line_items"
        return paginate(url, items, params or {}, newest_first=False)


def paginate(url: str, items: list[JSON], params: p.Params, *, newest_first: bool = True) -> JSON:
    """A list object over ``items`` (in creation order) with Stripe's cursor parameters:
    ``limit`` (1-100, default 10), ``starting_after``, ``ending_before``, and ``created``."""
    ordered = list(reversed(items)) if newest_first else list(items)
    created = params.get("created")
    if created is not None:
        ordered = [o for o in ordered if _created_matches(o["created"], created)]
    limit = p.opt_int(params, "limit", minimum=1)
    if limit is None:
        limit = 10
    elif limit > 100:
        raise invalid("This value must be less than or equal to 100.", "limit")
    ids = [o["id"] for o in ordered]
    after, before = p.opt_str(params, "starting_after"), p.opt_str(params, "ending_before")
    if after is not None:
        if after not in ids:
            raise invalid(f"No such object: '{after}'", "starting_after", "resource_missing")
        ordered = ordered[ids.index(after) + 1 :]
    elif before is not None:
        if before not in ids:
            raise invalid(f"No such object: '{before}'", "ending_before", "resource_missing")
        ordered = ordered[: ids.index(before)]
        page = ordered[-limit:]
        return list_object(url, page, has_more=len(ordered) > len(page))
    return list_object(url, ordered[:limit], has_more=len(ordered) > limit)


def _created_matches(created: int, spec: Any) -> bool:
    if isinstance(spec, str):
        return created == p.opt_int({"created": spec}, "created")
    if not isinstance(spec, dict):
        raise invalid("Invalid created filter", "created")
    ops: dict[str, Callable[[int, int], bool]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    for op in spec:
        if op not in ops:
            raise invalid(f"Received unknown parameter: created[{op}]", f"created[{op}]")
        bound = p.opt_int(spec, op, "created")
        if bound is not None and not ops[op](created, bound):
            return False
    return True
