"""Several users driving the public API (and Stripe's hosted checkout) while faults land.

Each user, concurrently with the others: buys a credit pack (checkout through the gateway,
then the Stripe emulator's hosted page pays it, at once or as a delayed payment that is then
settled), uploads ten face photos (presigned POST straight to S3, then ``complete``), trains a
model, then generates until told to stop, buying another pack when credits run low.

Every POST carries an ``Idempotency-Key`` and is sent again with the same key and the same
body after a connection error, a timeout, a 5xx, 408, 429 or ``409
idempotency_key_in_progress``, with capped exponential backoff (``Retry-After`` honoured),
until it gets a definitive answer (any other status). Reads are retried the same way. Only
when the run is over (the settle deadline) does a request give up: its key is then
*unanswered*. Every key is recorded with its body and its definitive answer, which is how
the invariants attribute what the databases hold to what the users asked for.

Generation prompts and model names carry their request's key (``… take gen-7``, ``chaos
model-1``), so every stored generation and model names the request that made it.

Random choices (packs, payment outcomes, image counts, pauses, backoff jitter) come from one
RNG per user, derived from the run's seed: a user's choices are the same in every run with
that seed; how they interleave with the faults depends on timing.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.chaos.platform import TERMINAL, ChaosPlatform
from visiona.cli.samples import FACE_INDICES, face_photo

PACKS = {"starter": 200, "pro": 1000}
PHOTOS = 10
TOKEN_TTL_S = 3600
TOKEN_RENEW_S = 600
REQUEST_TIMEOUT_S = 60.0
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 5.0
POLL_S = 0.5
LOW_CREDITS = 64
CREDIT_WAIT_S = 180.0
# Answers after which the same request is sent again: nothing definitive was said.
IN_PROGRESS = "idempotency_key_in_progress"


def retryable(status: int, code: str | None) -> bool:
    return status >= 500 or status in (408, 429) or (status == 409 and code == IN_PROGRESS)


@dataclass
class KeyRecord:
    """One POST as the user meant it: its key, its body, and the definitive answer."""

    user_id: str
    op: str  # checkout | uploads | complete | model | generation
    key: str
    path: str
    body: dict[str, Any] | None
    attempts: Counter[str] = field(default_factory=Counter)  # outcome → count
    status: int | None = None  # the definitive answer; None: unanswered
    code: str | None = None  # its problem code, if any
    resource_id: str | None = None
    replayed: bool = False
    payload: dict[str, Any] = field(default_factory=dict, repr=False)  # the acknowledged body

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        return self.status is not None and not self.acknowledged

    def as_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "op": self.op,
            "key": self.key,
            "status": self.status,
            "code": self.code,
            "resource_id": self.resource_id,
            "replayed": self.replayed,
            "attempts": dict(self.attempts),
        }


@dataclass
class Paid:
    """A checkout session the user paid on Stripe's page."""

    user_id: str
    session_id: str
    pack: str
    credits: int
    outcome: str  # paid | async (a delayed payment, then settled)


@dataclass
class Observed:
    """A generation the user followed to its end through the API."""

    user_id: str
    generation_id: str
    status: str
    delivered: int
    num_outputs: int
    failure: str | None


class Stopped(Exception):
    """The run is over: a request still unanswered gives up."""


@dataclass
class Journal:
    """Everything the users asked for and were told, for the invariants and the report."""

    keys: list[KeyRecord] = field(default_factory=list)
    paid: list[Paid] = field(default_factory=list)
    observed: list[Observed] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)  # every attempt's outcome
    notes: list[str] = field(default_factory=list)
    setup_done: int = 0


