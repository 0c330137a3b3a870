"""The Stripe emulator, driven through the real `stripe` SDK over real HTTP."""

# Every URL here is a local emulator's or receiver's own http:// address.
# ruff: noqa: S310

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import stripe
from fastapi import FastAPI, Request, Response

from tests.support.waiting import wait_for
from visiona.emulators import stripe as emulator
from visiona.emulators.__main__ import main as cli_main
from visiona.emulators._server import running
from visiona.emulators.stripe import (
    API_VERSION,
    DEFAULT_API_KEY,
    DEFAULT_WEBHOOK_SECRET,
    FormError,
    Settings,
    create_app,
    decode_form,
)

# The SDK's HTTPXClient posts its form body as `data=<str>`, which httpx deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

PRICES = [
    {
        "id": "price_credits_100",
        "unit_amount": 900,
        "currency": "usd",
        "recurring_interval": None,
        "product_name": "100 credits",
    },
    {
        "id": "price_pro_monthly",
        "unit_amount": 1900,
        "currency": "usd",
        "recurring_interval": "month",
        "product_name": "Pro",
    },
]
SUCCESS_URL = "https://app.example/billing/done?session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://app.example/billing"
FAST_RETRIES = [0.05, 0.05, 0.05]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


@dataclass
class Reply:
    status: int
    headers: Any
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def call(
    base: str,
    path: str,
    body: Any = None,
    *,
    method: str | None = None,
    headers: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Reply:
    """Plain HTTP; never follows redirects, returns 4xx/5xx answers too."""
    data = None
    hdrs = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs.setdefault("content-type", "application/x-www-form-urlencoded")
    elif body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("content-type", "application/json")
    req = urllib.request.Request(base + path, data=data, headers=hdrs, method=method)
    try:
        with _opener.open(req, timeout=10) as resp:
            return Reply(resp.status, resp.headers, resp.read().decode())
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.headers, err.read().decode())


JSON_ACCEPT = {"accept": "application/json"}


def as_dict(obj: Any) -> dict[str, Any]:
    """A StripeObject (metadata and the like) as a plain dict."""
    return {} if obj is None else dict(obj.to_dict())


@dataclass
class Receiver:
    """A webhook endpoint that fails its first ``fail_next`` calls with 500."""

    events: list[tuple[bytes, str]] = field(default_factory=list)
    fail_next: int = 0
    calls: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            self.calls += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return Response(status_code=500)
            body = await request.body()
            self.events.append((body, request.headers.get("stripe-signature", "")))
            return Response(status_code=200)

        return app

    def verified(self) -> list[stripe.Event]:
        return [
            stripe.Webhook.construct_event(body, sig, DEFAULT_WEBHOOK_SECRET)
            for body, sig in list(self.events)
        ]

    def wait_for(self, event_type: str, count: int = 1, timeout_s: float = 5.0) -> list[Any]:
        return wait_for(
            f"{count} {event_type} webhook(s)",
            lambda: [e for e in self.verified() if e.type == event_type],
            lambda found: len(found) >= count,
            timeout_s,
        )

    def types(self) -> list[str]:
        return [json.loads(body)["type"] for body, _ in list(self.events)]


def pending(base_url: str) -> int:
    return int(call(base_url, "/_emulator/deliveries/pending").json()["pending"])


def wait_until_delivered(base_url: str, timeout_s: float = 5.0) -> None:
    """Until the emulator has nothing left to send (every event delivered or given up on)."""
    wait_for("no webhook pending", lambda: pending(base_url), lambda n: n == 0, timeout_s)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    with running(rec.app()) as url:
        yield rec, url + "/hook"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running(create_app(Settings(prices=PRICES))) as url:
        yield url


@pytest.fixture(autouse=True)
def rec(base_url: str, receiver: tuple[Receiver, str]) -> Receiver:
    """A fresh emulator state per test, delivering webhooks to the receiver, fast retries."""
    rec, hook_url = receiver
    assert call(base_url, "/_emulator/reset", {}).status == 200
    config = {
        "webhook_url": hook_url,
        "retry_delays_s": FAST_RETRIES,
        "paused": False,
        "latency_ms": 0,
        "fail_status": None,
    }
    assert call(base_url, "/_emulator/config", config).status == 200
    rec.events.clear()
    rec.fail_next = rec.calls = 0
    return rec


