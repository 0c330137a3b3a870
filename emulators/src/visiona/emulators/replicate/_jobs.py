"""The lifecycle of predictions and trainings: ``starting → processing → succeeded | failed |
canceled``, each run by a background task of the serving loop (created by the request that
made the job, so no lifespan is needed)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from visiona.emulators.replicate import _media
from visiona.emulators.replicate._store import JSON, Job, Store, now_iso, version_id
from visiona.emulators.replicate._webhooks import Dispatcher

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 30.0
# Replicate sends ``logs`` events at most this often.
LOGS_EVENT_INTERVAL_S = 0.5
EMULATED_FAILURE = "emulated failure"


@dataclass
class Tuning:
    """The run-time knobs of ``/_emulator/config`` (webhook ones live on the dispatcher)."""

    start_delay_s: float
    training_duration_s: float
    prediction_duration_s: float
    log_interval_s: float
    output_ttl_s: float
    latency_ms: float = 0.0
    # Extra time before answering a request already applied (a lost answer, when the caller
    # gives up or dies meanwhile).
    answer_delay_ms: float = 0.0
    # Time before an output or weights file is served (slow downloads).
    file_latency_ms: float = 0.0
    fail_next_trainings: int = 0
    fail_next_predictions: int = 0


@dataclass
class Runner:
    store: Store
    dispatcher: Dispatcher
    tuning: Tuning

    # Told after every change the lifecycle makes (the state is saved then).
    changed: Callable[[], None] | None = None

    def launch(self, job: Job) -> None:
        """Announce the new job and start its lifecycle task."""
        self._event(job, "start")
        self.resume(job)

    def resume(self, job: Job) -> None:
        """Run (or go on running, after a restart) the job's lifecycle."""
        job.task = asyncio.get_running_loop().create_task(self._run(job))

    def _changed(self) -> None:
        if self.changed is not None:
            self.changed()

    def take_failure(self, kind: str) -> str | None:
        """Consume one of the ``fail_next_*`` budget, if any is left."""
        if kind == "training" and self.tuning.fail_next_trainings > 0:
            self.tuning.fail_next_trainings -= 1
            return EMULATED_FAILURE
        if kind == "prediction" and self.tuning.fail_next_predictions > 0:
            self.tuning.fail_next_predictions -= 1
            return EMULATED_FAILURE
        return None

    def finish(self, job: Job, status: str, error: str | None = None) -> None:
        """End ``job`` now (no-op when it has ended); cancels its task unless called from it."""
        if job.finished:
            return
        if job.task is not None and job.task is not asyncio.current_task():
            job.task.cancel()
        data = job.data
        now = time.time()
        data["status"] = status
        data["completed_at"] = now_iso(now)
        if data["started_at"] is None and status != "canceled":
            data["started_at"] = data["completed_at"]
        data["error"] = error if status == "failed" else None
        data["metrics"] = {**data["metrics"], "total_time": round(now - job.created, 3)}
        if status == "succeeded":
            data["output"] = self._make_output(job)
            data["logs"] += "done\n"
            self._event(job, "output")
        elif status == "failed":
            data["logs"] += f"error: {error}\n"
        job.done.set()
        self._event(job, "completed")
        self._changed()

    async def _run(self, job: Job) -> None:
        """The job's lifecycle from wherever it is: a job restored after a restart goes on
        by the clock (a training that should have ended meanwhile ends at once)."""
        try:
            if job.data["status"] == "starting":
                await asyncio.sleep(max(0.0, job.created + self.tuning.start_delay_s - time.time()))
                if job.kind == "training":
                    problem = await _fetch_training_images(str(job.data["input"]["input_images"]))
                    if problem is not None:
                        self.finish(job, "failed", problem)
                        return
            await self._process(job)
            if job.fail_with is not None:
                self.finish(job, "failed", job.fail_with)
            else:
                self.finish(job, "succeeded")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s %s crashed", job.kind, job.id)
            self.finish(job, "failed", f"emulator error: {exc}")

    async def _process(self, job: Job) -> None:
        data = job.data
        if job.started is None or data["status"] != "processing":
            data["status"] = "processing"
            job.started = time.time()
            data["started_at"] = now_iso(job.started)
            data["logs"] += (
                "Downloading input_images...\nStarting training\n"
                if job.kind == "training"
                else f"Using seed: {int(job.started) % 100000}\nRunning prediction\n"
            )
            data["metrics"] = {"predict_time": 0.0}
            self._logs_event(job)
            self._changed()
        started = job.started
        duration = (
            self.tuning.training_duration_s
            if job.kind == "training"
            else self.tuning.prediction_duration_s
        )
        deadline = started + duration
        fraction = 0.0
        while (remaining := deadline - time.time()) > 0:
            interval = self.tuning.log_interval_s
            await asyncio.sleep(min(interval, remaining) if interval > 0 else remaining)
            elapsed = time.time() - started
            fraction = min(1.0, elapsed / duration) if duration > 0 else 1.0
            self._progress(job, fraction, elapsed)
        if 0.0 < fraction < 1.0:
            # The sleep woke a hair before the deadline (asyncio's clock is not time.time()):
            # a finished job's logs end at 100 %, as the real trainer's do.
            self._progress(job, 1.0, max(duration, time.time() - started))

    def _progress(self, job: Job, fraction: float, elapsed: float) -> None:
        data = job.data
        data["logs"] += (
            _trainer_progress(job, fraction, elapsed)
            if job.kind == "training"
            else f"progress {int(100 * fraction)}% ({elapsed:.1f}s)\n"
        )
        data["metrics"] = {"predict_time": round(elapsed, 3)}
        self._logs_event(job)
        self._changed()

    def _make_output(self, job: Job) -> object:
        base = job.base_url
        ttl = self.tuning.output_ttl_s
        if job.kind == "prediction":
            data_input = job.data["input"]
            fmt = str(data_input.get("output_format") or "webp")
            prompt = str(data_input.get("prompt") or "")
            urls = []
            for index in range(int(data_input.get("num_outputs") or 1)):
                path = f"outputs/{job.id}/{index}.{fmt}"
                ratio = str(data_input.get("aspect_ratio") or "1:1")
                image = _media.render_image(prompt, index, fmt, ratio)
                self.store.put_output(path, image, _media.OUTPUT_FORMATS[fmt][1], ttl)
                urls.append(f"{base}/files/{path}")
            return urls
        owner, name = str(job.data["destination"]).split("/", 1)
        version = self.store.model(owner, name).add_version(version_id())
        path = f"weights/{job.id}/trained_model.tar"
        self.store.put_output(path, _media.weights_tar(), "application/x-tar", ttl)
        return {"version": f"{owner}/{name}:{version['id']}", "weights": f"{base}/files/{path}"}

    def _logs_event(self, job: Job) -> None:
        now = time.monotonic()
        if now - job.last_logs_event >= LOGS_EVENT_INTERVAL_S:
            job.last_logs_event = now
            self._event(job, "logs")

    def _event(self, job: Job, event: str) -> None:
        if job.webhook is None or event not in job.events:
            return
        body = json.dumps(job.data, separators=(",", ":"))
        self.dispatcher.publish(job.webhook, job.id, event, body)


