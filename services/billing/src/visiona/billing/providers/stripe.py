"""Stripe: billing's port to it, and the adapter on the official SDK (StripeClient). The only
module of billing that imports ``stripe``.

Objects come back as plain dicts (``StripeObject.to_dict()``) so the rest of billing does not
depend on the SDK's types (:func:`field`, :func:`object_id`, :func:`timestamp` read them), and
errors as domain errors, class by class (:func:`domain_error`): Stripe's 4xx are not outages.
Webhook signatures are checked with the SDK's own verifier against the current secret and,
during a rotation, the previous one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import stripe

from visiona.billing.config import BillingSettings
from visiona.kit import errors, metrics
from visiona.kit.logging import get_logger

log = get_logger(__name__)

StripeObj = dict[str, Any]


def field(obj: Any, *path: str) -> Any:
    """The value at ``path`` in a Stripe object, or None where any step is missing."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def object_id(value: Any) -> str | None:
    """An expandable field: an id, or the expanded object's id."""
    if isinstance(value, dict):
        return str(value.get("id")) if value.get("id") else None
    return str(value) if value else None


def invoice_price(invoice: StripeObj) -> str | None:
    """The price of an invoice's first line (2025 shape ``pricing.price_details``, or ``price``)."""
    for line in field(invoice, "lines", "data") or []:
        price = field(line, "pricing", "price_details", "price") or object_id(line.get("price"))
        if price:
            return str(price)
    return None


class CustomerMissing(errors.FailedPrecondition):
    """A call named a customer Stripe does not have (deleted in the dashboard, made with the
    other mode's keys, or never there: a restored backup). Billing replaces it and tries again
    (``BillingService``); only if that fails does the caller see it."""

    code = "stripe_customer_missing"


def domain_error(exc: stripe.StripeError) -> errors.DomainError:
    """What a Stripe error means for the caller, decided class by class (stripe-python's
    ``_api_requestor.specific_v1_api_error``): a request Stripe refused is not an outage, so
    only connection failures, 5xx and 409s (which the SDK has already retried) are
    UNAVAILABLE. Messages are ours: Stripe's may echo customer data."""
    if isinstance(exc, stripe.IdempotencyError):
        # Our key follows from the caller's Idempotency-Key (ADR 0009): Stripe saw it with
        # other parameters, so the caller reused it for another request.
        return errors.InvalidArgument(
            "this Idempotency-Key was used for a different request",
            code="idempotency_key_reused",
        )
    if isinstance(exc, stripe.InvalidRequestError):
        if exc.http_status == 404:
            # The object the URL names (GET /v1/customers/cus_…): the caller decides.
            return errors.NotFound("no such Stripe object", code="stripe_object_missing")
        if exc.code == "resource_missing" and exc.param == "customer":
            return CustomerMissing("the payment provider no longer has this billing account")
        if exc.code == "resource_missing":
            # A price or product of the catalogue that this Stripe account does not have.
            return errors.FailedPrecondition(
                "the payment provider does not know this item: the catalogue and the Stripe "
                "account disagree",
                code="stripe_catalog_mismatch",
            )
        return errors.FailedPrecondition(
            "the payment provider refused the request", code="stripe_request_refused"
        )
    if isinstance(exc, stripe.CardError):
        return errors.FailedPrecondition("the payment was declined", code="payment_declined")
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        # Our key is wrong, revoked or restricted: no retry helps until an operator acts.
        return errors.FailedPrecondition(
            "payments are not available: the payment provider refused our credentials",
            code="stripe_not_configured",
        )
    if isinstance(exc, stripe.RateLimitError):
        return errors.ResourceExhausted(
            "the payment provider is rate limiting us; try again in a minute",
            code="stripe_rate_limited",
        )
    if isinstance(exc, stripe.APIConnectionError | stripe.APIError):
        return errors.Unavailable("payment provider unavailable", code="stripe_unavailable")
    # Any other class (stripe-python adds them for new APIs) by its status.
    status = exc.http_status
    if status is not None and 400 <= status < 500:
        return errors.FailedPrecondition(
            "the payment provider refused the request", code="stripe_request_refused"
        )
    return errors.Unavailable("payment provider unavailable", code="stripe_unavailable")


class StripePort(Protocol):
    async def create_customer(self, user_id: str, *, replacing: str | None = None) -> StripeObj:
        """The user's customer, created once per ``replacing`` (None: their first one; else
        the id of the customer Stripe lost): a retry or a concurrent twin gets the same one."""
        ...

    async def create_checkout_session(self, params: dict[str, Any], key: str) -> StripeObj: ...

    async def create_portal_session(self, customer: str, return_url: str) -> StripeObj: ...

    async def checkout_session(self, session_id: str) -> StripeObj: ...

    async def customer(self, customer_id: str) -> StripeObj:
        """The customer, or the stub ``{"id", "object", "deleted": true}`` of a deleted one."""
        ...

    async def subscription(self, subscription_id: str) -> StripeObj: ...

    async def invoice(self, invoice_id: str) -> StripeObj: ...

    async def charge(self, charge_id: str) -> StripeObj: ...

    async def invoice_payment_intent(self, invoice_id: str) -> str | None: ...

    async def delete_customer(self, customer_id: str) -> None:
        """Delete the customer at Stripe for good (its subscriptions end at once); errors.NotFound
        when it is already gone."""
        ...