class User:
    def __init__(
        self,
        platform: ChaosPlatform,
        name: str,
        rng: random.Random,
        journal: Journal,
        stop: asyncio.Event,
        photo_lock: asyncio.Lock,
        think_s: tuple[float, float],
    ) -> None:
        self.platform = platform
        self.name = name
        self.user_id = f"user_{name}"
        self.rng = rng
        self.journal = journal
        self.stop = stop  # no new work once set
        self.deadline = float("inf")  # monotonic; unanswered requests give up after it
        self.photo_lock = photo_lock
        self.think_s = think_s
        self.counters: Counter[str] = Counter()
        self.model_id: str | None = None
        self._token = ""
        self._token_at = 0.0
        self.http = httpx.AsyncClient(base_url=platform.gateway_url, timeout=REQUEST_TIMEOUT_S)
        self.plain = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S)

    async def close(self) -> None:
        await self.http.aclose()
        await self.plain.aclose()

    def _auth(self) -> dict[str, str]:
        now = time.monotonic()
        if not self._token or now - self._token_at > TOKEN_RENEW_S:
            self._token = self.platform.issuer.issue(self.name, ttl_s=TOKEN_TTL_S)
            self._token_at = now
        return {"Authorization": f"Bearer {self._token}"}

    def _next_key(self, op: str) -> str:
        self.counters[op] += 1
        return f"{op}-{self.counters[op]}"

    async def _pause(self, attempt: int, retry_after: str | None = None) -> None:
        delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(attempt, 8))
        delay *= self.rng.uniform(0.5, 1.0)
        if retry_after and retry_after.replace(".", "", 1).isdigit():
            delay = max(delay, min(float(retry_after), BACKOFF_CAP_S * 2))
        if time.monotonic() + delay > self.deadline:
            raise Stopped
        await asyncio.sleep(delay)

    # --- one request, until a definitive answer -------------------------------------------------

    async def _send(
        self,
        method: str,
        url: str,
        *,
        plain: bool = False,
        record: KeyRecord | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """``plain``: not the gateway (S3, Stripe's pages), no session token."""
        attempt = 0
        while True:
            if time.monotonic() > self.deadline:
                raise Stopped
            response: httpx.Response | None = None
            code: str | None = None
            try:
                if plain:
                    response = await self.plain.request(method, url, headers=headers, **kw)
                else:
                    response = await self.http.request(
                        method, url, headers=self._auth() | (headers or {}), **kw
                    )
            except httpx.TimeoutException:
                outcome = "timeout"
            except httpx.TransportError as exc:
                outcome = f"connection:{type(exc).__name__}"
            else:
                code = _problem_code(response)
                outcome = f"{response.status_code}" + (f":{code}" if code else "")
            # Answers of the gateway, and of S3 and Stripe's pages ("plain") apart.
            self.journal.answers[f"{'plain ' if plain else ''}{method} {outcome}"] += 1
            if record is not None:
                record.attempts[outcome] += 1
            if response is not None and not retryable(response.status_code, code):
                return response
            await self._pause(attempt, response.headers.get("retry-after") if response else None)
            attempt += 1

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self._send("GET", path, **kw)

    async def post(
        self, op: str, path: str, body: dict[str, Any] | None, key: str | None = None
    ) -> KeyRecord:
        """A keyed POST until a definitive answer; the record is in the journal from the
        first attempt (an unanswered key is one the run gave up on)."""
        record = KeyRecord(self.user_id, op, key or self._next_key(op), path, body)
        self.journal.keys.append(record)
        kw: dict[str, Any] = {} if body is None else {"json": body}
        response = await self._send(
            "POST", path, record=record, headers={"Idempotency-Key": record.key}, **kw
        )
        record.status = response.status_code
        record.code = _problem_code(response)
        record.replayed = response.headers.get("idempotent-replayed") == "true"
        if record.acknowledged:
            record.payload = dict(response.json()) if response.content else {}
            found = record.payload.get("id") or record.payload.get("session_id")
            record.resource_id = str(found) if found else None
        return record

    # --- the journey ------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._journey()
        except Stopped:
            pass
        finally:
            await self.close()

    async def _journey(self) -> None:
        if not await self.buy(wait_for_credits=True):
            return
        photo_ids = await self.upload_photos()
        if len(photo_ids) < PHOTOS:
            self.journal.notes.append(f"{self.name}: only {len(photo_ids)} photos accepted")
            return
        for _ in range(5):
            if self.stop.is_set():
                return
            self.model_id = await self.train(photo_ids)
            if self.model_id:
                break
        if not self.model_id:
            return
        self.journal.setup_done += 1
        while not self.stop.is_set():
            if await self.available() < LOW_CREDITS or self.rng.random() < 0.03:
                await self.buy(wait_for_credits=True)
            await self.generate()
            await asyncio.sleep(self.rng.uniform(*self.think_s))

    async def available(self) -> int:
        response = await self.get("/v1/billing/balance")
        return int(response.json()["available"]) if response.status_code == 200 else 0

    async def buy(self, *, wait_for_credits: bool) -> bool:
        pack = self.rng.choice(sorted(PACKS))
        outcome = self.rng.choice(["paid", "async"])
        record = await self.post(
            "checkout", "/v1/billing/checkout", {"kind": "pack", "item_id": pack}
        )
        if not record.acknowledged:
            self.journal.notes.append(f"{self.name}: checkout {record.key} refused {record.status}")
            return False
        session = record.payload
        session_id, url = str(session["session_id"]), str(session["url"])
        paid = await self._send(
            "POST",
            f"{url}/pay",
            plain=True,
            json={"outcome": outcome},
            headers={"Accept": "application/json"},
        )
        if paid.status_code != 200:
            self.journal.notes.append(
                f"{self.name}: paying {session_id} answered {paid.status_code}: {paid.text[:200]}"
            )
            return False
        if outcome == "async":
            settled = await self._send(
                "POST",
                f"{self.platform.stripe_url}/_emulator/checkout/{session_id}/settle",
                plain=True,
                json={"succeeded": True},
            )
            if settled.status_code != 200:
                self.journal.notes.append(
                    f"{self.name}: settling {session_id} answered {settled.status_code}"
                )
                return False
        self.journal.paid.append(Paid(self.user_id, session_id, pack, PACKS[pack], outcome))
        if wait_for_credits:
            await self._until_credited(session_id)
        return True

    async def _until_credited(self, session_id: str) -> None:
        """Until the ledger shows the purchase (bounded: a purchase never credited is the
        invariants' to find, the user goes on)."""
        give_up = time.monotonic() + CREDIT_WAIT_S
        while not self.stop.is_set() and time.monotonic() < give_up:
            page = (await self.get("/v1/billing/ledger", params={"limit": 50})).json()
            if any(e["reference"] == session_id for e in page.get("entries", [])):
                return
            await asyncio.sleep(0.5)
        self.journal.notes.append(
            f"{self.name}: {session_id} not credited after {CREDIT_WAIT_S:.0f} s"
        )

    async def upload_photos(self) -> list[str]:
        record = await self.post(
            "uploads",
            "/v1/photos/uploads",
            {"photos": [{"content_type": "image/jpeg"}] * PHOTOS, "face_policy": "require"},
        )
        if not record.acknowledged:
            return []
        accepted = []
        for slot, index in zip(record.payload["uploads"], FACE_INDICES, strict=False):
            data = await asyncio.to_thread(face_photo, index)
            for round_ in range(3):
                stored = await self._send(
                    "POST",
                    slot["url"],
                    plain=True,
                    data=slot["fields"],
                    files={"file": ("photo.jpg", data, "image/jpeg")},
                )
                if stored.status_code >= 300:
                    self.journal.notes.append(
                        f"{self.name}: S3 upload answered {stored.status_code}"
                    )
                    break
                # OpenCV's face cascade in training is shared by its threads and not
                # thread-safe: one validation at a time across users (bench/generation_flow.py).
                async with self.photo_lock:
                    suffix = "" if round_ == 0 else f"-{round_ + 1}"
                    verdict = await self.post(
                        "complete",
                        f"/v1/photos/{slot['photo_id']}/complete",
                        None,
                        key=f"complete-{slot['photo_id']}{suffix}",
                    )
                if verdict.code == "photo_not_uploaded":
                    continue
                if verdict.acknowledged and str(verdict.payload.get("status")).startswith(
                    "accepted"
                ):
                    accepted.append(str(slot["photo_id"]))
                break
        return accepted

    async def train(self, photo_ids: list[str]) -> str | None:
        key = self._next_key("model")
        record = await self.post(
            "model",
            "/v1/models",
            {"name": f"chaos {key}", "photo_ids": photo_ids, "preset": "fast"},
            key=key,
        )
        model_id: str | None
        if record.acknowledged and record.resource_id:
            model_id = record.resource_id
        elif record.code in ("training_limit_reached", "model_limit_reached"):
            # A model we were never told about exists (an earlier attempt of a request whose
            # answer was lost): follow it, as a person looking at their models would.
            model_id = await self._adoptable_model()
            self.journal.notes.append(
                f"{self.name}: {key} answered {record.code}; following model {model_id}"
            )
            if model_id is None:
                await asyncio.sleep(2)
                return None
        else:
            self.journal.notes.append(f"{self.name}: {key} refused {record.status} {record.code}")
            await asyncio.sleep(2)
            return None
        while True:
            response = await self.get(f"/v1/models/{model_id}")
            model = response.json()
            if response.status_code != 200:
                self.journal.notes.append(f"{self.name}: model {model_id} {response.status_code}")
                return None
            if model["status"] in TERMINAL:
                if model["status"] == "succeeded":
                    return model_id
                self.journal.notes.append(
                    f"{self.name}: model {model_id} {model['status']}: {model.get('failure')}"
                )
                return None
            await asyncio.sleep(POLL_S * 2)

    async def _adoptable_model(self) -> str | None:
        models = (await self.get("/v1/models", params={"limit": 50})).json().get("models", [])
        for model in models:
            if model["status"] not in ("failed", "canceled"):
                return str(model["id"])
        return None

    async def generate(self) -> None:
        key = self._next_key("generation")
        body = {
            "model_id": self.model_id,
            "prompt": f"a portrait of me on a beach at dawn, take {key}",
            "num_outputs": self.rng.choice([1, 1, 2, 2, 3, 4]),
            "enhance": self.rng.random() < 0.25,
        }
        record = await self.post("generation", "/v1/generations", body, key=key)
        if record.code == "generation_limit_reached":
            # One of ours still runs that we were never told about: wait until it is over.
            await self._until_none_running()
            return
        if not (record.acknowledged and record.resource_id):
            return
        while True:
            response = await self.get(f"/v1/generations/{record.resource_id}")
            if response.status_code != 200:
                self.journal.notes.append(
                    f"{self.name}: generation {record.resource_id} answered {response.status_code}"
                )
                return
            gen = response.json()
            if gen["status"] in TERMINAL:
                failure = gen.get("failure") or {}
                self.journal.observed.append(
                    Observed(
                        self.user_id,
                        record.resource_id,
                        gen["status"],
                        int(gen["delivered"]),
                        int(gen["num_outputs"]),
                        failure.get("reason"),
                    )
                )
                return
            await asyncio.sleep(POLL_S)

    async def _until_none_running(self) -> None:
        while True:
            page = (await self.get("/v1/generations", params={"limit": 20})).json()
            if all(g["status"] in TERMINAL for g in page.get("generations", [])):
                return
            await asyncio.sleep(POLL_S * 2)


def _problem_code(response: httpx.Response) -> str | None:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return str(code) if code else None


class Workload:
    """The users, started together; :meth:`finish` stops new work and sets the deadline after
    which requests still unanswered give up."""

    def __init__(
        self,
        platform: ChaosPlatform,
        users: int,
        seed: int,
        run: str,
        think_s: tuple[float, float] = (0.5, 2.0),
    ) -> None:
        self.journal = Journal()
        self.stop = asyncio.Event()
        lock = asyncio.Lock()
        self.users = [
            User(
                platform,
                f"chaos{run}u{i}",
                random.Random(f"{seed}:user:{i}"),
                self.journal,
                self.stop,
                lock,
                think_s,
            )
            for i in range(users)
        ]
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(u.run(), name=u.name) for u in self.users]

    def finish(self, deadline: float) -> None:
        self.stop.set()
        for user in self.users:
            user.deadline = deadline

    @property
    def done(self) -> bool:
        return all(t.done() for t in self.tasks)

    async def join(self) -> None:
        results = await asyncio.gather(*self.tasks, return_exceptions=True)
        for user, result in zip(self.users, results, strict=True):
            if isinstance(result, BaseException):
                self.journal.notes.append(f"{user.name}: the user's task failed: {result!r}")