def _trainer_progress(job: Job, fraction: float, elapsed: float) -> str:
    """A progress line as the LoRA trainer's tqdm bar prints it: percent, bar, steps, times."""
    try:
        steps = max(1, int(job.data["input"].get("steps") or 1000))
    except (TypeError, ValueError):
        steps = 1000
    done = int(steps * fraction)
    rate = done / elapsed if elapsed > 0 else 0.0
    left = (steps - done) / rate if rate > 0 else 0.0
    bar = ("#" * int(10 * fraction)).ljust(10)
    return (
        f"flux_train_replicate: {int(100 * fraction):3d}%|{bar}| {done}/{steps} "
        f"[{_clock(elapsed)}<{_clock(left)}, {rate:.2f}it/s]\n"
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


async def _fetch_training_images(url: str) -> str | None:
    """Download ``input_images`` as the trainer would; why it is unusable, or None."""
    try:
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=True) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        return f"could not download input_images: {type(exc).__name__}: {exc}"
    if not response.is_success:
        return f"could not download input_images: HTTP {response.status_code}"
    return _media.training_images_problem(response.content)


def job_object(kind: str, jid: str, model: str, version: str, body: JSON, api_base: str) -> JSON:
    """The public object of a new job, as the create call answers it."""
    kind_path = "trainings" if kind == "training" else "predictions"
    data: JSON = {
        "id": jid,
        "model": model,
        "version": version,
        "status": "starting",
        "input": body.get("input") or {},
        "output": None,
        "logs": "",
        "error": None,
        "metrics": {},
        "created_at": now_iso(),
        "started_at": None,
        "completed_at": None,
        "urls": {
            "get": f"{api_base}/v1/{kind_path}/{jid}",
            "cancel": f"{api_base}/v1/{kind_path}/{jid}/cancel",
        },
    }
    if kind == "training":
        data["destination"] = body["destination"]
    else:
        data["data_removed"] = False
    return data
