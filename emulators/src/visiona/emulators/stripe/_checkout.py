"""Checkout Sessions: created through the API, completed by the emulator's hosted page."""

from __future__ import annotations

import copy

from visiona.emulators.stripe import _billing, _catalog, _customers, _payments
from visiona.emulators.stripe import _params as p
from visiona.emulators.stripe._errors import StripeError, conflict, invalid
from visiona.emulators.stripe._store import JSON, Store, paginate, random_id

MODES = ("payment", "setup", "subscription")
OUTCOMES = ("paid", "async", "declined")
_DAY_S = 24 * 3600
_MIN_EXPIRY_S = 30 * 60


def _url(params: p.Params, key: str) -> str | None:
    url = p.opt_str(params, key)
    if url is not None and not url.startswith(("http://", "https://")):
        raise invalid("Not a valid URL", key, "url_invalid")
    return url


def _line_items(store: Store, params: p.Params, mode: str) -> list[JSON]:
    raw = p.opt_list(params, "line_items")
    if not raw:
        raise invalid(f"`line_items` is required in `{mode}` mode.", "line_items")
    items: list[JSON] = []
    for i, entry in enumerate(raw):
        prefix = f"line_items[{i}]"
        if not isinstance(entry, dict):
            raise invalid(f"Invalid hash: {entry!r}", prefix)
        if "price_data" in entry:
            raise invalid(
                "The Stripe emulator supports only existing prices in line_items "
                "(`price`), not `price_data`.",
                f"{prefix}[price_data]",
            )
        price_param = f"{prefix}[price]"
        price = _catalog.lookup_price(store, p.req_str(entry, "price", prefix), price_param)
        quantity = p.opt_int(entry, "quantity", prefix, minimum=1)
        if quantity is None:
            raise invalid(
                f"Quantity is required. Add `quantity` to `{prefix}`", f"{prefix}[quantity]"
            )
        if mode == "payment" and price["type"] == "recurring":
            raise invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
                price_param,
            )
        if mode == "subscription" and price["type"] != "recurring":
            raise invalid(
                "The Stripe emulator accepts only recurring prices in `subscription` mode; "
                f"`{price['id']}` is a one-time price.",
                price_param,
            )
        if items and price["currency"] != items[0]["currency"]:
            raise invalid("All line items must use the same currency.", price_param)
        if mode == "subscription" and items:
            first, this = items[0]["price"]["recurring"], price["recurring"]
            if (first["interval"], first["interval_count"]) != (
                this["interval"],
                this["interval_count"],
            ):
                raise invalid(
                    "Checkout does not support multiple prices with different billing intervals.",
                    price_param,
                )
        amount = price["unit_amount"] * quantity
        product = store.products.get(price["product"], {})
        items.append(
            {
                "id": random_id("li_"),
                "object": "item",
                "amount_discount": 0,
                "amount_subtotal": amount,
                "amount_tax": 0,
                "amount_total": amount,
                "currency": price["currency"],
                "description": product.get("name", price["product"]),
                "price": copy.deepcopy(price),
                "quantity": quantity,
            }
        )
    return items


def create(store: Store, params: p.Params, public_url: str) -> JSON:
    mode = p.opt_choice(params, "mode", MODES)
    if mode is None:
        raise invalid("Missing required param: mode.", "mode", "parameter_missing")
    if mode == "setup":
        raise invalid("The Stripe emulator does not support `setup` mode.", "mode")
    customer_id = p.opt_str(params, "customer")
    customer_email = p.opt_str(params, "customer_email")
    if customer_id and customer_email:
        raise invalid("You may only specify one of these parameters: customer, customer_email.")
    if customer_id:
        _customers.existing(store, customer_id, "customer")
    wrong_mode_data = "subscription_data" if mode == "payment" else "payment_intent_data"
    if wrong_mode_data in params:
        raise invalid(f"You can not pass `{wrong_mode_data}` in `{mode}` mode.", wrong_mode_data)
    child_key = "payment_intent_data" if mode == "payment" else "subscription_data"
    child = p.opt_dict(params, child_key) or {}
    child_metadata = p.new_metadata(child, prefix=child_key)
    client_reference_id = p.opt_str(params, "client_reference_id")
    if client_reference_id is not None and len(client_reference_id) > 200:
        raise invalid("client_reference_id must be at most 200 characters.", "client_reference_id")
    success_url, cancel_url = _url(params, "success_url"), _url(params, "cancel_url")
    metadata = p.new_metadata(params)
    items = _line_items(store, params, mode)
    now = store.now()
    expires_at = p.opt_int(params, "expires_at")
    if expires_at is None:
        expires_at = now + _DAY_S
    elif not now + _MIN_EXPIRY_S <= expires_at <= now + _DAY_S:
        raise invalid(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
            "expires_at",
        )
    total = sum(item["amount_total"] for item in items)
    session_id = random_id("cs_test_", 58)
    session: JSON = {
        "id": session_id,
        "object": "checkout.session",
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": total,
        "amount_total": total,
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": None,
        "created": now,
        "currency": items[0]["currency"],
        "customer": customer_id,
        "customer_creation": None if customer_id else "if_required",
        "customer_details": None,
        "customer_email": customer_email,
        "expires_at": expires_at,
        "invoice": None,
        "livemode": False,
        "locale": p.opt_str(params, "locale"),
        "metadata": metadata,
        "mode": mode,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always",
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": f"{public_url}/checkout/{session_id}",
    }
    store.checkout_sessions[session_id] = session
    store.checkout_line_items[session_id] = items
    store.checkout_child_metadata[session_id] = child_metadata
    return session


