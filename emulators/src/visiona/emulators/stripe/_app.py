"""The FastAPI app: the ``/v1`` API, the hosted pages, and the ``/_emulator`` controls."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from visiona.emulators import _server
from visiona.emulators._delivery import add_delivery_routes
from visiona.emulators._state import StateFile, state_path
from visiona.emulators.stripe import (
    _api,
    _billing,
    _catalog,
    _checkout,
    _pages,
    _persist,
    _portal,
)
from visiona.emulators.stripe._config import DEFAULT_PORT, Settings
from visiona.emulators.stripe._errors import StripeError, conflict, invalid, no_such
from visiona.emulators.stripe._form import FormError, decode_form
from visiona.emulators.stripe._store import JSON, Store
from visiona.emulators.stripe._webhooks import Dispatcher, WebhookConfig


class ConfigPatch(BaseModel):
    """Body of ``POST /_emulator/config``; only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = None
    webhook_secret: str = Field(default="", min_length=1)
    retry_delays_s: list[float] = Field(default_factory=list)
    paused: bool = False
    # Every /v1 call answers this much later / with this error status (null: normally).
    latency_ms: int = Field(default=0, ge=0, le=600_000)
    fail_status: int | None = Field(default=None, ge=400, le=599)


class RenewBody(BaseModel):
    """Body of ``POST /_emulator/subscriptions/{id}/renew``."""

    model_config = ConfigDict(extra="forbid")

    fail: bool = False


