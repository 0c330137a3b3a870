"""Customers: ``/v1/customers``."""

from __future__ import annotations

import secrets

from visiona.emulators.stripe import _billing
from visiona.emulators.stripe import _params as p
from visiona.emulators.stripe._errors import no_such
from visiona.emulators.stripe._store import JSON, Store, paginate, random_id

_UPDATABLE = ("email", "name", "description", "phone")


def new_customer(
    store: Store,
    *,
    email: str | None = None,
    name: str | None = None,
    description: str | None = None,
    phone: str | None = None,
    metadata: dict[str, str] | None = None,
) -> JSON:
    customer: JSON = {
        "id": random_id("cus_", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": store.now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": description,
        "discount": None,
        "email": email,
        "invoice_prefix": secrets.token_hex(4).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": metadata or {},
        "name": name,
        "next_invoice_sequence": 1,
        "phone": phone,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    store.customers[customer["id"]] = customer
    return customer


def create(store: Store, params: p.Params) -> JSON:
    return new_customer(
        store,
        **{key: p.opt_str(params, key) for key in _UPDATABLE},
        metadata=p.new_metadata(params),
    )


def retrieve(store: Store, customer_id: str) -> JSON:
    if customer_id in store.deleted_customers:
        return {"id": customer_id, "object": "customer", "deleted": True}
    return store.customer(customer_id)


def update(store: Store, customer_id: str, params: p.Params) -> JSON:
    customer = store.customer(customer_id)
    for key in _UPDATABLE:
        if key in params:
            # An empty string unsets a field, as in the real API.
            customer[key] = p.opt_str(params, key) or None
    customer["metadata"] = p.merge_metadata(customer["metadata"], p.metadata(params))
    return customer


def delete(store: Store, customer_id: str) -> JSON:
    """Delete a customer for good, as Stripe does: its subscriptions are canceled at once
    (``customer.subscription.deleted`` each), then ``customer.deleted`` carries the last
    snapshot. Afterwards GET answers the deleted stub and a second DELETE is 404."""
    customer = store.customer(customer_id)
    for sub in list(store.subscriptions.values()):
        if sub["customer"] == customer_id and sub["status"] != "canceled":
            _billing.cancel_now(store, sub)
    del store.customers[customer_id]
    store.deleted_customers.add(customer_id)
    store.emit("customer.deleted", customer)
    return {"id": customer_id, "object": "customer", "deleted": True}


def list_customers(store: Store, params: p.Params) -> JSON:
    email = p.opt_str(params, "email")
    customers = [c for c in store.customers.values() if email is None or c["email"] == email]
    return paginate("/v1/customers", customers, params)


def existing(store: Store, customer_id: str, param: str) -> JSON:
    """A customer named by a parameter of another call (400 when missing or deleted)."""
    customer = store.customers.get(customer_id)
    if customer is None:
        raise no_such("customer", customer_id, param)
    return customer
