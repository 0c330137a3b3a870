"""Each Stripe error class maps to one status: a request Stripe refused is not an outage.

The errors are Stripe's own, made by the official SDK from the emulator's answers over HTTP
where the emulator can give them, and built as the SDK builds them where it cannot (a card
declined, a restricted key, a class a newer SDK adds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import stripe
from pydantic import SecretStr

from visiona.billing.config import BillingSettings
from visiona.billing.providers.stripe import CustomerMissing, StripeSdk, domain_error
from visiona.emulators._server import running
from visiona.emulators.ports import free_port
from visiona.emulators.stripe import DEFAULT_API_KEY, Settings, create_app
from visiona.kit import errors

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

PRICE = "price_test_pack"
PRICES = [
    {
        "id": PRICE,
        "unit_amount": 900,
        "currency": "usd",
        "recurring_interval": None,
        "product_name": "Starter",
    }
]


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    with running(create_app(Settings(prices=PRICES))) as url:
        yield url


@pytest.fixture
def fail_with(emulator_url: str) -> Iterator[Callable[[int], None]]:
    def configure(status: int | None) -> None:
        response = httpx.post(f"{emulator_url}/_emulator/config", json={"fail_status": status})
        response.raise_for_status()

    yield configure
    configure(None)


def adapter(base: str, api_key: str = DEFAULT_API_KEY) -> StripeSdk:
    return StripeSdk(
        BillingSettings(
            stripe_api_key=SecretStr(api_key),
            stripe_api_base=base,
            stripe_max_network_retries=0,
        )
    )


def checkout(customer: str, price: str = PRICE) -> dict[str, Any]:
    return {
        "mode": "payment",
        "customer": customer,
        "line_items": [{"price": price, "quantity": 1}],
        "success_url": "http://localhost/ok",
        "cancel_url": "http://localhost/no",
    }


async def refusal(call: Any) -> errors.DomainError:
    with pytest.raises(errors.DomainError) as caught:
        await call
    return caught.value


async def test_a_deleted_customer_named_by_a_call_is_missing_not_an_outage(
    emulator_url: str,
) -> None:
    sdk = adapter(emulator_url)
    customer = (await sdk.create_customer("user_gone"))["id"]
    await sdk.delete_customer(customer)
    for call in (
        sdk.create_checkout_session(checkout(customer), key="k-deleted"),
        sdk.create_portal_session(customer, "http://localhost/back"),
    ):
        error = await refusal(call)
        assert isinstance(error, CustomerMissing) and isinstance(error, errors.FailedPrecondition)
        assert error.code == "stripe_customer_missing"
    # Retrieving it is not an error: the stub says it was deleted.
    assert (await sdk.customer(customer))["deleted"] is True
    never = await refusal(sdk.customer("cus_neverexisted"))
    assert isinstance(never, errors.NotFound) and never.code == "stripe_object_missing"


async def test_a_replacement_customer_is_made_once_per_missing_customer(emulator_url: str) -> None:
    sdk = adapter(emulator_url)
    first = (await sdk.create_customer("user_again"))["id"]
    assert (await sdk.create_customer("user_again"))["id"] == first
    after = (await sdk.create_customer("user_again", replacing=first))["id"]
    assert after != first
    assert (await sdk.create_customer("user_again", replacing=first))["id"] == after


async def test_an_unknown_price_is_a_catalogue_mismatch(emulator_url: str) -> None:
    sdk = adapter(emulator_url)
    customer = (await sdk.create_customer("user_price"))["id"]
    error = await refusal(
        sdk.create_checkout_session(checkout(customer, "price_other_mode"), key="k-price")
    )
    assert type(error) is errors.FailedPrecondition and error.code == "stripe_catalog_mismatch"


async def test_a_key_reused_with_other_parameters_is_the_callers_error(emulator_url: str) -> None:
    sdk = adapter(emulator_url)
    customer = (await sdk.create_customer("user_key"))["id"]
    await sdk.create_checkout_session(checkout(customer), key="k-reused")
    changed = checkout(customer) | {"cancel_url": "http://localhost/other"}
    error = await refusal(sdk.create_checkout_session(changed, key="k-reused"))
    assert isinstance(error, errors.InvalidArgument) and error.code == "idempotency_key_reused"


async def test_refused_credentials_are_a_configuration_error(emulator_url: str) -> None:
    error = await refusal(adapter(emulator_url, "sk_test_wrong").customer("cus_x"))
    assert isinstance(error, errors.FailedPrecondition) and error.code == "stripe_not_configured"


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (429, errors.ResourceExhausted, "stripe_rate_limited"),
        (500, errors.Unavailable, "stripe_unavailable"),
        (503, errors.Unavailable, "stripe_unavailable"),
        (409, errors.Unavailable, "stripe_unavailable"),
        (400, errors.FailedPrecondition, "stripe_request_refused"),
    ],
)
async def test_answers_of_a_struggling_stripe(
    emulator_url: str,
    fail_with: Callable[[int], None],
    status: int,
    kind: type[errors.DomainError],
    code: str,
) -> None:
    fail_with(status)
    error = await refusal(adapter(emulator_url).create_customer("user_faults"))
    assert type(error) is kind and error.code == code


async def test_an_unreachable_stripe_is_unavailable() -> None:
    port = free_port()  # reserved: nothing will listen on it
    error = await refusal(adapter(f"http://127.0.0.1:{port}").customer("cus_x"))
    assert type(error) is errors.Unavailable and error.code == "stripe_unavailable"


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (
            stripe.CardError("Your card was declined.", None, "card_declined", http_status=402),
            errors.FailedPrecondition,
            "payment_declined",
        ),
        (
            stripe.PermissionError("restricted key", http_status=403),
            errors.FailedPrecondition,
            "stripe_not_configured",
        ),
        (
            stripe.InvalidRequestError(
                "No such customer: 'cus_x'", "customer", "resource_missing", http_status=400
            ),
            CustomerMissing,
            "stripe_customer_missing",
        ),
        (
            stripe.APIConnectionError("connection reset"),
            errors.Unavailable,
            "stripe_unavailable",
        ),
        # Classes a newer SDK adds are judged by their status.
        (stripe.QuotaExceededError("quota", http_status=400), errors.FailedPrecondition, None),
        (
            stripe.TemporarySessionExpiredError("expired", http_status=None),
            errors.Unavailable,
            None,
        ),
    ],
)
def test_every_error_class_has_a_deliberate_status(
    exc: stripe.StripeError, kind: type[errors.DomainError], code: str | None
) -> None:
    error = domain_error(exc)
    assert type(error) is kind
    if code is not None:
        assert error.code == code
    # Stripe's message never reaches the caller: it may echo customer data.
    assert str(exc) not in error.message