@pytest.fixture(scope="module")
def client(base_url: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        DEFAULT_API_KEY,
        base_addresses={"api": base_url},
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
        max_network_retries=0,
    )


@pytest.fixture
def customer(client: stripe.StripeClient) -> Any:
    return client.v1.customers.create({"email": "ada@example.com"})


def new_checkout(client: stripe.StripeClient, mode: str = "payment", **extra: Any) -> Any:
    price = "price_credits_100" if mode == "payment" else "price_pro_monthly"
    params: dict[str, Any] = {
        "mode": mode,
        "line_items": [{"price": price, "quantity": 1}],
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        **extra,
    }
    return client.v1.checkout.sessions.create(params)  # type: ignore[arg-type]


def pay(base_url: str, session_id: str, outcome: str = "paid") -> Reply:
    return call(base_url, f"/checkout/{session_id}/pay", {"outcome": outcome}, headers=JSON_ACCEPT)


def subscribe(client: stripe.StripeClient, base_url: str, **extra: Any) -> Any:
    customer = client.v1.customers.create({"email": "ada@example.com"})
    session = new_checkout(client, "subscription", customer=customer.id, **extra)
    assert pay(base_url, session.id).status == 200
    session = client.v1.checkout.sessions.retrieve(session.id)
    return client.v1.subscriptions.retrieve(str(session.subscription))


# Decoder -------------------------------------------------------------------------------------


def test_form_decoder_builds_nested_dicts_and_lists() -> None:
    raw = (
        "line_items[0][price]=p1&line_items[0][quantity]=1&line_items[1][price]=p2"
        "&metadata[user_id]=u&metadata[0]=zero&subscription_data[metadata][k]=v"
        "&expand[0]=x&expand[1]=y.z&tags[]=a&tags[]=b&items[][price]=q&items[][price]=r"
        "&empty=&name=A%20B%5B%5D"
    )
    assert decode_form(raw) == {
        "line_items": [{"price": "p1", "quantity": "1"}, {"price": "p2"}],
        "metadata": {"user_id": "u", "0": "zero"},
        "subscription_data": {"metadata": {"k": "v"}},
        "expand": ["x", "y.z"],
        "tags": ["a", "b"],
        "items": [{"price": "q"}, {"price": "r"}],
        "empty": "",
        "name": "A B[]",
    }
    assert decode_form(b"") == {}
    with pytest.raises(FormError):
        decode_form("a=1&a[b]=2")
    with pytest.raises(FormError):
        decode_form("a[b]=1&a=2")


def test_events_carry_the_api_version_the_sdk_pins() -> None:
    assert stripe.api_version == API_VERSION


# Auth, customers, idempotency, errors -------------------------------------------------------


def test_wrong_api_key_is_authentication_error(base_url: str) -> None:
    bad = stripe.StripeClient(
        "sk_test_wrong_key_123456",
        base_addresses={"api": base_url},
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
    )
    with pytest.raises(stripe.AuthenticationError) as info:
        bad.v1.customers.create({"email": "x@example.com"})
    assert info.value.http_status == 401
    assert "Invalid API Key provided" in str(info.value.user_message)
    reply = call(base_url, "/v1/customers/cus_x")
    assert reply.status == 401 and reply.json()["error"]["type"] == "invalid_request_error"


