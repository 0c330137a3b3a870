"""The product's generation flow as a user drives it, for ``orchestration_share`` and
``generation_throughput``.

:func:`full_platform` starts the whole platform with :class:`LocalStack`, like
:func:`bench.common.platform` but with SeaweedFS and the Replicate emulator (a generation
stores its images, and trains a model first). Isolation and clean-up are the same: its own
database, roles, exchange, queue prefix and free ports, all removed afterwards.

Through the gateway's REST API with a dev Clerk token, :func:`ready_user` buys the Pro pack
(Stripe emulator: checkout, pay, wait for the credits), uploads 10 face photos (presigned
POST to S3, then complete) and trains a model on the ``fast`` preset; :func:`generate` makes
one generation and polls it until it has succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.common import (
    ADMIN_URL,
    BenchError,
    bench_stack_config,
    running_stack,
)
from visiona.cli.samples import FACE_INDICES, face_photo
from visiona.emulators.clerk import DevIssuer
from visiona.emulators.stack import LocalStack, StackConfig

TERMINAL = ("succeeded", "failed", "canceled")
PACK = "pro"  # 1000 credits: a training (150) and up to 212 images at 4
PACK_CREDITS = 1000
PHOTOS = 10
SETUP_TIMEOUT_S = 120.0
GENERATION_TIMEOUT_S = 60.0
# A launch later than this after the reservation arrived: with one generation in flight, a
# lost wake-up (the job loop's poll, GENERATION_WORK_POLL_INTERVAL_S = 0.5 s, launched it);
# with several, also a wait behind the loop's current batch.
LATE_LAUNCH_S = 0.1
# The processes whose memory is sampled.
SERVICE_PROCESSES = ("gateway", "generation", "training", "billing", "prompts")
SETTLE_S = 10.0


async def settle() -> None:
    """After the shared broker closed every connection: time for the services to reconnect and
    for a generation cut through to end (a later one would be refused while it runs)."""
    await asyncio.sleep(SETTLE_S)


# --- the platform -----------------------------------------------------------------------------


@dataclass
class FullPlatform:
    cfg: StackConfig
    processes: LocalStack
    issuer: DevIssuer

    @property
    def replicate_url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.ports['replicate']}"

    def admin_sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        """Read the run's database as a superuser (row-level security does not apply)."""
        url = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=self.cfg.database)
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(query, params or None)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def pid(self, name: str) -> int:
        return self.processes.procs[name].pid

    def rss_mb(self) -> dict[str, float]:
        """VmRSS of each service process (MB)."""
        return {name: rss_mb(self.pid(name)) for name in SERVICE_PROCESSES}

    async def replicate_config(self, **settings: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(f"{self.replicate_url}/_emulator/config", json=settings)
        if response.status_code != 200:
            raise BenchError(f"replicate config answered {response.status_code}: {response.text}")
        return dict(response.json())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise BenchError(f"no VmRSS for process {pid}")


@contextlib.contextmanager
def full_platform(
    label: str,
    extra_env: dict[str, str] | None = None,
    web_origins: tuple[str, ...] | None = None,
) -> Iterator[FullPlatform]:
    """Every service, the gateway, the emulators (Replicate included) and SeaweedFS, as
    processes on free ports; torn down on the way out, the logs kept on failure.
    ``web_origins``: the web app's origins, when a benchmark serves it (else the stack's
    default)."""
    cfg = bench_stack_config(label, ["anthropic", "stripe", "replicate"], extra_env)
    if web_origins is not None:
        cfg.web_origins = web_origins
    with running_stack(cfg, label) as (stack, issuer):
        yield FullPlatform(cfg, stack, issuer)


# --- a user -----------------------------------------------------------------------------------


@dataclass
class User:
    name: str
    client: httpx.AsyncClient  # the gateway, with the user's bearer token
    model_id: str = ""
    setup_s: dict[str, float] = field(default_factory=dict)

    async def call(self, method: str, path: str, expect: int, **kwargs: Any) -> dict[str, Any]:
        response = await self.client.request(method, path, **kwargs)
        if response.status_code != expect:
            raise BenchError(
                f"{method} {path} for {self.name} answered {response.status_code}: "
                f"{response.text[:500]}"
            )
        return dict(response.json()) if response.content else {}


def new_user(stack: FullPlatform, label: str) -> User:
    name = f"bench{label}{uuid.uuid4().hex[:6]}"
    token = stack.issuer.issue(name)
    client = httpx.AsyncClient(
        base_url=stack.cfg.gateway_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    return User(name, client)


async def wait_until(what: str, probe: Any, done: Any, timeout_s: float, every_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    value = await probe()
    while not done(value):
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}; last: {value!r}")
        await asyncio.sleep(every_s)
        value = await probe()
    return value


async def buy_credits(user: User) -> None:
    session = await user.call(
        "POST", "/v1/billing/checkout", 201, json={"kind": "pack", "item_id": PACK}
    )
    async with httpx.AsyncClient(timeout=30) as browser:
        paid = await browser.post(
            f"{session['url']}/pay",
            json={"outcome": "paid"},
            headers={"Accept": "application/json"},
        )
    if paid.status_code != 200:
        raise BenchError(f"paying the checkout answered {paid.status_code}: {paid.text[:300]}")
    await wait_until(
        f"{user.name}'s credits",
        lambda: user.call("GET", "/v1/billing/balance", 200),
        lambda b: b["balance"] >= PACK_CREDITS,
        SETUP_TIMEOUT_S,
        0.2,
    )


async def upload_photos(user: User, one_at_a_time: asyncio.Lock) -> list[str]:
    """Upload and complete the photos; ``one_at_a_time`` serialises the completes of users made
    ready side by side: training validates photos in threads on one shared OpenCV
    ``CascadeClassifier`` (``photos._face_cascade``, cached), which is not thread-safe, and
    concurrent validations miscount faces (a one-face photo rejected as ``several_faces``)."""
    uploads = (
        await user.call(
            "POST",
            "/v1/photos/uploads",
            201,
            json={
                "photos": [{"content_type": "image/jpeg"}] * PHOTOS,
                "face_policy": "require",
            },
        )
    )["uploads"]
    photo_ids = []
    async with httpx.AsyncClient(timeout=60) as s3:
        for upload, index in zip(uploads, FACE_INDICES[:PHOTOS], strict=True):
            posted = await s3.post(
                upload["url"],
                data=upload["fields"],
                files={"file": ("photo", face_photo(index), "image/jpeg")},
            )
            if posted.status_code not in (200, 201, 204):
                raise BenchError(f"S3 upload answered {posted.status_code}: {posted.text[:300]}")
            async with one_at_a_time:
                verdict = await user.call("POST", f"/v1/photos/{upload['photo_id']}/complete", 200)
            if verdict["status"] != "accepted":
                raise BenchError(f"photo {index} was not accepted: {verdict}")
            photo_ids.append(verdict["id"])
    return photo_ids


async def train(user: User, photo_ids: list[str]) -> str:
    created = await user.call(
        "POST", "/v1/models", 202, json={"name": "Me", "photo_ids": photo_ids, "preset": "fast"}
    )
    model = await wait_until(
        f"{user.name}'s model",
        lambda: user.call("GET", f"/v1/models/{created['id']}", 200),
        lambda m: m["status"] in TERMINAL,
        SETUP_TIMEOUT_S,
        0.25,
    )
    if model["status"] != "succeeded":
        raise BenchError(f"training failed: {model}")
    return str(model["id"])


async def ready_user(
    stack: FullPlatform, label: str, one_at_a_time: asyncio.Lock | None = None
) -> User:
    """A user with the Pro pack's credits and a trained model."""
    user = new_user(stack, label)
    await make_ready(user, one_at_a_time or asyncio.Lock())
    return user


async def make_ready(user: User, one_at_a_time: asyncio.Lock) -> None:
    """Buy ``user`` the Pro pack, upload their photos (under ``one_at_a_time``) and train
    their model: ``user.model_id``, and how long each step took in ``user.setup_s``."""
    started = time.perf_counter()
    await buy_credits(user)
    bought = time.perf_counter()
    photo_ids = await upload_photos(user, one_at_a_time)
    uploaded = time.perf_counter()
    user.model_id = await train(user, photo_ids)
    user.setup_s = {
        "credits_s": round(bought - started, 2),
        "photos_s": round(uploaded - bought, 2),
        "training_s": round(time.perf_counter() - uploaded, 2),
    }


async def ready_users(stack: FullPlatform, count: int, label: str) -> list[User]:
    """``count`` users made ready side by side (their trainings run concurrently)."""
    lock = asyncio.Lock()
    return list(
        await asyncio.gather(*(ready_user(stack, f"{label}{i}", lock) for i in range(count)))
    )


# --- a generation ------------------------------------------------------------------------------


@dataclass
class Generation:
    id: str
    posted_at: float  # wall clock (time.time()) just before the POST
    accepted_s: float  # POST → its 202
    end_to_end_s: float  # POST → the first GET showing `succeeded`
    seen_s: dict[str, float]  # status → when a GET first showed it, from the POST
    polls: int
    body: dict[str, Any] = field(default_factory=dict)  # the GET that showed it succeeded


async def generate(
    user: User,
    poll_s: float,
    *,
    first_poll_s: float = 0.0,
    prompt: str = "me on a beach",
    body: dict[str, Any] | None = None,
) -> Generation:
    """POST a generation (one image, unless ``body`` — the request's fields, merged over the
    defaults — asks for more), then GET it every ``poll_s`` (from ``first_poll_s`` after the
    POST on) until it shows ``succeeded`` with all its images."""
    request: dict[str, Any] = {"model_id": user.model_id, "prompt": prompt, "num_outputs": 1}
    request |= body or {}
    expected = int(request["num_outputs"])
    posted_at = time.time()
    started = time.perf_counter()
    created = await user.call("POST", "/v1/generations", 202, json=request)
    accepted = time.perf_counter() - started
    seen: dict[str, float] = {str(created["status"]): accepted}
    gen_id = str(created["id"])
    if first_poll_s > accepted:
        await asyncio.sleep(first_poll_s - accepted)
    polls = 0
    while True:
        got = await user.call("GET", f"/v1/generations/{gen_id}", 200)
        now = time.perf_counter() - started
        polls += 1
        status = str(got["status"])
        seen.setdefault(status, now)
        if status == "succeeded":
            if got.get("delivered") != expected or len(got.get("images") or []) != expected:
                raise BenchError(f"generation {gen_id} succeeded without its images: {got}")
            return Generation(gen_id, posted_at, accepted, now, seen, polls, got)
        if status in TERMINAL:
            raise BenchError(f"generation {gen_id} ended {status}: {got.get('failure')}")
        if now > GENERATION_TIMEOUT_S:
            raise BenchError(f"generation {gen_id} still {status} after {now:.0f} s")
        await asyncio.sleep(poll_s)


def parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


# --- where a generation's time goes -------------------------------------------------------------


# Points on a generation's timeline, in order, each in seconds from the POST.
POINTS = (
    "row_created",  # generation row inserted (the create transaction's start)
    "requested_published",  # generation.requested.v1 relayed to RabbitMQ
    "billing_received",  # billing's consumer took it (its inbox row)
    "reserved_published",  # billing.credits.reserved.v1 relayed
    "generation_received",  # generation's consumer took it: status queued, jobs woken
    "launch_started",  # the launch step began (launch_attempted_at)
    "provider_created",  # the prediction exists at the emulator
    "provider_started",
    "provider_completed",
    "webhook_received",  # the `completed` webhook reached generation (via the gateway)
    "finished",  # the image stored, status succeeded committed
    "observed",  # the client's GET first showed succeeded
)
# Segments between points, named for what takes the time. A wake-up the job loop missed
# shows as a wake_to_launch_s near the loop's poll interval (GENERATION_WORK_POLL_INTERVAL_S).
SEGMENTS = {
    "hold_saga_s": ("row_created", "generation_received"),
    "wake_to_launch_s": ("generation_received", "launch_started"),
    "launch_to_provider_s": ("launch_started", "provider_created"),
    "provider_start_delay_s": ("provider_created", "provider_started"),
    "provider_processing_s": ("provider_started", "provider_completed"),
    "completion_to_webhook_s": ("provider_completed", "webhook_received"),
    "ingest_s": ("webhook_received", "finished"),
    "finished_to_observed_s": ("finished", "observed"),
}


def _seconds(posted: datetime, moment: datetime | None) -> float | None:
    return None if moment is None else round((moment - posted).total_seconds(), 4)


async def timeline(stack: FullPlatform, gen: Generation) -> dict[str, float | None]:
    """Every point of ``gen``'s path, in seconds from its POST."""
    gid = uuid.UUID(gen.id)
    posted = datetime.fromtimestamp(gen.posted_at, tz=UTC)
    ((created, launched, finished, prediction_id),) = stack.admin_sql(
        "SELECT created_at, launch_attempted_at, finished_at, provider_prediction_id "
        "FROM generation.generations WHERE id = %s",
        gid,
    )
    requested = stack.admin_sql(
        "SELECT event_id, published_at FROM generation.outbox "
        "WHERE routing_key = 'generation.generation.requested.v1' "
        "AND payload->>'generation_id' = %s",
        gen.id,
    )
    reserved = stack.admin_sql(
        "SELECT event_id, published_at FROM billing.outbox "
        "WHERE routing_key = 'billing.credits.reserved.v1' AND payload->>'job_id' = %s",
        gen.id,
    )
    if not requested or not reserved:
        raise BenchError(f"generation {gen.id}: saga events not found ({requested}, {reserved})")
    billing_in = stack.admin_sql(
        "SELECT min(received_at) FROM billing.inbox WHERE event_id = %s", requested[0][0]
    )
    generation_in = stack.admin_sql(
        "SELECT min(received_at) FROM generation.inbox WHERE event_id = %s", reserved[0][0]
    )
    webhook = stack.admin_sql(
        "SELECT min(received_at) FROM generation.replicate_webhooks "
        "WHERE provider_id = %s AND status = 'succeeded'",
        prediction_id,
    )
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(
            f"{stack.replicate_url}/v1/predictions/{prediction_id}",
            headers={"Authorization": f"Bearer {stack.cfg.replicate_api_token}"},
        )
    if response.status_code != 200:
        raise BenchError(f"the emulator's prediction {prediction_id}: {response.status_code}")
    prediction = response.json()
    moments = {
        "row_created": created,
        "requested_published": requested[0][1],
        "billing_received": billing_in[0][0],
        "reserved_published": reserved[0][1],
        "generation_received": generation_in[0][0],
        "launch_started": launched,
        "provider_created": parse_iso(prediction.get("created_at")),
        "provider_started": parse_iso(prediction.get("started_at")),
        "provider_completed": parse_iso(prediction.get("completed_at")),
        "webhook_received": webhook[0][0],
        "finished": finished,
    }
    points = {name: _seconds(posted, moment) for name, moment in moments.items()}
    points["observed"] = round(gen.end_to_end_s, 4)
    return points


def segments(gen: Generation, points: dict[str, float | None]) -> dict[str, float | None]:
    """The time between consecutive points, by what takes it (None where a point is missing)."""
    out: dict[str, float | None] = {"post_to_202_s": round(gen.accepted_s, 4)}
    for name, (start, end) in SEGMENTS.items():
        a, b = points.get(start), points.get(end)
        out[name] = None if a is None or b is None else round(b - a, 4)
    return out


def median_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 4) if present else None


def late_launches(parts: list[dict[str, float | None]]) -> int:
    """Generations launched ``LATE_LAUNCH_S`` or more after their reservation arrived."""
    return sum(1 for p in parts if (p.get("wake_to_launch_s") or 0.0) >= LATE_LAUNCH_S)
