"""Products and prices: seeded at start-up or created through ``/v1/products`` and ``/v1/prices``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from visiona.emulators.stripe import _params as p
from visiona.emulators.stripe._errors import invalid, no_such
from visiona.emulators.stripe._store import JSON, Store, paginate, random_id

INTERVALS = ("day", "week", "month", "year")
_SEED_KEYS = frozenset(
    {
        "id",
        "unit_amount",
        "currency",
        "recurring_interval",
        "interval_count",
        "product_name",
        "lookup_key",
    }
)
_CURRENCY = re.compile(r"^[a-z]{3}$")


def _product(store: Store, name: str, *, product_id: str | None = None, **fields: Any) -> JSON:
    now = store.now()
    product: JSON = {
        "id": product_id or random_id("prod_", 14),
        "object": "product",
        "active": True,
        "created": now,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }
    product.update(fields)
    store.products[product["id"]] = product
    return product


def _price(
    store: Store,
    *,
    price_id: str | None,
    product_id: str,
    unit_amount: int,
    currency: str,
    interval: str | None,
    interval_count: int = 1,
    **fields: Any,
) -> JSON:
    recurring = None
    if interval is not None:
        recurring = {
            "interval": interval,
            "interval_count": interval_count,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }
    price: JSON = {
        "id": price_id or random_id("price_"),
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": store.now(),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time" if recurring is None else "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }
    price.update(fields)
    store.prices[price["id"]] = price
    return price


def _same_price(price: JSON, seed: Mapping[str, Any], product_id: str) -> bool:
    recurring = price.get("recurring") or {}
    return (
        price["product"] == product_id
        and price["unit_amount"] == seed["unit_amount"]
        and price["currency"] == seed.get("currency", "usd").lower()
        and recurring.get("interval") == seed.get("recurring_interval")
        and (
            seed.get("recurring_interval") is None
            or recurring.get("interval_count") == seed.get("interval_count", 1)
        )
        and price.get("lookup_key") == seed.get("lookup_key")
    )


def seed_prices(store: Store, seeds: Iterable[Mapping[str, Any]]) -> list[JSON]:
    """Create (or replace) prices from seed dicts; they survive ``reset``.

    Raises ``ValueError`` naming the bad seed. Seeds with the same ``product_name`` share one
    product.
    """
    validated = [_validate_seed(i, seed) for i, seed in enumerate(seeds)]
    created = []
    for seed in validated:
        name = seed.get("product_name") or seed["id"]
        product = next(
            (
                prod
                for prod_id, prod in store.products.items()
                if prod_id in store.seeded and prod["name"] == name
            ),
            None,
        ) or _product(store, name)
        existing = store.prices.get(seed["id"])
        if existing is not None and _same_price(existing, seed, product["id"]):
            # Seeded by a previous run of a persistent emulator: Stripe's price, unchanged.
            store.seeded.update((product["id"], existing["id"]))
            created.append(existing)
            continue
        price = _price(
            store,
            price_id=seed["id"],
            product_id=product["id"],
            unit_amount=seed["unit_amount"],
            currency=seed.get("currency", "usd").lower(),
            interval=seed.get("recurring_interval"),
            interval_count=seed.get("interval_count", 1),
            lookup_key=seed.get("lookup_key"),
        )
        store.seeded.update((product["id"], price["id"]))
        created.append(price)
    return created


def _validate_seed(index: int, seed: Mapping[str, Any]) -> Mapping[str, Any]:
    where = f"prices[{index}]"
    if not isinstance(seed, Mapping):
        raise ValueError(f"{where}: must be an object")
    unknown = set(seed) - _SEED_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    if not isinstance(seed.get("id"), str) or not seed["id"]:
        raise ValueError(f"{where}.id: a non-empty string is required")
    amount = seed.get("unit_amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValueError(f"{where}.unit_amount: a non-negative integer is required")
    currency = seed.get("currency", "usd")
    if not isinstance(currency, str) or not _CURRENCY.match(currency.lower()):
        raise ValueError(f"{where}.currency: a three-letter ISO code is required")
    if seed.get("recurring_interval") not in (None, *INTERVALS):
        raise ValueError(f"{where}.recurring_interval: one of null, {', '.join(INTERVALS)}")
    count = seed.get("interval_count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"{where}.interval_count: a positive integer is required")
    for key in ("product_name", "lookup_key"):
        if seed.get(key) is not None and not isinstance(seed[key], str):
            raise ValueError(f"{where}.{key}: must be a string")
    return seed


def create_product(store: Store, params: p.Params) -> JSON:
    product_id = p.opt_str(params, "id")
    if product_id is not None and product_id in store.products:
        raise invalid(f"Product already exists: '{product_id}'", "id", "resource_already_exists")
    return _product(
        store,
        p.req_str(params, "name"),
        product_id=product_id,
        active=p.opt_bool(params, "active") is not False,
        description=p.opt_str(params, "description"),
        metadata=p.new_metadata(params),
    )


def retrieve_product(store: Store, product_id: str) -> JSON:
    return store.get(store.products, product_id, "product")


def create_price(store: Store, params: p.Params) -> JSON:
    currency = p.req_str(params, "currency").lower()
    if not _CURRENCY.match(currency):
        raise invalid(f"Invalid currency: {currency}", "currency")
    unit_amount = p.opt_int(params, "unit_amount", minimum=0)
    if unit_amount is None:
        decimal = p.opt_str(params, "unit_amount_decimal")
        if decimal is None or not decimal.isdigit():
            raise invalid(
                "You must pass either `unit_amount` or `unit_amount_decimal`.", "unit_amount"
            )
        unit_amount = int(decimal)
    product_id = p.opt_str(params, "product")
    product_data = p.opt_dict(params, "product_data")
    if product_id is not None and product_data is not None:
        raise invalid("You may only specify one of these parameters: product, product_data.")
    if product_id is not None:
        store.get(store.products, product_id, "product", "product")
    elif product_data is not None:
        product_id = _product(
            store,
            p.req_str(product_data, "name", "product_data"),
            metadata=p.new_metadata(product_data, prefix="product_data"),
        )["id"]
    else:
        raise invalid("You must specify either `product` or `product_data`.", "product")
    interval, count = None, 1
    recurring = p.opt_dict(params, "recurring")
    if recurring is not None:
        interval = p.opt_choice(recurring, "interval", INTERVALS, "recurring")
        if interval is None:
            raise invalid("Missing required param: recurring[interval].", "recurring[interval]")
        count = p.opt_int(recurring, "interval_count", "recurring", minimum=1) or 1
    lookup_key = p.opt_str(params, "lookup_key")
    if lookup_key is not None and any(
        pr["lookup_key"] == lookup_key for pr in store.prices.values()
    ):
        raise invalid(f"A price (`{lookup_key}`) already uses that lookup key.", "lookup_key")
    return _price(
        store,
        price_id=None,
        product_id=product_id,
        unit_amount=unit_amount,
        currency=currency,
        interval=interval,
        interval_count=count,
        active=p.opt_bool(params, "active") is not False,
        lookup_key=lookup_key,
        metadata=p.new_metadata(params),
        nickname=p.opt_str(params, "nickname"),
    )


def retrieve_price(store: Store, price_id: str) -> JSON:
    return store.get(store.prices, price_id, "price")


def list_prices(store: Store, params: p.Params) -> JSON:
    prices = list(store.prices.values())
    active = p.opt_bool(params, "active")
    product = p.opt_str(params, "product")
    currency = p.opt_str(params, "currency")
    price_type = p.opt_choice(params, "type", ("one_time", "recurring"))
    lookup_keys = p.opt_list(params, "lookup_keys")
    prices = [
        pr
        for pr in prices
        if (active is None or pr["active"] == active)
        and (product is None or pr["product"] == product)
        and (currency is None or pr["currency"] == currency.lower())
        and (price_type is None or pr["type"] == price_type)
        and (lookup_keys is None or pr["lookup_key"] in lookup_keys)
    ]
    return paginate("/v1/prices", prices, params)


def lookup_price(store: Store, price_id: str, param: str) -> JSON:
    price = store.prices.get(price_id)
    if price is None:
        raise no_such("price", price_id, param)
    if not price["active"]:
        raise invalid(f"The price specified is inactive: '{price_id}'", param)
    return price