def test_customer_create_retrieve_update_delete(client: stripe.StripeClient) -> None:
    created = client.v1.customers.create(
        {"email": "ada@example.com", "name": "Ada", "metadata": {"user_id": "u1", "plan": "x"}}
    )
    assert re.fullmatch(r"cus_[A-Za-z0-9]{14}", created.id)
    assert created.livemode is False and created.created > 0
    fetched = client.v1.customers.retrieve(created.id)
    assert (fetched.email, fetched.name) == ("ada@example.com", "Ada")
    updated = client.v1.customers.update(
        created.id, {"name": "Ada L.", "metadata": {"plan": "", "team": "t1"}}
    )
    assert updated.name == "Ada L."
    assert as_dict(updated.metadata) == {"user_id": "u1", "team": "t1"}
    deleted = client.v1.customers.delete(created.id)
    assert deleted.deleted is True and deleted.id == created.id
    assert client.v1.customers.retrieve(created.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.update(created.id, {"name": "ghost"})
    assert info.value.http_status == 404 and info.value.code == "resource_missing"


def test_unknown_object_is_404_resource_missing(client: stripe.StripeClient, base_url: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.subscriptions.retrieve("sub_nope")
    assert (info.value.http_status, info.value.code, info.value.param) == (
        404,
        "resource_missing",
        "id",
    )
    reply = call(base_url, "/v1/nothing", headers={"authorization": f"Bearer {DEFAULT_API_KEY}"})
    assert reply.status == 404
    assert reply.json()["error"]["message"].startswith("Unrecognized request URL")


def test_idempotency_key_replays_and_rejects_other_params(
    client: stripe.StripeClient, base_url: str
) -> None:
    first = client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k-1"})
    again = client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k-1"})
    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(client.v1.customers.list().data) == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "b@example.com"}, {"idempotency_key": "k-1"})
    raw = call(
        base_url,
        "/v1/customers",
        form={"email": "a@example.com"},
        headers={"authorization": f"Bearer {DEFAULT_API_KEY}", "idempotency-key": "k-1"},
    )
    assert raw.status == 200 and raw.json()["id"] == first.id


async def test_concurrent_requests_with_one_key_create_one_object(
    client: stripe.StripeClient,
) -> None:
    results = await asyncio.gather(
        *(
            client.v1.customers.create_async({"email": "c@example.com"}, {"idempotency_key": "k"})
            for _ in range(8)
        )
    )
    assert len({c.id for c in results}) == 1
    assert len((await client.v1.customers.list_async()).data) == 1


