"""Local stand-in for the Stripe API: Checkout, subscriptions, invoices, refunds, billing
portal and signed webhooks, kept across restarts in
``Settings.state_dir`` (``--state-dir``, ``VISIONA_EMULATOR_STATE_DIR``;
visiona.emulators._state). Dev and test only.

Point the real SDK at it::

    stripe.StripeClient("sk_test_visiona_local", base_addresses={"api": "http://127.0.0.1:8102"})

Requests are Stripe's form encoding, answers and errors Stripe's JSON; unknown parameters are
rejected as the real API does (the names come from the SDK's params types), real parameters
whose effect is not modelled (``locale``, ``automatic_tax``…) are accepted and ignored.
``Idempotency-Key`` replays a stored result (``Idempotent-Replayed: true``) or answers
``idempotency_error`` when the parameters differ.

What a browser does: ``GET /checkout/{id}`` is a payment page; ``POST /checkout/{id}/pay``
with ``outcome`` ``paid`` (default) | ``async`` | ``declined`` (form or JSON; JSON answer when
``Accept`` has ``application/json``, else a 303 to ``success_url``). ``GET /portal/{id}`` lists
the customer's subscriptions; ``POST /portal/{id}/cancel`` (``subscription``,
``at_period_end``, default true) and ``/resume``.

Emulator controls (JSON): ``GET|POST /_emulator/config`` (``webhook_url``, ``webhook_secret``,
``retry_delays_s``, ``paused``; and the faults of every ``/v1`` call: ``latency_ms``,
``fail_status``); ``POST /_emulator/prices`` (seed list);
``POST /_emulator/checkout/{id}/settle`` ``{"succeeded": bool}`` (a delayed payment);
``POST /_emulator/subscriptions/{id}/renew`` ``{"fail": bool}`` (the period ends);
``GET /_emulator/deliveries``; ``POST /_emulator/events/{id}/deliver`` (send one event again);
``POST /_emulator/reset`` (all but config and seeded prices); ``GET /_emulator/state``.

Every event is delivered, asynchronously and in order, to the webhook URL with a
``Stripe-Signature`` that ``stripe.Webhook.construct_event`` accepts; non-2xx answers are
retried after each of ``retry_delays_s``. Start-up values come from ``STRIPE_EMULATOR_*``
environment variables, see :meth:`Settings.from_env`.
"""

from __future__ import annotations

from visiona.emulators.stripe._app import ConfigPatch, create_app, serve
from visiona.emulators.stripe._config import (
    DEFAULT_API_KEY,
    DEFAULT_PORT,
    DEFAULT_RETRY_DELAYS_S,
    DEFAULT_WEBHOOK_SECRET,
    Settings,
    load_prices,
)
from visiona.emulators.stripe._form import FormError, decode_form
from visiona.emulators.stripe._store import API_VERSION

__all__ = [
    "API_VERSION",
    "DEFAULT_API_KEY",
    "DEFAULT_PORT",
    "DEFAULT_RETRY_DELAYS_S",
    "DEFAULT_WEBHOOK_SECRET",
    "ConfigPatch",
    "FormError",
    "Settings",
    "create_app",
    "decode_form",
    "load_prices",
    "serve",
]
