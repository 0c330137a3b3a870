"""The Clerk emulator's users: the Backend API's user endpoints and Svix-signed webhooks.

``POST /v1/users``, ``GET/PATCH/DELETE /v1/users/{id}`` with ``Authorization: Bearer
<secret key>``, in Clerk's shapes (user objects, ``DeletedObject``, ``{"errors": [...]}`` with
``resource_not_found``). Every change is sent to the webhook URL as Clerk sends it through
Svix: ``{"data", "object": "event", "type": "user.created|user.updated|user.deleted",
"timestamp", "instance_id"}`` with ``svix-id``, ``svix-timestamp`` and ``svix-signature``,
retried with the same ``svix-id`` until answered 2xx.

Dev switches: ``POST /_emulator/webhooks/pause|resume``, ``GET /_emulator/deliveries``,
``POST /_emulator/deliveries/{svix_id}/redeliver`` (the same message again, as Svix's "resend").
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from svix.webhooks import Webhook

from visiona.emulators._delivery import DeliveryLoop, add_delivery_routes
from visiona.emulators._server import save_every_answer
from visiona.emulators._state import StateFile

INSTANCE_ID = "ins_visiona_local"


DEFAULT_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass
class _Message:
    svix_id: str
    type: str
    user_id: str
    body: str


@dataclass
class ClerkUsers:
    secret_key: str
    webhook_url: str | None = None
    webhook_secret: str | None = None
    retry_delays_s: list[float] = field(default_factory=lambda: list(DEFAULT_RETRY_DELAYS_S))
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, _Message] = field(default_factory=dict)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    # Where the users and the webhooks still to deliver are kept across restarts.
    state: StateFile = field(default_factory=lambda: StateFile(None))
    # Messages queued and neither delivered nor given up on yet, in order.
    outstanding: dict[str, _Message] = field(default_factory=dict)
    _delivery: DeliveryLoop[_Message] = field(init=False)
    _to_resume: list[_Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._delivery = DeliveryLoop(
            self._send,
            lambda: self.retry_delays_s,
            settled=lambda message, _delivered: self._settle(message),
        )
        docs = self.state.load()
        self.users.update(docs.get("users", {}))
        self._to_resume = [_Message(**m) for m in docs.get("outstanding", {}).values()]
        for message in self._to_resume:
            self.messages[message.svix_id] = message
            self.outstanding[message.svix_id] = message

    # -- state --------------------------------------------------------------------------------

    def save(self) -> None:
        self.state.sync(
            {
                "users": self.users,
                "outstanding": {m.svix_id: asdict(m) for m in self.outstanding.values()},
            },
            lambda kind, _doc: kind == "outstanding",
        )

    def resume(self) -> None:
        """Queue the webhooks a previous run had still to deliver (in the serving loop, once)."""
        to_resume, self._to_resume = self._to_resume, []
        for message in to_resume:
            if self.webhook_url and self.webhook_secret:
                self._delivery.put(message)
            else:
                self.outstanding.pop(message.svix_id, None)

    def _settle(self, message: _Message) -> None:
        self.outstanding.pop(message.svix_id, None)
        self.save()

    # -- users --------------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time() * 1000)
        user_id = "user_" + secrets.token_hex(12)
        emails = [
            {
                "id": "idn_" + secrets.token_hex(10),
                "object": "email_address",
                "email_address": address,
                "verification": {"status": "verified", "strategy": "admin"},
            }
            for address in body.get("email_address") or []
        ]
        user = {
            "id": user_id,
            "object": "user",
            "username": body.get("username"),
            "first_name": body.get("first_name"),
            "last_name": body.get("last_name"),
            "image_url": f"https://img.clerk.com/{user_id}",
            "has_image": False,
            "primary_email_address_id": emails[0]["id"] if emails else None,
            "email_addresses": emails,
            "external_id": body.get("external_id"),
            "public_metadata": body.get("public_metadata") or {},
            "private_metadata": body.get("private_metadata") or {},
            "unsafe_metadata": body.get("unsafe_metadata") or {},
            "created_at": now,
            "updated_at": now,
        }
        self.users[user_id] = user
        self._emit("user.created", user)
        return user

    def update(self, user_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        user = self.users.get(user_id)
        if user is None:
            return None
        for name in ("first_name", "last_name", "username", "external_id", "public_metadata"):
            if name in body:
                user[name] = body[name]
        if body.get("primary_email_address_id"):
            user["primary_email_address_id"] = body["primary_email_address_id"]
        # Strictly increasing, so two changes within a millisecond stay ordered.
        user["updated_at"] = max(int(time.time() * 1000), user["updated_at"] + 1)
        self._emit("user.updated", user)
        return user

    def add_email(self, user_id: str, address: str, primary: bool) -> dict[str, Any] | None:
        user = self.users.get(user_id)
        if user is None:
            return None
        email = {
            "id": "idn_" + secrets.token_hex(10),
            "object": "email_address",
            "email_address": address,
            "verification": {"status": "verified", "strategy": "admin"},
        }
        user["email_addresses"].append(email)
        body: dict[str, Any] = {"primary_email_address_id": email["id"]} if primary else {}
        return self.update(user_id, body)

    def delete(self, user_id: str) -> dict[str, Any] | None:
        if self.users.pop(user_id, None) is None:
            return None
        deleted = {"object": "user", "id": user_id, "deleted": True}
        self._emit("user.deleted", deleted)
        return deleted

    # -- webhooks -----------------------------------------------------------------------------

    def _emit(self, type_: str, data: dict[str, Any]) -> None:
        if not self.webhook_url or not self.webhook_secret:
            return
        payload = {
            "data": data,
            "object": "event",
            "type": type_,
            "timestamp": int(time.time() * 1000),
            "instance_id": INSTANCE_ID,
        }
        message = _Message(
            "msg_" + secrets.token_hex(12), type_, str(data["id"]), json.dumps(payload)
        )
        self.messages[message.svix_id] = message
        self.outstanding[message.svix_id] = message
        self._delivery.put(message)

    def redeliver(self, svix_id: str) -> bool:
        message = self.messages.get(svix_id)
        if message is None:
            return False
        self._delivery.put(message)
        return True

    @property
    def pending(self) -> int:
        return self._delivery.pending

    def set_paused(self, paused: bool) -> None:
        self._delivery.set_paused(paused)

    async def _send(self, message: _Message, attempt: int) -> bool:
        assert self.webhook_url and self.webhook_secret
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "svix-id": message.svix_id,
            "svix-timestamp": str(int(now.timestamp())),
            "svix-signature": Webhook(self.webhook_secret).sign(message.svix_id, now, message.body),
        }
        record: dict[str, Any] = {
            "svix_id": message.svix_id,
            "type": message.type,
            "user_id": message.user_id,
            "attempt": attempt,
        }
        try:
            response = await self._delivery.client().post(
                self.webhook_url, content=message.body.encode(), headers=headers
            )
            record["status"] = response.status_code
            delivered = 200 <= response.status_code < 300
        except Exception as exc:
            record["error"] = repr(exc)
            delivered = False
        self.deliveries.append(record)
        return delivered


def not_found(user_id: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "message": "not found",
                "long_message": f"No user was found with id {user_id}",
                "code": "resource_not_found",
            }
        ]
    }


def install(app: FastAPI, users: ClerkUsers) -> None:
    """Add the Backend API's user endpoints and the dev switches to the emulator app."""

    save_every_answer(app, users.save, users.resume)

    def authorized(request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Bearer {users.secret_key}":
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": "Invalid authentication",
                            "long_message": "The secret key is missing or invalid",
                            "code": "authentication_invalid",
                        }
                    ]
                },
                status_code=401,
            )
        return None

    @app.post("/v1/users")
    async def create_user(request: Request) -> JSONResponse:
        if (denied := authorized(request)) is not None:
            return denied
        return JSONResponse(users.create(await request.json()))

    @app.get("/v1/users/{user_id}")
    async def get_user(user_id: str, request: Request) -> JSONResponse:
        if (denied := authorized(request)) is not None:
            return denied
        user = users.users.get(user_id)
        return JSONResponse(user) if user else JSONResponse(not_found(user_id), status_code=404)

    @app.patch("/v1/users/{user_id}")
    async def update_user(user_id: str, request: Request) -> JSONResponse:
        if (denied := authorized(request)) is not None:
            return denied
        user = users.update(user_id, await request.json())
        return JSONResponse(user) if user else JSONResponse(not_found(user_id), status_code=404)

    @app.post("/v1/email_addresses")
    async def create_email(request: Request) -> JSONResponse:
        if (denied := authorized(request)) is not None:
            return denied
        body = await request.json()
        user = users.add_email(body["user_id"], body["email_address"], bool(body.get("primary")))
        if user is None:
            return JSONResponse(not_found(body["user_id"]), status_code=404)
        return JSONResponse(
            next(e for e in user["email_addresses"] if e["email_address"] == body["email_address"])
        )

    @app.delete("/v1/users/{user_id}")
    async def delete_user(user_id: str, request: Request) -> JSONResponse:
        if (denied := authorized(request)) is not None:
            return denied
        deleted = users.delete(user_id)
        if deleted is None:
            return JSONResponse(not_found(user_id), status_code=404)
        return JSONResponse(deleted)

    @app.post("/_emulator/webhooks/pause")
    async def pause() -> dict[str, bool]:
        users.set_paused(True)
        return {"paused": True}

    @app.post("/_emulator/webhooks/resume")
    async def resume() -> dict[str, bool]:
        users.set_paused(False)
        return {"paused": False}

    add_delivery_routes(app, users)

    @app.post("/_emulator/deliveries/{svix_id}/redeliver")
    async def redeliver(svix_id: str) -> JSONResponse:
        if not users.redeliver(svix_id):
            return JSONResponse({"error": "no such message"}, status_code=404)
        return JSONResponse({"redelivered": svix_id})