def test_unknown_price_wrong_mode_and_unknown_params_are_rejected(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.create(
            {"mode": "payment", "line_items": [{"price": "price_missing", "quantity": 1}]}
        )
    assert (info.value.code, info.value.param) == ("resource_missing", "line_items[0][price]")
    with pytest.raises(stripe.InvalidRequestError) as info:
        new_checkout(client, "payment", line_items=[{"price": "price_pro_monthly", "quantity": 1}])
    assert info.value.param == "line_items[0][price]" and "recurring" in str(info.value)
    with pytest.raises(stripe.InvalidRequestError) as info:
        new_checkout(
            client, "subscription", line_items=[{"price": "price_credits_100", "quantity": 1}]
        )
    assert info.value.param == "line_items[0][price]"
    with pytest.raises(stripe.InvalidRequestError) as info:
        new_checkout(client, customer="cus_missing")
    assert (info.value.http_status, info.value.param) == (400, "customer")
    with pytest.raises(stripe.InvalidRequestError) as info:
        new_checkout(client, subscription="sub_123")
    assert (info.value.code, info.value.param) == ("parameter_unknown", "subscription")


def test_products_and_prices_through_the_api_and_seed_endpoint(
    client: stripe.StripeClient, base_url: str
) -> None:
    product = client.v1.products.create({"name": "Studio"})
    price = client.v1.prices.create(
        {
            "product": product.id,
            "unit_amount": 4900,
            "currency": "eur",
            "recurring": {"interval": "year"},
        }
    )
    assert price.type == "recurring" and price.recurring is not None
    assert (price.recurring.interval, price.recurring.interval_count) == ("year", 1)
    inline = client.v1.prices.create(
        {"product_data": {"name": "Pack"}, "unit_amount": 100, "currency": "usd"}
    )
    assert inline.type == "one_time" and inline.recurring is None
    team = {
        "id": "price_team",
        "unit_amount": 9900,
        "currency": "usd",
        "recurring_interval": "month",
        "product_name": "Team",
    }
    seeded = call(base_url, "/_emulator/prices", [team])
    assert seeded.status == 200
    assert call(base_url, "/_emulator/prices", [{"id": "bad"}]).status == 400
    assert client.v1.prices.retrieve("price_team").unit_amount == 9900
    seeded_price = client.v1.prices.retrieve("price_pro_monthly")
    assert seeded_price.object == "price" and seeded_price.recurring is not None
    call(base_url, "/_emulator/reset", {})
    assert client.v1.prices.retrieve("price_team").id == "price_team"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.retrieve(price.id)


# Checkout, payment mode ----------------------------------------------------------------------


def test_payment_checkout_completes_and_sends_a_signed_webhook(
    client: stripe.StripeClient, base_url: str, rec: Receiver, customer: Any
) -> None:
    session = new_checkout(
        client,
        customer=customer.id,
        client_reference_id="user_1",
        metadata={"order": "o1"},
        payment_intent_data={"metadata": {"credits": "100"}},
    )
    assert re.fullmatch(r"cs_test_[A-Za-z0-9]+", session.id)
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert session.url == f"{base_url}/checkout/{session.id}"
    assert (session.amount_total, session.currency) == (900, "usd")
    assert session.payment_intent is None and session.subscription is None
    page = call(base_url, f"/checkout/{session.id}")
    assert page.status == 200 and "100 credits" in page.text and "9.00 USD" in page.text

    paid = pay(base_url, session.id)
    assert paid.status == 200 and paid.json()["status"] == "complete"
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.client_reference_id == "user_1" and as_dict(done.metadata) == {"order": "o1"}
    intent = client.v1.payment_intents.retrieve(str(done.payment_intent))
    assert (intent.status, intent.amount, intent.customer) == ("succeeded", 900, customer.id)
    assert as_dict(intent.metadata) == {"credits": "100"}
    charge = client.v1.charges.retrieve(str(intent.latest_charge))
    assert (charge.paid, charge.amount_refunded, charge.payment_intent) == (True, 0, intent.id)

    (event,) = rec.wait_for("checkout.session.completed")
    assert event.data.object["id"] == session.id
    assert event.data.object["payment_status"] == "paid"
    assert event.api_version == API_VERSION
    assert client.v1.events.retrieve(event.id).type == "checkout.session.completed"
    assert pay(base_url, session.id).status == 409


def test_browser_pay_redirects_to_success_url(client: stripe.StripeClient, base_url: str) -> None:
    session = new_checkout(client)
    reply = call(base_url, f"/checkout/{session.id}/pay", form={"outcome": "paid"})
    assert reply.status == 303
    assert reply.headers["location"] == SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", session.id)


def test_declined_card_is_402_and_leaves_the_session_open(
    client: stripe.StripeClient, base_url: str
) -> None:
    session = new_checkout(client)
    reply = pay(base_url, session.id, "declined")
    assert reply.status == 402
    assert reply.json()["error"]["type"] == "card_error"
    assert reply.json()["error"]["code"] == "card_declined"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_webhook_is_retried_until_the_endpoint_answers_2xx(
    client: stripe.StripeClient, base_url: str, rec: Receiver
) -> None:
    rec.fail_next = 2
    session = new_checkout(client)
    pay(base_url, session.id)
    (event,) = rec.wait_for("checkout.session.completed")
    attempts = [
        (d["attempt"], d["status_code"])
        for d in call(base_url, "/_emulator/deliveries").json()
        if d["event_id"] == event.id
    ]
    assert attempts == [(1, 500), (2, 500), (3, 200)]
    wait_until_delivered(base_url)


def test_paused_delivery_waits_and_replay_resends(
    client: stripe.StripeClient, base_url: str, rec: Receiver
) -> None:
    call(base_url, "/_emulator/config", {"paused": True})
    session = new_checkout(client)
    pay(base_url, session.id)
    # The payment's events are queued: held by the pause, none sent.
    assert pending(base_url) >= 1
    assert rec.events == [] and rec.calls == 0
    call(base_url, "/_emulator/config", {"paused": False})
    (event,) = rec.wait_for("checkout.session.completed")
    wait_until_delivered(base_url)
    replay = call(base_url, f"/_emulator/events/{event.id}/deliver", {})
    assert replay.status == 200 and replay.json()["status_code"] == 200
    rec.wait_for("checkout.session.completed", count=2)


def test_async_payment_completes_unpaid_then_settles(
    client: stripe.StripeClient, base_url: str, rec: Receiver
) -> None:
    session = new_checkout(client)
    assert pay(base_url, session.id, "async").status == 200
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.payment_status) == ("complete", "unpaid")
    assert client.v1.payment_intents.retrieve(str(done.payment_intent)).status == "processing"
    settled = call(base_url, f"/_emulator/checkout/{session.id}/settle", {"succeeded": True})
    assert settled.status == 200
    (event,) = rec.wait_for("checkout.session.async_payment_succeeded")
    assert event.data.object["payment_status"] == "paid"
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
    assert call(base_url, f"/_emulator/checkout/{session.id}/settle", {}).status == 409


