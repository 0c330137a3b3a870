"""The FastAPI app: the ``/v1`` API, the output files, and the ``/_emulator`` controls."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from visiona.emulators import _server
from visiona.emulators._delivery import add_delivery_routes
from visiona.emulators._state import StateFile, state_path
from visiona.emulators.replicate import _media, _persist
from visiona.emulators.replicate._config import DEFAULT_PORT, Settings
from visiona.emulators.replicate._errors import ProblemError, conflict, invalid, not_found
from visiona.emulators.replicate._jobs import EMULATED_FAILURE, Runner, Tuning, job_object
from visiona.emulators.replicate._store import (
    EVENTS,
    JSON,
    Job,
    JobKind,
    Store,
    job_id,
    now_iso,
    page,
)
from visiona.emulators.replicate._webhooks import DeliveryConfig, Dispatcher

DEFAULT_WAIT_S = 60.0
UPLOAD_TTL_S = 24 * 3600.0


class ConfigPatch(BaseModel):
    """Body of ``POST /_emulator/config``; only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    start_delay_s: float = Field(default=0.0, ge=0)
    training_duration_s: float = Field(default=0.0, ge=0)
    prediction_duration_s: float = Field(default=0.0, ge=0)
    log_interval_s: float = Field(default=0.0, ge=0)
    output_ttl_s: float = Field(default=0.0, ge=0)
    latency_ms: float = Field(default=0.0, ge=0)
    answer_delay_ms: float = Field(default=0.0, ge=0)
    file_latency_ms: float = Field(default=0.0, ge=0)
    fail_next_trainings: int = Field(default=0, ge=0)
    fail_next_predictions: int = Field(default=0, ge=0)
    drop_webhooks: bool = False
    paused_deliveries: bool = False
    retry_delays_s: list[float] = Field(default_factory=list)


class FinishBody(BaseModel):
    """Body of ``POST /_emulator/{trainings|predictions}/{id}/finish``."""

    model_config = ConfigDict(extra="forbid")

    status: str = Field(default="succeeded", pattern="^(succeeded|failed|canceled)$")
    error: str | None = None


def _problem(error: ProblemError) -> JSONResponse:
    return JSONResponse(
        error.body(), status_code=error.status, media_type="application/problem+json"
    )


async def _json_body(request: Request) -> JSON:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ProblemError(400, "Request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProblemError(400, "Request body must be a JSON object.")
    return data


def _wait_seconds(prefer: str | None) -> float | None:
    """``Prefer: wait`` (60 s) or ``Prefer: wait=N``; None when the client does not wait."""
    for part in (prefer or "").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "wait":
            try:
                return float(value) if value.strip() else DEFAULT_WAIT_S
            except ValueError:
                raise invalid(f"Invalid Prefer header: {prefer}") from None
    return None


def _webhook_params(body: JSON) -> tuple[str | None, frozenset[str]]:
    webhook = body.get("webhook")
    if webhook is not None and (
        not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))
    ):
        raise invalid("webhook must be an http(s) URL.")
    events = body.get("webhook_events_filter")
    if events is None:
        return webhook, EVENTS
    if not isinstance(events, list) or not set(events) <= EVENTS:
        raise invalid(f"webhook_events_filter must be a list of {sorted(EVENTS)}.")
    # start and completed are always sent.
    return webhook, frozenset(events) | {"start", "completed"}


