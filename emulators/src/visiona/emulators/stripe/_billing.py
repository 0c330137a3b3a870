"""Subscriptions, their invoices and invoice payments.

In this API version the billing period lives on each subscription item
(``items.data[].current_period_start/end``), and an invoice names its subscription under
``parent.subscription_details.subscription`` — there is no top-level ``invoice.subscription``.
"""

from __future__ import annotations

import copy
from typing import Any

from visiona.emulators.stripe import _params as p
from visiona.emulators.stripe import _payments
from visiona.emulators.stripe._errors import conflict, invalid
from visiona.emulators.stripe._store import (
    JSON,
    Store,
    add_interval,
    changed,
    list_object,
    next_period_end,
    paginate,
    random_id,
)

STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)
# Real parameters of POST /v1/subscriptions/{id} whose effect the emulator does not model:
# refusing them beats pretending a plan change happened.
_UNSUPPORTED_UPDATES = frozenset(
    {
        "add_invoice_items",
        "billing_cycle_anchor",
        "cancel_at",
        "discounts",
        "items",
        "pause_collection",
        "trial_end",
        "trial_from_plan",
    }
)


def new_subscription(
    store: Store, *, customer_id: str, line_items: list[JSON], metadata: dict[str, str]
) -> JSON:
    """An active subscription for checkout line items, with its first invoice paid.

    Emits ``customer.subscription.created`` then ``invoice.paid``.
    """
    now = store.now()
    sub_id = random_id("sub_")
    recurring = line_items[0]["price"]["recurring"]
    end = add_interval(now, recurring["interval"], recurring["interval_count"])
    items = [
        {
            "id": random_id("si_", 14),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": now,
            "current_period_end": end,
            "current_period_start": now,
            "discounts": [],
            "metadata": {},
            "price": copy.deepcopy(li["price"]),
            "quantity": li["quantity"],
            "subscription": sub_id,
            "tax_rates": [],
        }
        for li in line_items
    ]
    sub: JSON = {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": now,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": now,
        "currency": line_items[0]["price"]["currency"],
        "customer": customer_id,
        "days_until_due": None,
        "default_payment_method": None,
        "description": None,
        "discounts": [],
        "ended_at": None,
        "items": {
            **list_object(f"/v1/subscription_items?subscription={sub_id}", items),
            "total_count": len(items),
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": metadata,
        "pause_collection": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": "active",
        "test_clock": None,
        "trial_end": None,
        "trial_start": None,
    }
    store.subscriptions[sub_id] = sub
    invoice = _invoice(store, sub, "subscription_create", now, now, paid=True)
    sub["latest_invoice"] = invoice["id"]
    store.emit("customer.subscription.created", sub)
    store.emit("invoice.paid", invoice)
    return sub


def _invoice(
    store: Store, sub: JSON, reason: str, period_start: int, period_end: int, *, paid: bool
) -> JSON:
    """An invoice for the subscription's current item periods, with its payment attempt."""
    now = store.now()
    invoice_id = random_id("in_")
    customer = store.customers.get(sub["customer"], {})
    lines = []
    for item in sub["items"]["data"]:
        price = item["price"]
        amount = price["unit_amount"] * item["quantity"]
        product = store.products.get(price["product"], {})
        lines.append(
            {
                "id": random_id("il_"),
                "object": "line_item",
                "amount": amount,
                "currency": price["currency"],
                "description": f"{item['quantity']} \N{MULTIPLICATION SIGN} {product.get('name', price['product'])}",
                "discount_amounts": [],
                "discountable": True,
                "discounts": [],
                "invoice": invoice_id,
                "livemode": False,
                "metadata": {},
                "parent": {
                    "type": "subscription_item_details",
                    "invoice_item_details": None,
                    "subscription_item_details": {
                        "invoice_item": None,
                        "proration": False,
                        "proration_details": {"credited_items": None},
                        "subscription": sub["id"],
                        "subscription_item": item["id"],
                    },
                },
                "period": {
                    "end": item["current_period_end"],
                    "start": item["current_period_start"],
                },
                "pretax_credit_amounts": [],
                "pricing": {
                    "type": "price_details",
                    "price_details": {"price": price["id"], "product": price["product"]},
                    "unit_amount_decimal": price["unit_amount_decimal"],
                },
                "quantity": item["quantity"],
                "subscription": sub["id"],
                "subtotal": amount,
                "taxes": [],
            }
        )
    total = sum(line["amount"] for line in lines)
    number = None
    if customer:
        number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
    invoice: JSON = {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Visiona (Stripe emulator)",
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": total,
        "amount_shipping": 0,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": True,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_reason": reason,
        "collection_method": "charge_automatically",
        "created": now,
        "currency": sub["currency"],
        "customer": sub["customer"],
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "default_payment_method": None,
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": now,
        "ending_balance": 0,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "lines": {
            **list_object(f"/v1/invoices/{invoice_id}/lines", lines),
            "total_count": len(lines),
        },
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": number,
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(sub["metadata"]),
                "subscription": sub["id"],
            },
        },
        "period_end": period_end,
        "period_start": period_start,
        "starting_balance": 0,
        "status": "open",
        "status_transitions": {
            "finalized_at": now,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }
    store.invoices[invoice_id] = invoice
    if total == 0:
        _mark_paid(invoice, now)
        return invoice
    intent = _payments.new_payment_intent(
        store,
        amount=total,
        currency=sub["currency"],
        customer=sub["customer"],
        metadata={},
        description="Subscription creation"
        if reason == "subscription_create"
        else "Subscription update",
    )
    payment: JSON = {
        "id": random_id("inpay_"),
        "object": "invoice_payment",
        "amount_paid": None,
        "amount_requested": total,
        "created": now,
        "currency": sub["currency"],
        "invoice": invoice_id,
        "is_default": True,
        "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
        "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    }
    store.invoice_payments[payment["id"]] = payment
    invoice.update(attempt_count=1, attempted=True)
    if paid:
        _payments.succeed(store, intent)
        payment.update(
            amount_paid=total,
            status="paid",
            status_transitions={"canceled_at": None, "paid_at": now},
        )
        _mark_paid(invoice, now)
    else:
        _payments.fail(intent)
        invoice["next_payment_attempt"] = add_interval(now, "day", 3)
    return invoice


def _mark_paid(invoice: JSON, now: int) -> None:
    invoice.update(
        amount_paid=invoice["amount_due"], amount_remaining=0, auto_advance=False, status="paid"
    )
    invoice["status_transitions"]["paid_at"] = now


def renew(store: Store, sub_id: str, *, fail: bool) -> JSON:
    """The end of the current period: bill the next one, or end a subscription set to cancel."""
    sub = retrieve(store, sub_id)
    if sub["status"] == "canceled":
        raise conflict(f"Subscription {sub_id} is canceled and cannot renew.")
    items = sub["items"]["data"]
    period_start = min(item["current_period_start"] for item in items)
    period_end = max(item["current_period_end"] for item in items)
    if sub["cancel_at_period_end"]:
        cancel_now(store, sub, ended_at=period_end)
        return {"subscription": sub, "invoice": None}
    before = copy.deepcopy(sub)
    for item in items:
        recurring = item["price"]["recurring"]
        start = item["current_period_end"]
        item["current_period_start"] = start
        item["current_period_end"] = next_period_end(
            sub["billing_cycle_anchor"], start, recurring["interval"], recurring["interval_count"]
        )
    invoice = _invoice(store, sub, "subscription_cycle", period_start, period_end, paid=not fail)
    sub["latest_invoice"] = invoice["id"]
    sub["status"] = "past_due" if fail else "active"
    store.emit("invoice.payment_failed" if fail else "invoice.paid", invoice)
    store.emit("customer.subscription.updated", sub, changed(before, sub))
    return {"subscription": sub, "invoice": invoice}


def set_cancel_at_period_end(store: Store, sub: JSON, flag: bool) -> None:
    if flag == sub["cancel_at_period_end"]:
        return
    if flag:
        period_end = max(item["current_period_end"] for item in sub["items"]["data"])
        sub.update(cancel_at_period_end=True, cancel_at=period_end, canceled_at=store.now())
        sub["cancellation_details"]["reason"] = "cancellation_requested"
    else:
        sub.update(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
        sub["cancellation_details"]["reason"] = None


def change_cancel_at_period_end(store: Store, sub: JSON, flag: bool) -> JSON:
    """Set or clear the pending cancellation; emits ``customer.subscription.updated`` if changed."""
    if sub["status"] == "canceled":
        raise invalid(
            "A canceled subscription can only update its cancellation_details and metadata.",
            "cancel_at_period_end",
        )
    before = copy.deepcopy(sub)
    set_cancel_at_period_end(store, sub, flag)
    previous = changed(before, sub)
    if previous:
        store.emit("customer.subscription.updated", sub, previous)
    return sub


def cancel_now(store: Store, sub: JSON, *, ended_at: int | None = None) -> None:
    """End ``sub`` (immediately, or at ``ended_at``); emits ``customer.subscription.deleted``."""
    now = store.now()
    sub.update(status="canceled", ended_at=ended_at or now, canceled_at=sub["canceled_at"] or now)
    sub["cancellation_details"]["reason"] = "cancellation_requested"
    store.emit("customer.subscription.deleted", sub)


def retrieve(store: Store, sub_id: str) -> JSON:
    return store.get(store.subscriptions, sub_id, "subscription")


def update(store: Store, sub_id: str, params: p.Params) -> JSON:
    sub = retrieve(store, sub_id)
    unsupported = sorted(_UNSUPPORTED_UPDATES & set(params))
    if unsupported:
        raise invalid(
            f"The Stripe emulator does not support `{unsupported[0]}` on subscription updates.",
            unsupported[0],
        )
    flag = p.opt_bool(params, "cancel_at_period_end")
    metadata = p.metadata(params)
    details = p.opt_dict(params, "cancellation_details") or {}
    comment = p.opt_str(details, "comment", "cancellation_details")
    feedback = p.opt_str(details, "feedback", "cancellation_details")
    description = p.opt_str(params, "description")
    if sub["status"] == "canceled" and (flag is not None or description is not None):
        raise invalid(
            "A canceled subscription can only update its cancellation_details and metadata."
        )
    before = copy.deepcopy(sub)
    if flag is not None:
        set_cancel_at_period_end(store, sub, flag)
    sub["metadata"] = p.merge_metadata(sub["metadata"], metadata)
    if description is not None:
        sub["description"] = description or None
    if "comment" in details:
        sub["cancellation_details"]["comment"] = comment or None
    if "feedback" in details:
        sub["cancellation_details"]["feedback"] = feedback or None
    previous = changed(before, sub)
    if previous:
        store.emit("customer.subscription.updated", sub, previous)
    return sub


def cancel(store: Store, sub_id: str, params: p.Params) -> JSON:
    sub = retrieve(store, sub_id)
    if sub["status"] == "canceled":
        raise invalid(f"Subscription {sub_id} has already been canceled.", None)
    details = p.opt_dict(params, "cancellation_details") or {}
    comment = p.opt_str(details, "comment", "cancellation_details")
    feedback = p.opt_str(details, "feedback", "cancellation_details")
    sub["cancellation_details"].update(comment=comment, feedback=feedback)
    sub["canceled_at"] = None  # an immediate cancel is dated now, not at an earlier request
    cancel_now(store, sub)
    return sub


def list_subscriptions(store: Store, params: p.Params) -> JSON:
    customer = p.opt_str(params, "customer")
    status = p.opt_choice(params, "status", STATUSES)
    price = p.opt_str(params, "price")

    def status_matches(sub: JSON) -> bool:
        if status is None:
            return bool(sub["status"] != "canceled")
        if status == "ended":
            return sub["status"] in ("canceled", "incomplete_expired")
        return status == "all" or sub["status"] == status

    subs = [
        s
        for s in store.subscriptions.values()
        if (customer is None or s["customer"] == customer)
        and status_matches(s)
        and (price is None or any(i["price"]["id"] == price for i in s["items"]["data"]))
    ]
    return paginate("/v1/subscriptions", subs, params)


def retrieve_invoice(store: Store, invoice_id: str) -> JSON:
    return store.get(store.invoices, invoice_id, "invoice")


def list_invoices(store: Store, params: p.Params) -> JSON:
    customer = p.opt_str(params, "customer")
    subscription = p.opt_str(params, "subscription")
    status = p.opt_choice(params, "status", ("draft", "open", "paid", "uncollectible", "void"))
    invoices = [
        inv
        for inv in store.invoices.values()
        if (customer is None or inv["customer"] == customer)
        and (status is None or inv["status"] == status)
        and (
            subscription is None
            or inv["parent"]["subscription_details"]["subscription"] == subscription
        )
    ]
    return paginate("/v1/invoices", invoices, params)


def retrieve_invoice_payment(store: Store, payment_id: str) -> JSON:
    return store.get(store.invoice_payments, payment_id, "invoice_payment")


def list_invoice_payments(store: Store, params: p.Params) -> JSON:
    invoice = p.opt_str(params, "invoice")
    status = p.opt_choice(params, "status", ("canceled", "open", "paid"))
    payment: dict[str, Any] = p.opt_dict(params, "payment") or {}
    intent = p.opt_str(payment, "payment_intent", "payment")
    payments = [
        ip
        for ip in store.invoice_payments.values()
        if (invoice is None or ip["invoice"] == invoice)
        and (status is None or ip["status"] == status)
        and (intent is None or ip["payment"]["payment_intent"] == intent)
    ]
    return paginate("/v1/invoice_payments", payments, params)