def test_expire_open_session(client: stripe.StripeClient, rec: Receiver) -> None:
    session = new_checkout(client)
    expired = client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired" and expired.url is None
    rec.wait_for("checkout.session.expired")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)


# Subscriptions -------------------------------------------------------------------------------


def test_subscription_checkout_creates_subscription_invoice_and_payment(
    client: stripe.StripeClient, base_url: str, rec: Receiver, customer: Any
) -> None:
    session = new_checkout(
        client,
        "subscription",
        customer=customer.id,
        subscription_data={"metadata": {"user_id": "u1"}},
    )
    assert pay(base_url, session.id).status == 200
    done = client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["line_items", "subscription"]}
    )
    assert (done.status, done.payment_status, done.payment_intent) == ("complete", "paid", None)
    assert done.line_items is not None and done.line_items.data[0].quantity == 1
    sub = done.subscription
    assert isinstance(sub, stripe.Subscription)
    assert (sub.status, sub.customer, sub.cancel_at_period_end) == ("active", customer.id, False)
    assert as_dict(sub.metadata) == {"user_id": "u1"}
    item = sub["items"].data[0]
    assert item.price.id == "price_pro_monthly"
    assert 27 * 86400 <= item.current_period_end - item.current_period_start <= 31 * 86400
    invoice = client.v1.invoices.retrieve(str(done.invoice))
    assert invoice.id == sub.latest_invoice
    assert (invoice.status, invoice.billing_reason, invoice.amount_paid) == (
        "paid",
        "subscription_create",
        1900,
    )
    assert invoice.parent is not None and invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == sub.id
    assert "subscription" not in invoice
    payments = client.v1.invoice_payments.list({"invoice": invoice.id})
    (payment,) = payments.data
    assert payment.status == "paid" and payment.payment.type == "payment_intent"
    intent = client.v1.payment_intents.retrieve(str(payment.payment.payment_intent))
    assert (intent.status, intent.amount) == ("succeeded", 1900)
    rec.wait_for("checkout.session.completed")
    assert rec.types() == ["customer.subscription.created", "invoice.paid", "checkout.session.completed"]  # fmt: skip
    listed = client.v1.subscriptions.list({"customer": customer.id, "status": "active"})
    assert [s.id for s in listed.data] == [sub.id]


def test_subscription_checkout_without_customer_creates_one(
    client: stripe.StripeClient, base_url: str
) -> None:
    session = new_checkout(client, "subscription", customer_email="new@example.com")
    pay(base_url, session.id)
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert done.customer is not None
    assert client.v1.customers.retrieve(str(done.customer)).email == "new@example.com"


def test_renew_bills_the_next_period(
    client: stripe.StripeClient, base_url: str, rec: Receiver
) -> None:
    sub = subscribe(client, base_url)
    old_end = sub["items"].data[0].current_period_end
    reply = call(base_url, f"/_emulator/subscriptions/{sub.id}/renew", {})
    assert reply.status == 200
    invoice = client.v1.invoices.retrieve(reply.json()["invoice"]["id"])
    assert (invoice.billing_reason, invoice.status) == ("subscription_cycle", "paid")
    renewed = client.v1.subscriptions.retrieve(sub.id)
    assert renewed["items"].data[0].current_period_start == old_end
    assert renewed.latest_invoice == invoice.id
    paid = rec.wait_for("invoice.paid", count=2)
    assert [e.data.object["billing_reason"] for e in paid] == ["subscription_create", "subscription_cycle"]  # fmt: skip
    (updated,) = rec.wait_for("customer.subscription.updated")
    assert "items" in updated.data.previous_attributes