def _prediction_input(body: JSON) -> JSON:
    data = body.get("input")
    if not isinstance(data, dict):
        raise invalid("input is required and must be an object.")
    num = data.get("num_outputs", 1)
    if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= 4:
        raise invalid("input.num_outputs: must be an integer from 1 to 4.")
    fmt = data.get("output_format", "webp")
    if fmt not in _media.OUTPUT_FORMATS:
        raise invalid("input.output_format: must be one of webp, jpg, png.")
    return data


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the emulator app; ``settings`` default to :meth:`Settings.from_env`."""
    settings = settings or Settings.from_env()
    store = Store()
    dispatcher = Dispatcher(DeliveryConfig(settings.webhook_secret, list(settings.retry_delays_s)))
    state_file = StateFile(state_path("replicate", settings.state_dir), fresh=settings.fresh)
    unfinished = _persist.restore(state_file, store, dispatcher)

    def fresh_tuning() -> Tuning:
        return Tuning(
            start_delay_s=settings.start_delay_s,
            training_duration_s=settings.training_duration_s,
            prediction_duration_s=settings.prediction_duration_s,
            log_interval_s=settings.log_interval_s,
            output_ttl_s=settings.output_ttl_s,
        )

    runner = Runner(store, dispatcher, fresh_tuning())

    def seed() -> None:
        owner, name = settings.trainer.split("/", 1)
        trainer = store.models.get((owner, name)) or store.create_model(
            owner, name, {"visibility": "public", "hardware": "gpu-h100", "description": None}
        )
        trainer.description = "Fast FLUX LoRA training (emulated)."
        if settings.trainer_version not in trainer.versions:
            trainer.add_version(settings.trainer_version)

    def save() -> None:
        _persist.sync(state_file, store, dispatcher)

    seed()
    save()
    runner.changed = dispatcher.changed = save

    def resume() -> None:
        """The jobs and deliveries a previous run left unfinished."""
        dispatcher.resume()
        for job in unfinished:
            runner.resume(job)

    app = _server.persisted_app("Replicate emulator", state_file, save, resume)
    app.state.store, app.state.dispatcher, app.state.runner = store, dispatcher, runner

    def public_base(request: Request) -> str:
        return settings.public_url or str(request.base_url).rstrip("/")

    @app.exception_handler(ProblemError)
    async def problem_error(_request: Request, exc: ProblemError) -> Response:
        return _problem(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return _problem(ProblemError(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        return _problem(invalid(f"Invalid request body: {exc.errors()}"))

    @app.middleware("http")
    async def api_gate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.startswith("/v1/"):
            if runner.tuning.latency_ms > 0:
                await asyncio.sleep(runner.tuning.latency_ms / 1000)
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(
                token.strip().encode(), settings.api_token.encode()
            ):
                return _problem(ProblemError(401, "You did not pass a valid authentication token"))
            response = await call_next(request)
            if runner.tuning.answer_delay_ms > 0:
                await asyncio.sleep(runner.tuning.answer_delay_ms / 1000)
            return response
        return await call_next(request)

    # Models and versions ---------------------------------------------------------------------

    @app.post("/v1/models", status_code=201)
    async def create_model(request: Request) -> JSON:
        body = await _json_body(request)
        owner, name = body.get("owner"), body.get("name")
        if not isinstance(owner, str) or not owner or not isinstance(name, str) or not name:
            raise invalid("owner and name are required.")
        return store.create_model(owner, name, body).as_json()

    @app.get("/v1/models/{owner}/{name}")
    async def get_model(owner: str, name: str) -> JSON:
        return store.model(owner, name).as_json()

    @app.delete("/v1/models/{owner}/{name}", status_code=204)
    async def delete_model(owner: str, name: str) -> Response:
        store.delete_model(owner, name)
        return Response(status_code=204)

    @app.get("/v1/models/{owner}/{name}/versions")
    async def list_versions(owner: str, name: str) -> JSON:
        return page(list(reversed(store.model(owner, name).versions.values())))

    @app.get("/v1/models/{owner}/{name}/versions/{vid}")
    async def get_version(owner: str, name: str, vid: str) -> JSON:
        version = store.model(owner, name).versions.get(vid)
        if version is None:
            raise not_found(f"Version {vid} of {owner}/{name} not found.")
        return version

    @app.delete("/v1/models/{owner}/{name}/versions/{vid}", status_code=204)
    async def delete_version(owner: str, name: str, vid: str) -> Response:
        if store.model(owner, name).versions.pop(vid, None) is None:
            raise not_found(f"Version {vid} of {owner}/{name} not found.")
        return Response(status_code=204)

    # Jobs ------------------------------------------------------------------------------------

    def new_job(kind: JobKind, request: Request, body: JSON, model: str, version: str) -> Job:
        webhook, events = _webhook_params(body)
        data = job_object(kind, job_id(), model, version, body, str(request.base_url).rstrip("/"))
        job = Job(
            kind=kind,
            data=data,
            base_url=public_base(request),
            webhook=webhook,
            events=events,
            fail_with=runner.take_failure(kind),
            done=asyncio.Event(),
        )
        store.jobs(kind)[job.id] = job
        runner.launch(job)
        return job

    def find_job(kind: JobKind, jid: str) -> Job:
        job = store.jobs(kind).get(jid)
        if job is None:
            raise not_found(f"{kind.capitalize()} {jid} not found.")
        return job

    def add_job_routes(kind: JobKind) -> None:
        """``GET /v1/{kind}s``, ``GET /v1/{kind}s/{id}`` and ``POST /v1/{kind}s/{id}/cancel``."""

        @app.get(f"/v1/{kind}s")
        async def list_jobs() -> JSON:
            return page([j.data for j in reversed(store.jobs(kind).values())])

        @app.get(f"/v1/{kind}s/{{jid}}")
        async def get_job(jid: str) -> JSON:
            return find_job(kind, jid).data

        @app.post(f"/v1/{kind}s/{{jid}}/cancel")
        async def cancel_job(jid: str) -> JSON:
            job = find_job(kind, jid)
            runner.finish(job, "canceled")
            return job.data

    add_job_routes("training")
    add_job_routes("prediction")

    @app.post("/v1/models/{owner}/{name}/versions/{vid}/trainings", status_code=201)
    async def create_training(owner: str, name: str, vid: str, request: Request) -> JSON:
        body = await _json_body(request)
        model = store.model(owner, name)
        if vid not in model.versions:
            raise not_found(f"Version {vid} of {owner}/{name} not found.")
        destination = body.get("destination")
        if not isinstance(destination, str) or destination.count("/") != 1:
            raise invalid("destination is required, as 'owner/name'.")
        dest_owner, dest_name = destination.split("/")
        if (dest_owner, dest_name) not in store.models:
            raise not_found(f"The destination model {destination} does not exist: create it first.")
        data_input = body.get("input")
        images = data_input.get("input_images") if isinstance(data_input, dict) else None
        if not isinstance(images, str) or not images:
            raise invalid("input.input_images is required (the URL of a zip of images).")
        if not images.startswith(("http://", "https://")):
            raise invalid("input.input_images must be an http(s) URL.")
        return new_job("training", request, body, f"{owner}/{name}", vid).data

    async def answer_prediction(job: Job, request: Request) -> Response:
        wait_s = _wait_seconds(request.headers.get("prefer"))
        if wait_s is not None and wait_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.done.wait(), wait_s)
        return JSONResponse(job.data, status_code=201)

    @app.post("/v1/predictions", status_code=201, response_model=None)
    async def create_prediction(request: Request) -> Response:
        body = await _json_body(request)
        ref = body.get("version")
        if not isinstance(ref, str) or not ref:
            raise invalid("version is required.")
        _prediction_input(body)
        model, version = store.find_version(ref)
        model.run_count += 1
        job = new_job(
            "prediction", request, body, f"{model.owner}/{model.name}", str(version["id"])
        )
        return await answer_prediction(job, request)

    @app.post("/v1/models/{owner}/{name}/predictions", status_code=201, response_model=None)
    async def create_model_prediction(owner: str, name: str, request: Request) -> Response:
        body = await _json_body(request)
        _prediction_input(body)
        model = store.model(owner, name)
        latest = next(reversed(model.versions.values()), None)
        if latest is None:
            raise not_found(f"Model {owner}/{name} has no versions.")
        model.run_count += 1
        job = new_job("prediction", request, body, f"{owner}/{name}", str(latest["id"]))
        return await answer_prediction(job, request)

    # Files, webhook secret, account ---------------------------------------------------------

    @app.post("/v1/files", status_code=201)
    async def upload_file(request: Request) -> JSON:
        form = await request.form()
        upload = form.get("content")
        if upload is None or isinstance(upload, str):
            raise invalid("A multipart file field named 'content' is required.")
        content = await upload.read()
        raw_metadata = form.get("metadata")
        metadata = json.loads(raw_metadata) if isinstance(raw_metadata, str) else {}
        fid = job_id()
        now = time.time()
        md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
        record: JSON = {
            "id": fid,
            "name": upload.filename or "file",
            "content_type": upload.content_type or "application/octet-stream",
            "size": len(content),
            "etag": md5,
            "checksums": {"sha256": hashlib.sha256(content).hexdigest(), "md5": md5},
            "metadata": metadata,
            "created_at": now_iso(now),
            "expires_at": now_iso(now + UPLOAD_TTL_S),
            "urls": {"get": f"{str(request.base_url).rstrip('/')}/v1/files/{fid}"},
        }
        store.put_upload(record, content)
        return record

    @app.get("/v1/files")
    async def list_files() -> JSON:
        return page([record for record, _ in reversed(store.uploads.values())])

    @app.get("/v1/files/{fid}")
    async def get_file(fid: str) -> JSON:
        if fid not in store.uploads:
            raise not_found(f"File {fid} not found.")
        return store.uploads[fid][0]

    @app.get("/v1/files/{fid}/download")
    async def download_file(fid: str) -> Response:
        if fid not in store.uploads:
            raise not_found(f"File {fid} not found.")
        record, content = store.uploads[fid]
        return Response(content, media_type=str(record["content_type"]))

    @app.delete("/v1/files/{fid}", status_code=204)
    async def delete_file(fid: str) -> Response:
        if not store.delete_upload(fid):
            raise not_found(f"File {fid} not found.")
        return Response(status_code=204)

    @app.get("/v1/webhooks/default/secret")
    async def webhook_secret() -> dict[str, str]:
        return {"key": dispatcher.config.secret}

    @app.get("/v1/account")
    async def account() -> dict[str, Any]:
        return {"type": "organization", "username": settings.owner, "name": settings.owner}

    @app.get("/files/{path:path}")
    async def output_file(path: str) -> Response:
        if runner.tuning.file_latency_ms > 0:
            await asyncio.sleep(runner.tuning.file_latency_ms / 1000)
        stored = store.get_output(path)
        if stored is None:
            raise not_found("File not found or expired.")
        return Response(stored.content, media_type=stored.content_type)

    # Emulator controls ----------------------------------------------------------------------

    def config_view() -> dict[str, Any]:
        t = runner.tuning
        return {
            "start_delay_s": t.start_delay_s,
            "training_duration_s": t.training_duration_s,
            "prediction_duration_s": t.prediction_duration_s,
            "log_interval_s": t.log_interval_s,
            "output_ttl_s": t.output_ttl_s,
            "latency_ms": t.latency_ms,
            "answer_delay_ms": t.answer_delay_ms,
            "file_latency_ms": t.file_latency_ms,
            "fail_next_trainings": t.fail_next_trainings,
            "fail_next_predictions": t.fail_next_predictions,
            "drop_webhooks": dispatcher.config.drop,
            "paused_deliveries": dispatcher.config.paused,
            "retry_delays_s": list(dispatcher.config.retry_delays_s),
        }

    @app.get("/_emulator/config")
    async def get_config() -> dict[str, Any]:
        return config_view()

    @app.post("/_emulator/config")
    async def set_config(patch: ConfigPatch) -> dict[str, Any]:
        sent = patch.model_fields_set
        for name in sent & set(vars(runner.tuning)):
            setattr(runner.tuning, name, getattr(patch, name))
        if "drop_webhooks" in sent:
            dispatcher.config.drop = patch.drop_webhooks
        if "paused_deliveries" in sent:
            dispatcher.set_paused(patch.paused_deliveries)
        if "retry_delays_s" in sent:
            if any(d < 0 for d in patch.retry_delays_s):
                raise invalid("retry_delays_s must not be negative.")
            dispatcher.config.retry_delays_s = list(patch.retry_delays_s)
        return config_view()

    @app.post("/_emulator/reset")
    async def reset() -> dict[str, Any]:
        for job in [*store.trainings.values(), *store.predictions.values()]:
            if job.task is not None:
                job.task.cancel()
        store.clear()
        dispatcher.reset()
        dispatcher.config.drop = False
        dispatcher.set_paused(False)
        dispatcher.config.retry_delays_s = list(settings.retry_delays_s)
        runner.tuning = fresh_tuning()
        seed()
        return config_view()

    async def finish_job(kind: JobKind, jid: str, body: FinishBody | None) -> JSON:
        job = find_job(kind, jid)
        if job.finished:
            raise conflict(f"{kind.capitalize()} {jid} has already ended ({job.data['status']}).")
        body = body or FinishBody()
        runner.finish(job, body.status, body.error or EMULATED_FAILURE)
        return job.data

    @app.post("/_emulator/trainings/{jid}/finish")
    async def finish_training(jid: str, body: FinishBody | None = None) -> JSON:
        return await finish_job("training", jid, body)

    @app.post("/_emulator/predictions/{jid}/finish")
    async def finish_prediction(jid: str, body: FinishBody | None = None) -> JSON:
        return await finish_job("prediction", jid, body)

    @app.get("/_emulator/trainings")
    async def applied_trainings() -> list[JSON]:
        """Every training the emulator holds, oldest first, answered at once: what a test
        sees the moment a create is applied, while ``answer_delay_ms`` holds its answer."""
        return [j.data for j in store.jobs("training").values()]

    @app.post("/_emulator/expire-outputs")
    async def expire_outputs() -> dict[str, int]:
        return {"expired": store.expire_outputs()}

    add_delivery_routes(app, dispatcher)

    @app.post("/_emulator/deliveries/{webhook_id}/redeliver")
    async def redeliver(webhook_id: str) -> dict[str, Any]:
        if webhook_id not in dispatcher.messages:
            raise not_found(f"No webhook message {webhook_id}.")
        return await dispatcher.redeliver(webhook_id)

    return app


serve = _server.Foreground(create_app, DEFAULT_PORT)