class SettleBody(BaseModel):
    """Body of ``POST /_emulator/checkout/{id}/settle``."""

    model_config = ConfigDict(extra="forbid")

    succeeded: bool = True


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def _fields(request: Request) -> dict[str, Any]:
    """A browser form or a JSON object, as a dict."""
    raw = await request.body()
    if "json" in request.headers.get("content-type", ""):
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise invalid("Request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise invalid("Request body must be a JSON object")
        return data
    try:
        return decode_form(raw)
    except FormError as exc:
        raise invalid(str(exc)) from None


def _flag(value: Any, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise invalid(f"Invalid boolean: {value}", name)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the emulator app; ``settings`` default to :meth:`Settings.from_env`."""
    settings = settings or Settings.from_env()
    dispatcher = Dispatcher(
        WebhookConfig(settings.webhook_url, settings.webhook_secret, list(settings.retry_delays_s))
    )
    store = Store(sink=dispatcher)
    idempotency = _api.Idempotency()
    state_file = StateFile(state_path("stripe", settings.state_dir), fresh=settings.fresh)
    _persist.restore(state_file, store, idempotency, dispatcher)
    _catalog.seed_prices(store, settings.prices)
    faults = _api.Faults()

    def save() -> None:
        _persist.sync(state_file, store, idempotency, dispatcher)

    save()
    dispatcher.changed = save
    app = _server.persisted_app("Stripe emulator", state_file, save, dispatcher.resume)
    app.state.store, app.state.dispatcher = store, dispatcher

    @app.exception_handler(StripeError)
    async def stripe_error(_request: Request, exc: StripeError) -> Response:
        return _api.error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/v1/") and exc.status_code in (404, 405):
            return _api.error_response(
                StripeError(
                    404,
                    f"Unrecognized request URL ({request.method}: {request.url.path}). Please "
                    "see https://stripe.com/docs or we can help at https://support.stripe.com/.",
                )
            )
        error_type = "api_error" if exc.status_code >= 500 else "invalid_request_error"
        return _api.error_response(StripeError(exc.status_code, str(exc.detail), type=error_type))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        return _api.error_response(invalid(f"Invalid request body: {exc.errors()}"))

    _api.mount(
        app,
        store,
        api_key=settings.api_key,
        public_url=settings.public_url,
        idempotency=idempotency,
        faults=faults,
    )

    # Hosted pages (what a customer's browser sees) -----------------------------------------

    @app.get("/checkout/{session_id}", response_class=HTMLResponse)
    async def checkout_page(session_id: str) -> HTMLResponse:
        session = store.checkout_sessions.get(session_id)
        if session is None:
            return HTMLResponse(_pages.not_found("Checkout Session"), status_code=404)
        items = store.checkout_line_items[session_id]
        return HTMLResponse(_pages.checkout(session, items))

    @app.post("/checkout/{session_id}/pay", response_model=None)
    async def checkout_pay(session_id: str, request: Request) -> Response:
        fields = await _fields(request)
        outcome = str(fields.get("outcome") or "paid")
        email = fields.get("email")
        try:
            session = _checkout.pay(store, session_id, outcome, str(email) if email else None)
        except StripeError as err:
            if err.status == 402 and not _wants_json(request):
                page = _pages.checkout(
                    store.checkout_sessions[session_id],
                    store.checkout_line_items[session_id],
                    error=err.message,
                )
                return HTMLResponse(page, status_code=402)
            raise
        if _wants_json(request):
            return JSONResponse(session)
        if session["success_url"]:
            url = str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session_id)
            return RedirectResponse(url, status_code=303)
        return HTMLResponse(_pages.done("Payment complete"))

    def portal_session(portal_id: str) -> JSON:
        return _portal.session(store, portal_id)

    @app.get("/portal/{portal_id}", response_class=HTMLResponse)
    async def portal_page(portal_id: str) -> HTMLResponse:
        session = store.portal_sessions.get(portal_id)
        if session is None:
            return HTMLResponse(_pages.not_found("Billing portal session"), status_code=404)
        names = {pid: str(prod["name"]) for pid, prod in store.products.items()}
        return HTMLResponse(_pages.portal(session, _portal.subscriptions(store, session), names))

    async def portal_action(portal_id: str, request: Request, action: str) -> Response:
        session = portal_session(portal_id)
        fields = await _fields(request)
        sub_id = fields.get("subscription")
        if not isinstance(sub_id, str) or not sub_id:
            raise invalid("Missing required param: subscription.", "subscription")
        if action == "cancel":
            at_period_end = _flag(fields.get("at_period_end"), "at_period_end", True)
            sub = _portal.cancel(store, session, sub_id, at_period_end=at_period_end)
        else:
            sub = _portal.resume(store, session, sub_id)
        if _wants_json(request):
            return JSONResponse(sub)
        return RedirectResponse(session["return_url"] or f"/portal/{portal_id}", status_code=303)

    @app.post("/portal/{portal_id}/cancel", response_model=None)
    async def portal_cancel(portal_id: str, request: Request) -> Response:
        return await portal_action(portal_id, request, "cancel")

    @app.post("/portal/{portal_id}/resume", response_model=None)
    async def portal_resume(portal_id: str, request: Request) -> Response:
        return await portal_action(portal_id, request, "resume")

    # Emulator controls ----------------------------------------------------------------------

    @app.get("/_emulator/config")
    async def get_config() -> dict[str, Any]:
        return dispatcher.config.as_dict() | faults.as_dict()

    @app.post("/_emulator/config")
    async def set_config(patch: ConfigPatch) -> dict[str, Any]:
        sent = patch.model_fields_set
        if "webhook_url" in sent:
            url = patch.webhook_url or None
            if url is not None and not url.startswith(("http://", "https://")):
                raise invalid("webhook_url must be an http(s) URL", "webhook_url")
            dispatcher.config.url = url
        if "webhook_secret" in sent:
            dispatcher.config.secret = patch.webhook_secret
        if "retry_delays_s" in sent:
            if any(d < 0 for d in patch.retry_delays_s):
                raise invalid("retry_delays_s must not be negative", "retry_delays_s")
            dispatcher.config.retry_delays_s = list(patch.retry_delays_s)
        if "paused" in sent:
            dispatcher.set_paused(patch.paused)
        if "latency_ms" in sent:
            faults.latency_ms = patch.latency_ms
        if "fail_status" in sent:
            faults.fail_status = patch.fail_status
        return dispatcher.config.as_dict() | faults.as_dict()

    @app.post("/_emulator/prices")
    async def add_prices(seeds: list[dict[str, Any]]) -> list[JSON]:
        try:
            return _catalog.seed_prices(store, seeds)
        except ValueError as exc:
            raise invalid(str(exc)) from None

    @app.post("/_emulator/checkout/{session_id}/settle")
    async def settle(session_id: str, body: SettleBody | None = None) -> JSON:
        succeeded = body.succeeded if body is not None else True
        return _checkout.settle(store, session_id, succeeded=succeeded)

    @app.post("/_emulator/subscriptions/{sub_id}/renew")
    async def renew(sub_id: str, body: RenewBody | None = None) -> JSON:
        return _billing.renew(store, sub_id, fail=body.fail if body is not None else False)

    add_delivery_routes(app, dispatcher)

    @app.post("/_emulator/events/{event_id}/deliver")
    async def deliver(event_id: str) -> dict[str, Any]:
        if event_id not in store.events:
            raise no_such("event", event_id)
        if dispatcher.config.url is None:
            raise conflict("No webhook_url is configured.")
        return await dispatcher.redeliver(event_id)

    @app.post("/_emulator/reset")
    async def reset() -> dict[str, Any]:
        store.reset()
        dispatcher.reset()
        idempotency.clear()
        return {"state": store.counts(), "config": dispatcher.config.as_dict()}

    @app.get("/_emulator/state")
    async def state() -> dict[str, Any]:
        return {
            "counts": store.counts(),
            "deliveries": len(dispatcher.deliveries),
            "config": dispatcher.config.as_dict(),
        }

    return app


serve = _server.Foreground(create_app, DEFAULT_PORT)
