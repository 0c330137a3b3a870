"""The ``/v1`` API: routing table, authentication, form decoding, idempotency and ``expand``."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import stripe
import stripe.params as sp
from fastapi import FastAPI, Request, Response
from stripe.params import billing_portal as sp_portal
from stripe.params import checkout as sp_checkout

from visiona.emulators.stripe import (
    _billing,
    _catalog,
    _checkout,
    _customers,
    _payments,
    _portal,
)
from visiona.emulators.stripe import _params as p
from visiona.emulators.stripe._errors import StripeError, invalid
from visiona.emulators.stripe._form import FormError, decode_form
from visiona.emulators.stripe._store import (
    API_VERSION,
    JSON,
    REQUEST_CONTEXT,
    Store,
    paginate,
    random_id,
)

log = logging.getLogger(__name__)

_REQUEST_OPTIONS = frozenset(
    stripe.RequestOptions.__required_keys__ | stripe.RequestOptions.__optional_keys__
)


def _accepts(params_type: Any) -> frozenset[str]:
    """Top-level parameter names of an SDK params TypedDict: the real API's, by definition."""
    keys: frozenset[str] = params_type.__required_keys__ | params_type.__optional_keys__
    return keys - _REQUEST_OPTIONS


@dataclass(frozen=True)
class Call:
    """One decoded API call: its parameters, the object id in its path, the public base URL."""

    params: p.Params
    id: str
    public_url: str


Handler = Callable[[Store, Call], JSON]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    accepts: frozenset[str]


def _list_events(store: Store, params: p.Params) -> JSON:
    event_type = p.opt_str(params, "type")
    types = p.opt_list(params, "types")
    if event_type is not None and types is not None:
        raise invalid("You may only specify one of these parameters: type, types.")
    patterns = [event_type] if event_type is not None else types
    events = [
        e
        for e in store.events.values()
        if patterns is None or any(fnmatchcase(e["type"], str(pat)) for pat in patterns)
    ]
    return paginate("/v1/events", events, params)