def retrieve(store: Store, session_id: str) -> JSON:
    return store.get(store.checkout_sessions, session_id, "checkout.session")


def list_sessions(store: Store, params: p.Params) -> JSON:
    filters = {
        key: p.opt_str(params, key)
        for key in ("customer", "payment_intent", "subscription", "status")
    }
    sessions = [
        s
        for s in store.checkout_sessions.values()
        if all(v is None or s[k] == v for k, v in filters.items())
    ]
    return paginate("/v1/checkout/sessions", sessions, params)


def line_items(store: Store, session_id: str, params: p.Params) -> JSON:
    retrieve(store, session_id)
    return store.session_line_items(session_id, params)


def expire(store: Store, session_id: str) -> JSON:
    session = retrieve(store, session_id)
    if session["status"] != "open":
        raise invalid(
            'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
            f'Session has a status of "{session["status"]}".'
        )
    session.update(status="expired", url=None)
    store.emit("checkout.session.expired", session)
    return session


def pay(store: Store, session_id: str, outcome: str, email: str | None = None) -> JSON:
    """What the customer's browser does on the hosted page: pay, start a delayed payment, or
    be declined (402, the session stays open)."""
    session = retrieve(store, session_id)
    if session["status"] != "open":
        raise conflict(f"This Checkout Session is {session['status']} and can no longer be paid.")
    if outcome not in OUTCOMES:
        raise invalid(f"Invalid outcome: must be one of {', '.join(OUTCOMES)}", "outcome")
    if outcome == "declined":
        raise StripeError(
            402,
            _payments.DECLINE["message"],
            type="card_error",
            code="card_declined",
            decline_code="generic_decline",
        )
    if outcome == "async" and session["mode"] != "payment":
        raise invalid("The Stripe emulator supports delayed payment methods in payment mode only.")
    items = store.checkout_line_items[session_id]
    child_metadata = store.checkout_child_metadata.get(session_id, {})
    email = email or session["customer_email"]
    customer_id = session["customer"]
    if customer_id is None and session["mode"] == "subscription":
        # Subscriptions need a customer; Checkout creates one from what the buyer typed in.
        customer_id = _customers.new_customer(store, email=email)["id"]
    if customer_id is not None:
        customer = store.customers.get(customer_id)
        if customer is None:
            raise conflict(f"The customer of this Checkout Session ({customer_id}) was deleted.")
        email = customer["email"] or email
    session.update(
        customer=customer_id,
        customer_details={
            "address": None,
            "email": email,
            "name": None,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
        status="complete",
        url=None,
    )
    if session["mode"] == "subscription":
        sub = _billing.new_subscription(
            store, customer_id=str(customer_id), line_items=items, metadata=child_metadata
        )
        session.update(subscription=sub["id"], invoice=sub["latest_invoice"], payment_status="paid")
    else:
        intent = _payments.new_payment_intent(
            store,
            amount=session["amount_total"],
            currency=session["currency"],
            customer=customer_id,
            metadata=dict(child_metadata),
        )
        session["payment_intent"] = intent["id"]
        if outcome == "paid":
            _payments.succeed(store, intent)
            session["payment_status"] = "paid"
    store.emit("checkout.session.completed", session)
    return session


def settle(store: Store, session_id: str, *, succeeded: bool) -> JSON:
    """The delayed payment of a completed session succeeds or fails."""
    session = retrieve(store, session_id)
    intent = store.payment_intents.get(session["payment_intent"] or "")
    if session["status"] != "complete" or intent is None or intent["status"] != "processing":
        raise conflict(f"Checkout Session {session_id} has no delayed payment waiting to settle.")
    if succeeded:
        _payments.succeed(store, intent)
        session["payment_status"] = "paid"
        store.emit("checkout.session.async_payment_succeeded", session)
    else:
        _payments.fail(intent)
        store.emit("checkout.session.async_payment_failed", session)
    return session