def test_failed_renewal_leaves_invoice_open_and_subscription_past_due(
    client: stripe.StripeClient, base_url: str, rec: Receiver
) -> None:
    sub = subscribe(client, base_url)
    reply = call(base_url, f"/_emulator/subscriptions/{sub.id}/renew", {"fail": True})
    assert reply.json()["invoice"]["status"] == "open"
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    (failed,) = rec.wait_for("invoice.payment_failed")
    assert failed.data.object["parent"]["subscription_details"]["subscription"] == sub.id
    (updated,) = rec.wait_for("customer.subscription.updated")
    assert updated.data.object["status"] == "past_due"
    assert updated.data.previous_attributes["status"] == "active"


def test_cancel_at_period_end_then_renew_ends_the_subscription(
    client: stripe.StripeClient, base_url: str, rec: Receiver
) -> None:
    sub = subscribe(client, base_url)
    updated = client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    assert updated.cancel_at_period_end is True and updated.status == "active"
    (event,) = rec.wait_for("customer.subscription.updated")
    assert event.data.previous_attributes["cancel_at_period_end"] is False
    reply = call(base_url, f"/_emulator/subscriptions/{sub.id}/renew", {})
    assert reply.json()["invoice"] is None
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled"
    assert ended.ended_at == sub["items"].data[0].current_period_end
    rec.wait_for("customer.subscription.deleted")
    assert call(base_url, f"/_emulator/subscriptions/{sub.id}/renew", {}).status == 409


def test_delete_subscription_cancels_now(
    client: stripe.StripeClient, base_url: str, rec: Receiver
) -> None:
    sub = subscribe(client, base_url)
    canceled = client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled" and canceled.ended_at is not None
    rec.wait_for("customer.subscription.deleted")
    assert client.v1.subscriptions.list({"customer": str(sub.customer)}).data == []
    assert len(client.v1.subscriptions.list({"status": "canceled"}).data) == 1


def test_deleting_a_customer_cancels_its_subscriptions_at_once_and_is_final(
    client: stripe.StripeClient, base_url: str, rec: Receiver
) -> None:
    sub = subscribe(client, base_url)
    customer = str(sub.customer)
    other = subscribe(client, base_url)
    deleted = client.v1.customers.delete(customer)
    assert deleted.to_dict() == {"id": customer, "object": "customer", "deleted": True}
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    assert client.v1.subscriptions.retrieve(other.id).status == "active"
    (ended,) = rec.wait_for("customer.subscription.deleted")
    assert (ended.data.object.id, ended.data.object.customer) == (sub.id, customer)
    (gone,) = rec.wait_for("customer.deleted")
    assert gone.data.object.id == customer and gone.data.object.email == "ada@example.com"
    # What is left of it: the deleted stub; deleting again is 404 resource_missing.
    assert client.v1.customers.retrieve(customer).to_dict() == {
        "id": customer,
        "object": "customer",
        "deleted": True,
    }
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.delete(customer)
    assert (info.value.http_status, info.value.code) == (404, "resource_missing")
    assert client.v1.subscriptions.list({"customer": customer}).data == []


def test_fault_switches_delay_or_fail_every_api_call(
    client: stripe.StripeClient, base_url: str
) -> None:
    impatient = stripe.StripeClient(
        DEFAULT_API_KEY,
        base_addresses={"api": base_url},
        http_client=stripe.HTTPXClient(timeout=0.5, allow_sync_methods=True),
        max_network_retries=0,
    )
    impatient.v1.customers.create({"email": "quick@example.com"})
    reply = call(base_url, "/_emulator/config", {"latency_ms": 3000})
    assert reply.json()["latency_ms"] == 3000
    # A caller whose deadline is shorter than the injected latency gives up.
    with pytest.raises(stripe.APIConnectionError):
        impatient.v1.customers.create({"email": "slow@example.com"})
    call(base_url, "/_emulator/config", {"latency_ms": 0, "fail_status": 503})
    with pytest.raises(stripe.APIError) as info:
        client.v1.customers.create({"email": "down@example.com"})
    assert info.value.http_status == 503
    call(base_url, "/_emulator/config", {"fail_status": None})
    assert client.v1.customers.create({"email": "back@example.com"}).email == "back@example.com"


