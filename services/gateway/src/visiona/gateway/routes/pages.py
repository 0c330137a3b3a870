"""The pages Stripe sends a browser back to (after Checkout, or from the billing portal) until
the web app serves them: a short page each that says what happened and what comes next.

They only inform: credits come from Stripe's signed webhooks, never from a browser landing
here. Outside the API (not in the OpenAPI), unauthenticated, no input reflected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

_BALANCE = (
    "See your balance with <code>visiona balance</code> (or <code>GET /v1/billing/balance</code>)."
)


# Path: the page's title, then its paragraphs.
PAGES: dict[str, tuple[str, ...]] = {
    "/billing/success": (
        "Thank you, your payment went through",
        "Your credits are added as soon as Stripe confirms the payment to us, usually within "
        "seconds (a delayed payment method: once it clears). " + _BALANCE,
        "You can close this tab.",
    ),
    "/billing/canceled": (
        "Checkout canceled",
        "Nothing was charged. Buy again whenever you like with <code>visiona buy</code> "
        "(or <code>POST /v1/billing/checkout</code>).",
    ),
    "/billing": (
        "Back from billing",
        "Changes made in the billing portal take effect as soon as Stripe confirms them to "
        "us. " + _BALANCE,
    ),
}


def _html(title: str, *paragraphs: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · Visiona</title></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def _serve(html: str) -> Callable[[], Awaitable[HTMLResponse]]:
    async def page() -> HTMLResponse:
        return HTMLResponse(html)

    return page


for _path, _text in PAGES.items():
    router.add_api_route(_path, _serve(_html(*_text)), methods=["GET"])