class WebhookVerifier:
    """Checks ``Stripe-Signature`` on the raw body; returns the parsed event."""

    def __init__(self, secrets: Sequence[str], tolerance_s: int) -> None:
        self.secrets = [s for s in secrets if s]
        self.tolerance_s = tolerance_s

    def verify(self, payload: bytes, signature: str) -> StripeObj:
        if not self.secrets:
            raise errors.Unavailable(
                "stripe webhooks are not configured", code="webhooks_not_configured"
            )
        if not signature:
            raise errors.InvalidArgument(
                "missing Stripe-Signature header", code="signature_missing"
            )
        try:
            # Stripe signs the UTF-8 text of the body; anything else cannot be one of its events.
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise errors.InvalidArgument(
                "webhook body is not UTF-8", code="payload_invalid"
            ) from None
        # The signature first, the age second (the SDK checks both at once and says which
        # only in prose): a stale delivery is told apart from a forged one.
        for secret in self.secrets:
            try:
                stripe.WebhookSignature.verify_header(text, signature, secret, tolerance=None)
            except stripe.SignatureVerificationError:
                continue
            break
        else:
            raise errors.InvalidArgument(
                "webhook signature does not verify", code="signature_invalid"
            )
        try:
            stripe.WebhookSignature.verify_header(text, signature, secret, self.tolerance_s)
        except stripe.SignatureVerificationError:
            raise errors.InvalidArgument(
                f"webhook too old: signed more than {self.tolerance_s} s ago (a replay, or "
                "this server's clock is ahead)",
                code="timestamp_too_old",
            ) from None
        try:
            event = json.loads(text)
        except ValueError:
            raise errors.InvalidArgument(
                "webhook body is not JSON", code="payload_invalid"
            ) from None
        if (
            not isinstance(event, dict)
            or event.get("object") != "event"
            or not isinstance(event.get("id"), str)
            or not isinstance(event.get("type"), str)
        ):
            raise errors.InvalidArgument(
                "webhook body is not a Stripe event", code="payload_invalid"
            )
        return event


def _plain(obj: Any) -> StripeObj:
    return dict(obj.to_dict())


class StripeSdk:
    """The adapter. One client per process; the SDK retries network failures itself."""

    def __init__(self, settings: BillingSettings) -> None:
        base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self.client = stripe.StripeClient(
            settings.stripe_api_key.get_secret_value() or "sk_unset",
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=settings.stripe_max_network_retries,
            http_client=stripe.HTTPXClient(timeout=20),
        )

    async def _call(self, what: str, coro: Any) -> StripeObj:
        """The call ``what`` (a fixed name: ``customers.create``), counted and timed."""
        try:
            with metrics.provider_call("stripe", what):
                answer = await coro
            return _plain(answer)
        except stripe.StripeError as exc:
            error = domain_error(exc)
            if not isinstance(error, errors.NotFound | CustomerMissing | errors.InvalidArgument):
                # Type, status and code only: Stripe's messages may echo customer data. Ours
                # (credentials, catalogue) louder than Stripe's own trouble.
                (log.warning if isinstance(error, errors.Unavailable) else log.error)(
                    "stripe.call_failed",
                    call=what,
                    error=type(exc).__name__,
                    status=exc.http_status,
                    stripe_code=exc.code,
                    code=error.code,
                )
            raise error from None

    async def create_customer(self, user_id: str, *, replacing: str | None = None) -> StripeObj:
        # Retries and concurrent first checkouts of one user make one customer; so do
        # concurrent requests that all found the same customer missing.
        key = f"visiona-customer-{user_id}"
        if replacing:
            key += f"-after-{replacing}"
        return await self._call(
            "customers.create",
            self.client.v1.customers.create_async(
                params={"metadata": {"user_id": user_id}}, options={"idempotency_key": key}
            ),
        )

    async def create_checkout_session(self, params: dict[str, Any], key: str) -> StripeObj:
        return await self._call(
            "checkout.sessions.create",
            self.client.v1.checkout.sessions.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": key},
            ),
        )

    async def create_portal_session(self, customer: str, return_url: str) -> StripeObj:
        return await self._call(
            "billing_portal.sessions.create",
            self.client.v1.billing_portal.sessions.create_async(
                params={"customer": customer, "return_url": return_url}
            ),
        )

    async def checkout_session(self, session_id: str) -> StripeObj:
        return await self._call(
            "checkout.sessions.retrieve",
            self.client.v1.checkout.sessions.retrieve_async(session_id),
        )

    async def customer(self, customer_id: str) -> StripeObj:
        return await self._call(
            "customers.retrieve", self.client.v1.customers.retrieve_async(customer_id)
        )

    async def subscription(self, subscription_id: str) -> StripeObj:
        return await self._call(
            "subscriptions.retrieve", self.client.v1.subscriptions.retrieve_async(subscription_id)
        )

    async def invoice(self, invoice_id: str) -> StripeObj:
        return await self._call(
            "invoices.retrieve", self.client.v1.invoices.retrieve_async(invoice_id)
        )

    async def charge(self, charge_id: str) -> StripeObj:
        return await self._call(
            "charges.retrieve", self.client.v1.charges.retrieve_async(charge_id)
        )

    async def invoice_payment_intent(self, invoice_id: str) -> str | None:
        page = await self._call(
            "invoice_payments.list",
            self.client.v1.invoice_payments.list_async(params={"invoice": invoice_id}),
        )
        for item in page.get("data", []):
            payment = item.get("payment") or {}
            if item.get("status") == "paid" and payment.get("payment_intent"):
                return str(payment["payment_intent"])
        return None

    async def delete_customer(self, customer_id: str) -> None:
        await self._call("customers.delete", self.client.v1.customers.delete_async(customer_id))