# Refunds, portal, events ---------------------------------------------------------------------


def test_partial_then_full_refund(
    client: stripe.StripeClient, base_url: str, rec: Receiver
) -> None:
    session = new_checkout(client)
    pay(base_url, session.id)
    intent_id = str(client.v1.checkout.sessions.retrieve(session.id).payment_intent)
    first = client.v1.refunds.create({"payment_intent": intent_id, "amount": 300})
    assert re.fullmatch(r"re_[A-Za-z0-9]{24}", first.id)
    assert (first.amount, first.status) == (300, "succeeded")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create({"charge": str(first.charge), "amount": 601})
    assert info.value.param == "amount"
    rest = client.v1.refunds.create({"charge": str(first.charge)})
    assert rest.amount == 600
    charge = client.v1.charges.retrieve(str(first.charge))
    assert (charge.amount_refunded, charge.refunded) == (900, True)
    events = rec.wait_for("charge.refunded", count=2)
    assert [e.data.object["amount_refunded"] for e in events] == [300, 900]
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create({"charge": str(first.charge)})
    assert info.value.code == "charge_already_refunded"


def test_billing_portal_lists_and_cancels_subscriptions(
    client: stripe.StripeClient, base_url: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing_portal.sessions.create({"customer": "cus_missing"})
    sub = subscribe(client, base_url)
    portal = client.v1.billing_portal.sessions.create(
        {"customer": str(sub.customer), "return_url": "https://app.example/account"}
    )
    assert portal.object == "billing_portal.session" and portal.id.startswith("bps_")
    assert portal.url == f"{base_url}/portal/{portal.id}"
    page = call(base_url, f"/portal/{portal.id}")
    assert page.status == 200 and "Pro" in page.text and sub.id in page.text
    reply = call(base_url, f"/portal/{portal.id}/cancel", form={"subscription": sub.id})
    assert (reply.status, reply.headers["location"]) == (303, "https://app.example/account")
    assert client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is True
    now = call(
        base_url,
        f"/portal/{portal.id}/cancel",
        {"subscription": sub.id, "at_period_end": False},
        headers=JSON_ACCEPT,
    )
    assert now.status == 200 and now.json()["status"] == "canceled"


def test_events_list_newest_first_with_type_filter(
    client: stripe.StripeClient, base_url: str
) -> None:
    subscribe(client, base_url)
    events = client.v1.events.list({"limit": 2})
    assert [e.type for e in events.data] == ["checkout.session.completed", "invoice.paid"]
    assert events.has_more is True
    only = client.v1.events.list({"type": "customer.subscription.*"})
    assert [e.type for e in only.data] == ["customer.subscription.created"]


# CLI -----------------------------------------------------------------------------------------


def test_cli_builds_settings_from_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(PRICES))
    served: list[tuple[str, int, Settings | None]] = []
    monkeypatch.setattr(
        emulator, "serve", lambda host, port, settings=None: served.append((host, port, settings))
    )
    for name in ("PORT", "WEBHOOK_URL", "WEBHOOK_SECRET", "PRICES_FILE"):
        monkeypatch.delenv(f"STRIPE_EMULATOR_{name}", raising=False)
    argv = ["stripe", "--prices", str(prices), "--webhook-url", "http://127.0.0.1:1/hook"]
    assert cli_main([*argv, "--webhook-secret", "whsec_other"]) == 0
    assert cli_main(["stripe"]) == 0
    (host, port, settings), (_, default_port, bare) = served
    assert (host, port, default_port) == ("127.0.0.1", 8102, 8102)
    assert settings is not None and bare is not None
    assert [p["id"] for p in settings.prices] == ["price_credits_100", "price_pro_monthly"]
    assert (settings.webhook_url, settings.webhook_secret) == ("http://127.0.0.1:1/hook", "whsec_other")  # fmt: skip
    assert (bare.webhook_url, bare.webhook_secret, bare.prices) == (
        None,
        DEFAULT_WEBHOOK_SECRET,
        (),
    )
    create_app(settings)  # the seeds are valid