def _retrieve_event(store: Store, event_id: str) -> JSON:
    return store.get(store.events, event_id, "event")


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/v1/customers",
        lambda s, c: _customers.create(s, c.params),
        _accepts(sp.CustomerCreateParams),
    ),
    Endpoint(
        "GET",
        "/v1/customers",
        lambda s, c: _customers.list_customers(s, c.params),
        _accepts(sp.CustomerListParams),
    ),
    Endpoint(
        "GET",
        "/v1/customers/{id}",
        lambda s, c: _customers.retrieve(s, c.id),
        _accepts(sp.CustomerRetrieveParams),
    ),
    Endpoint(
        "POST",
        "/v1/customers/{id}",
        lambda s, c: _customers.update(s, c.id, c.params),
        _accepts(sp.CustomerUpdateParams),
    ),
    Endpoint(
        "DELETE",
        "/v1/customers/{id}",
        lambda s, c: _customers.delete(s, c.id),
        _accepts(sp.CustomerDeleteParams),
    ),
    Endpoint(
        "POST",
        "/v1/products",
        lambda s, c: _catalog.create_product(s, c.params),
        _accepts(sp.ProductCreateParams),
    ),
    Endpoint(
        "GET",
        "/v1/products/{id}",
        lambda s, c: _catalog.retrieve_product(s, c.id),
        _accepts(sp.ProductRetrieveParams),
    ),
    Endpoint(
        "POST",
        "/v1/prices",
        lambda s, c: _catalog.create_price(s, c.params),
        _accepts(sp.PriceCreateParams),
    ),
    Endpoint(
        "GET",
        "/v1/prices",
        lambda s, c: _catalog.list_prices(s, c.params),
        _accepts(sp.PriceListParams),
    ),
    Endpoint(
        "GET",
        "/v1/prices/{id}",
        lambda s, c: _catalog.retrieve_price(s, c.id),
        _accepts(sp.PriceRetrieveParams),
    ),
    Endpoint(
        "POST",
        "/v1/checkout/sessions",
        lambda s, c: _checkout.create(s, c.params, c.public_url),
        _accepts(sp_checkout.SessionCreateParams),
    ),
    Endpoint(
        "GET",
        "/v1/checkout/sessions",
        lambda s, c: _checkout.list_sessions(s, c.params),
        _accepts(sp_checkout.SessionListParams),
    ),
    Endpoint(
        "GET",
        "/v1/checkout/sessions/{id}",
        lambda s, c: _checkout.retrieve(s, c.id),
        _accepts(sp_checkout.SessionRetrieveParams),
    ),
    Endpoint(
        "GET",
        "/v1/checkout/sessions/{id}/line_items",
        lambda s, c: _checkout.line_items(s, c.id, c.params),
        _accepts(sp_checkout.SessionListLineItemsParams),
    ),
    Endpoint(
        "POST",
        "/v1/checkout/sessions/{id}/expire",
        lambda s, c: _checkout.expire(s, c.id),
        _accepts(sp_checkout.SessionExpireParams),
    ),
    Endpoint(
        "GET",
        "/v1/payment_intents/{id}",
        lambda s, c: _payments.retrieve_payment_intent(s, c.id),
        _accepts(sp.PaymentIntentRetrieveParams),
    ),
    Endpoint(
        "GET",
        "/v1/charges/{id}",
        lambda s, c: _payments.retrieve_charge(s, c.id),
        _accepts(sp.ChargeRetrieveParams),
    ),
    Endpoint(
        "POST",
        "/v1/refunds",
        lambda s, c: _payments.create_refund(s, c.params),
        _accepts(sp.RefundCreateParams),
    ),
    Endpoint(
        "GET",
        "/v1/refunds/{id}",
        lambda s, c: _payments.retrieve_refund(s, c.id),
        _accepts(sp.RefundRetrieveParams),
    ),
    Endpoint(
        "GET",
        "/v1/subscriptions",
        lambda s, c: _billing.list_subscriptions(s, c.params),
        _accepts(sp.SubscriptionListParams),
    ),
    Endpoint(
        "GET",
        "/v1/subscriptions/{id}",
        lambda s, c: _billing.retrieve(s, c.id),
        _accepts(sp.SubscriptionRetrieveParams),
    ),
    Endpoint(
        "POST",
        "/v1/subscriptions/{id}",
        lambda s, c: _billing.update(s, c.id, c.params),
        _accepts(sp.SubscriptionUpdateParams),
    ),
    Endpoint(
        "DELETE",
        "/v1/subscriptions/{id}",
        lambda s, c: _billing.cancel(s, c.id, c.params),
        _accepts(sp.SubscriptionCancelParams),
    ),
    Endpoint(
        "GET",
        "/v1/invoices",
        lambda s, c: _billing.list_invoices(s, c.params),
        _accepts(sp.InvoiceListParams),
    ),
    Endpoint(
        "GET",
        "/v1/invoices/{id}",
        lambda s, c: _billing.retrieve_invoice(s, c.id),
        _accepts(sp.InvoiceRetrieveParams),
    ),
    Endpoint(
        "GET",
        "/v1/invoice_payments",
        lambda s, c: _billing.list_invoice_payments(s, c.params),
        _accepts(sp.InvoicePaymentListParams),
    ),
    Endpoint(
        "GET",
        "/v1/invoice_payments/{id}",
        lambda s, c: _billing.retrieve_invoice_payment(s, c.id),
        _accepts(sp.InvoicePaymentRetrieveParams),
    ),
    Endpoint(
        "GET",
        "/v1/events",
        lambda s, c: _list_events(s, c.params),
        _accepts(sp.EventListParams),
    ),
    Endpoint(
        "GET",
        "/v1/events/{id}",
        lambda s, c: _retrieve_event(s, c.id),
        _accepts(sp.EventRetrieveParams),
    ),
    Endpoint(
        "POST",
        "/v1/billing_portal/sessions",
        lambda s, c: _portal.create(s, c.params, c.public_url),
        _accepts(sp_portal.SessionCreateParams),
    ),
)


@dataclass
class Faults:
    """Switches for every ``/v1`` call (``POST /_emulator/config``): answer after
    ``latency_ms``, and with ``fail_status`` (Stripe's error shape) instead of the result."""

    latency_ms: int = 0
    fail_status: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"latency_ms": self.latency_ms, "fail_status": self.fail_status}

    def error(self) -> StripeError | None:
        if self.fail_status is None:
            return None
        if self.fail_status == 429:
            return StripeError(429, "Too many requests in a period of time.", code="rate_limit")
        error_type = "api_error" if self.fail_status >= 500 else "invalid_request_error"
        return StripeError(self.fail_status, "Injected failure (Stripe emulator).", type=error_type)


# Stripe keeps idempotent results for 24 hours.
IDEMPOTENCY_TTL_S = 24 * 3600


@dataclass(frozen=True)
class _Stored:
    fingerprint: str
    status: int
    body: bytes
    headers: dict[str, str]
    at: float


