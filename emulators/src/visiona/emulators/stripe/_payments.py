"""Payment intents, charges and refunds."""

from __future__ import annotations

from visiona.emulators.stripe import _params as p
from visiona.emulators.stripe._errors import invalid, no_such
from visiona.emulators.stripe._store import JSON, Store, changed, random_id

DECLINE = {
    "code": "card_declined",
    "decline_code": "generic_decline",
    "message": "Your card was declined.",
    "type": "card_error",
}


def new_payment_intent(
    store: Store,
    *,
    amount: int,
    currency: str,
    customer: str | None,
    metadata: dict[str, str],
    description: str | None = None,
    status: str = "processing",
) -> JSON:
    intent: JSON = {
        "id": random_id("pi_"),
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "application": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": None,
        "confirmation_method": "automatic",
        "created": store.now(),
        "currency": currency,
        "customer": customer,
        "description": description,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": metadata,
        "next_action": None,
        "payment_method": random_id("pm_"),
        "payment_method_types": ["card"],
        "receipt_email": None,
        "status": status,
    }
    intent["client_secret"] = f"{intent['id']}_secret_{random_id('', 24)}"
    store.payment_intents[intent["id"]] = intent
    return intent


def succeed(store: Store, intent: JSON) -> JSON:
    """Settle ``intent``: a succeeded charge for its full amount. Returns the charge."""
    charge: JSON = {
        "id": random_id("ch_"),
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"],
        "amount_refunded": 0,
        "balance_transaction": None,
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "captured": True,
        "created": store.now(),
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "outcome": {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": True,
        "payment_intent": intent["id"],
        "payment_method": intent["payment_method"],
        "receipt_url": None,
        "refunded": False,
        "status": "succeeded",
    }
    store.charges[charge["id"]] = charge
    intent.update(
        status="succeeded",
        amount_received=intent["amount"],
        latest_charge=charge["id"],
        last_payment_error=None,
    )
    return charge


def fail(intent: JSON) -> None:
    """A declined attempt: the intent waits for a new payment method."""
    intent.update(
        status="requires_payment_method",
        last_payment_error={**DECLINE, "payment_method": {"id": intent["payment_method"]}},
    )


def retrieve_payment_intent(store: Store, intent_id: str) -> JSON:
    return store.get(store.payment_intents, intent_id, "payment_intent")


def retrieve_charge(store: Store, charge_id: str) -> JSON:
    return store.get(store.charges, charge_id, "charge")


def retrieve_refund(store: Store, refund_id: str) -> JSON:
    return store.get(store.refunds, refund_id, "refund")


def create_refund(store: Store, params: p.Params) -> JSON:
    charge_id = p.opt_str(params, "charge")
    intent_id = p.opt_str(params, "payment_intent")
    if charge_id and intent_id:
        raise invalid("You may only specify one of these parameters: charge, payment_intent.")
    if charge_id:
        charge = store.charges.get(charge_id)
        if charge is None:
            raise no_such("charge", charge_id, "charge")
    elif intent_id:
        intent = store.payment_intents.get(intent_id)
        if intent is None:
            raise no_such("payment_intent", intent_id, "payment_intent")
        if intent["latest_charge"] is None:
            raise invalid(
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                "payment_intent",
            )
        charge = store.charges[intent["latest_charge"]]
    else:
        raise invalid(
            "One of the following params should be provided for this request: "
            "payment_intent or charge."
        )
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining <= 0:
        raise invalid(
            f"Charge {charge['id']} has already been refunded.", None, "charge_already_refunded"
        )
    amount = p.opt_int(params, "amount", minimum=1)
    if amount is None:
        amount = remaining
    elif amount > remaining:
        raise invalid(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
            "amount",
            "amount_too_large",
        )
    reason = p.opt_choice(params, "reason", ("duplicate", "fraudulent", "requested_by_customer"))
    refund: JSON = {
        "id": random_id("re_"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge["id"],
        "created": store.now(),
        "currency": charge["currency"],
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": p.new_metadata(params),
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "status": "succeeded",
    }
    store.refunds[refund["id"]] = refund
    before = dict(charge)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    store.emit("charge.refunded", charge, changed(before, charge))
    return refund
