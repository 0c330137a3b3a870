"""Billing portal sessions: ``/v1/billing_portal/sessions`` and what the portal page does."""

from __future__ import annotations

from visiona.emulators.stripe import _billing, _customers
from visiona.emulators.stripe import _params as p
from visiona.emulators.stripe._errors import invalid, missing, no_such
from visiona.emulators.stripe._store import JSON, Store, random_id

# One configuration per account is all the emulator has.
_CONFIGURATION_ID = random_id("bpc_")


def create(store: Store, params: p.Params, public_url: str) -> JSON:
    customer_id = p.opt_str(params, "customer")
    if not customer_id:
        raise missing("customer")
    _customers.existing(store, customer_id, "customer")
    return_url = p.opt_str(params, "return_url")
    if return_url is not None and not return_url.startswith(("http://", "https://")):
        raise invalid("Not a valid URL", "return_url", "url_invalid")
    session_id = random_id("bps_")
    session: JSON = {
        "id": session_id,
        "object": "billing_portal.session",
        "configuration": _CONFIGURATION_ID,
        "created": store.now(),
        "customer": customer_id,
        "flow": None,
        "livemode": False,
        "locale": p.opt_str(params, "locale"),
        "on_behalf_of": None,
        "return_url": return_url,
        "url": f"{public_url}/portal/{session_id}",
    }
    store.portal_sessions[session_id] = session
    return session


def session(store: Store, session_id: str) -> JSON:
    return store.get(store.portal_sessions, session_id, "billing_portal.session")


def subscriptions(store: Store, portal_session: JSON) -> list[JSON]:
    """The customer's subscriptions shown in the portal, newest first."""
    return [
        s
        for s in reversed(store.subscriptions.values())
        if s["customer"] == portal_session["customer"]
    ]


def _own_subscription(store: Store, portal_session: JSON, sub_id: str) -> JSON:
    sub = store.subscriptions.get(sub_id)
    if sub is None or sub["customer"] != portal_session["customer"]:
        raise no_such("subscription", sub_id, "subscription")
    return sub


def cancel(store: Store, portal_session: JSON, sub_id: str, *, at_period_end: bool) -> JSON:
    sub = _own_subscription(store, portal_session, sub_id)
    if at_period_end:
        return _billing.change_cancel_at_period_end(store, sub, True)
    return _billing.cancel(store, sub_id, {})


def resume(store: Store, portal_session: JSON, sub_id: str) -> JSON:
    """Undo a pending cancellation ("Renew plan" in the real portal)."""
    return _billing.change_cancel_at_period_end(
        store, _own_subscription(store, portal_session, sub_id), False
    )