@dataclass
class Idempotency:
    """Stored results per (API key, Idempotency-Key).

    Requests carrying a key check, execute and store under one lock, so concurrent requests
    with the same key run one after the other and the later ones replay the first. Handlers
    do not await, so a single lock costs no concurrency and, unlike one lock per key, does
    not grow with every key the SDK generates.
    """

    results: dict[tuple[str, str], _Stored] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def get(self, scope: tuple[str, str]) -> _Stored | None:
        return self.results.get(scope)

    def put(self, scope: tuple[str, str], stored: _Stored) -> None:
        cutoff = stored.at - IDEMPOTENCY_TTL_S
        # Insertion order is time order: drop expired results from the front.
        for old_scope, old in list(self.results.items()):
            if old.at >= cutoff:
                break
            del self.results[old_scope]
        self.results[scope] = stored

    def clear(self) -> None:
        self.results.clear()


def error_response(err: StripeError, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(err.body()),
        status_code=err.status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    return None


def _auth_error(key: str | None) -> StripeError:
    if not key:
        return StripeError(
            401,
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY').",
        )
    masked = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "****"
    return StripeError(401, f"Invalid API Key provided: {masked}")


def _cacheable(response: Response) -> bool:
    """Stripe saves a result only once the endpoint ran: not for parameter validation errors."""
    if response.status_code < 400:
        return True
    error_type = json.loads(bytes(response.body)).get("error", {}).get("type")
    return error_type not in ("invalid_request_error", "idempotency_error")


def mount(
    app: FastAPI,
    store: Store,
    *,
    api_key: str,
    public_url: str | None,
    idempotency: Idempotency,
    faults: Faults | None = None,
) -> None:
    """Add every ``ENDPOINTS`` route to ``app``."""
    faults = faults or Faults()

    def execute(
        ep: Endpoint, request: Request, params: p.Params, headers: dict[str, str]
    ) -> Response:
        try:
            unknown = sorted(set(params) - ep.accepts)
            if unknown:
                raise p.unknown_parameter(unknown[0])
            expand = p.opt_list(params, "expand") or []
            if not all(isinstance(e, str) for e in expand):
                raise invalid("Invalid array", "expand")
            base = public_url or str(request.base_url).rstrip("/")
            call = Call(params, str(request.path_params.get("id", "")), base)
            token = REQUEST_CONTEXT.set((headers["Request-Id"], headers.get("Idempotency-Key")))
            try:
                result = ep.handler(store, call)
            finally:
                REQUEST_CONTEXT.reset(token)
            if expand:
                result = store.expand(result, expand)
        except StripeError as err:
            return error_response(err, headers)
        except Exception:
            log.exception("%s %s failed", ep.method, request.url.path)
            internal = StripeError(
                500, "An unexpected error occurred in the Stripe emulator.", type="api_error"
            )
            return error_response(internal, headers)
        return Response(json.dumps(result), media_type="application/json", headers=headers)

    def endpoint_for(ep: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            headers = {"Request-Id": random_id("req_", 14), "Stripe-Version": API_VERSION}
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            injected = faults.error()
            if injected is not None:
                return error_response(injected, headers)
            key = _presented_key(request)
            if key != api_key:
                return error_response(_auth_error(key), headers)
            try:
                params = decode_form(request.url.query)
                if ep.method == "POST":
                    params.update(decode_form(await request.body()))
            except FormError as exc:
                return error_response(invalid(str(exc)), headers)
            idempotency_key = request.headers.get("idempotency-key")
            if ep.method != "POST" or not idempotency_key:
                return execute(ep, request, params, headers)
            if len(idempotency_key) > 255:
                return error_response(
                    invalid("Idempotency-Key must be at most 255 characters long."), headers
                )
            headers["Idempotency-Key"] = idempotency_key
            scope = (api_key, idempotency_key)
            fingerprint = json.dumps([ep.method, request.url.path, params], sort_keys=True)
            async with idempotency.lock:
                stored = idempotency.get(scope)
                if stored is not None:
                    if stored.fingerprint != fingerprint:
                        return error_response(
                            StripeError(
                                400,
                                "Keys for idempotent requests can only be used with the same "
                                "parameters they were first used with. Try using a key other "
                                f"than '{idempotency_key}' if you meant to execute a different "
                                "request.",
                                type="idempotency_error",
                            ),
                            headers,
                        )
                    return Response(
                        stored.body,
                        status_code=stored.status,
                        media_type="application/json",
                        headers={**stored.headers, "Idempotent-Replayed": "true"},
                    )
                response = execute(ep, request, params, headers)
                if _cacheable(response):
                    idempotency.put(
                        scope,
                        _Stored(
                            fingerprint,
                            response.status_code,
                            bytes(response.body),
                            headers,
                            time.time(),
                        ),
                    )
                return response

        return endpoint

    for ep in ENDPOINTS:
        app.add_api_route(ep.path, endpoint_for(ep), methods=[ep.method])
