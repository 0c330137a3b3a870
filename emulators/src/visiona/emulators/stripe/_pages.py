"""The small HTML pages a browser sees: hosted Checkout and the billing portal."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape

from visiona.emulators.stripe._store import JSON

_ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
     "xaf", "xof", "xpf"}
)  # fmt: skip

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1a1f36}
h1{font-size:1.3rem}.muted{color:#697386;font-size:.9rem}.error{color:#c0123c}
table{width:100%;border-collapse:collapse;margin:1rem 0}td{padding:.4rem 0}td.r{text-align:right}
tr.total td{border-top:1px solid #e3e8ee;font-weight:600}
button{font-size:1rem;padding:.6rem 1rem;margin:.3rem .3rem .3rem 0;border-radius:6px;
border:1px solid #635bff;background:#635bff;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#635bff}input{font-size:1rem;padding:.4rem;width:100%}
.sub{border:1px solid #e3e8ee;border-radius:8px;padding:.8rem 1rem;margin:1rem 0}
"""


def money(amount: int, currency: str) -> str:
    if currency.lower() in _ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    return f"{amount / 100:,.2f} {currency.upper()}"


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f'</title><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{_STYLE}</style></head><body>{body}"
        '<p class="muted">Stripe emulator — test mode, no real payment.</p></body></html>'
    )


def not_found(what: str) -> str:
    return _page("Not found", f"<h1>{escape(what)} not found</h1>")


def checkout(session: JSON, line_items: list[JSON], error: str | None = None) -> str:
    sid = escape(session["id"])
    rows = "".join(
        f"<tr><td>{escape(item['description'])} &times; {item['quantity']}"
        f"{_interval(item['price'])}</td>"
        f'<td class="r">{money(item["amount_total"], item["currency"])}</td></tr>'
        for item in line_items
    )
    total = money(session["amount_total"], session["currency"])
    rows += f'<tr class="total"><td>Total</td><td class="r">{total}</td></tr>'
    parts = [f"<h1>Checkout</h1><table>{rows}</table>"]
    if session["status"] != "open":
        parts.append(f"<p>This Checkout Session is <b>{escape(session['status'])}</b>.</p>")
        return _page("Checkout", "".join(parts))
    if error:
        parts.append(f'<p class="error">{escape(error)}</p>')
    email = session["customer_email"] or ""
    email_field = (
        ""
        if session["customer"]
        else f'<p><label>Email <input type="email" name="email" value="{escape(email)}">'
        "</label></p>"
    )
    delayed = (
        '<button class="secondary" name="outcome" value="async">Pay with delayed method</button>'
        if session["mode"] == "payment"
        else ""
    )
    parts.append(
        f'<form method="post" action="/checkout/{sid}/pay">{email_field}'
        f'<button name="outcome" value="paid">Pay {total}</button>{delayed}'
        '<button class="secondary" name="outcome" value="declined">Pay with a declined card'
        "</button></form>"
    )
    if session["cancel_url"]:
        parts.append(f'<p><a href="{escape(session["cancel_url"])}">Cancel and go back</a></p>')
    return _page("Checkout", "".join(parts))


def _interval(price: JSON) -> str:
    recurring = price.get("recurring")
    if not recurring:
        return ""
    count = recurring["interval_count"]
    every = recurring["interval"] if count == 1 else f"{count} {recurring['interval']}s"
    return f' <span class="muted">per {escape(every)}</span>'


def portal(session: JSON, subscriptions: list[JSON], product_names: Mapping[str, str]) -> str:
    pid = escape(session["id"])
    parts = ["<h1>Your subscriptions</h1>"]
    if not subscriptions:
        parts.append("<p>No subscriptions.</p>")
    for sub in subscriptions:
        names = ", ".join(
            f"{escape(product_names.get(item['price']['product'], item['price']['id']))}"
            f" &times; {item['quantity']}"
            for item in sub["items"]["data"]
        )
        end = max(item["current_period_end"] for item in sub["items"]["data"])
        status = escape(sub["status"])
        parts.append(f'<div class="sub"><b>{names}</b> — {status}')
        hidden = f'<input type="hidden" name="subscription" value="{escape(sub["id"])}">'
        if sub["status"] == "canceled":
            parts.append("</div>")
            continue
        if sub["cancel_at_period_end"]:
            parts.append(
                f"<p>Cancels on {_date(end)}.</p>"
                f'<form method="post" action="/portal/{pid}/resume">{hidden}'
                "<button>Renew plan</button></form></div>"
            )
            continue
        parts.append(
            f"<p>Renews on {_date(end)}.</p>"
            f'<form method="post" action="/portal/{pid}/cancel">{hidden}'
            '<input type="hidden" name="at_period_end" value="true">'
            "<button>Cancel at period end</button></form>"
            f'<form method="post" action="/portal/{pid}/cancel">{hidden}'
            '<input type="hidden" name="at_period_end" value="false">'
            '<button class="secondary">Cancel now</button></form></div>'
        )
    if session["return_url"]:
        parts.append(f'<p><a href="{escape(session["return_url"])}">Return</a></p>')
    return _page("Billing portal", "".join(parts))


def done(message: str) -> str:
    return _page("Done", f"<h1>{escape(message)}</h1>")
