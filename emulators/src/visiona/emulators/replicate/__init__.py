"""Local stand-in for the Replicate API: models and versions, LoRA trainings, image predictions
with expiring output files, uploaded files and Standard Webhooks. Dev and test only. Its
state survives restarts in ``Settings.state_dir`` (``--state-dir``,
``VISIONA_EMULATOR_STATE_DIR``; visiona.emulators._state): a job running when it stopped goes
on by the clock, undelivered webhooks are sent.

Point the real SDK at it::

    replicate.Client(api_token="r8_visiona_local", base_url="http://127.0.0.1:8103")

Answers are Replicate's JSON, errors problem+json (the SDK raises ``ReplicateError``). The
trainer ``ostris/flux-dev-lora-trainer`` (version ``Settings.trainer_version``) exists at start;
``POST /v1/models/{o}/{n}/versions/{vid}/trainings`` downloads ``input.input_images`` (must be a
zip holding an image) after ``start_delay_s`` (``starting``), runs for ``training_duration_s``
(``processing``, a progress line like the trainer's tqdm bar every ``log_interval_s``: percent,
``steps`` done of ``input.steps``) and adds a new version to the destination, answering
``output = {"version": "o/n:id", "weights": url}``.
Predictions (``POST /v1/predictions`` or ``/v1/models/{o}/{n}/predictions``, ``Prefer: wait[=N]``
honoured) run for ``prediction_duration_s`` and answer ``input.num_outputs`` (1 to 4) generated
images in ``input.output_format`` (webp|jpg|png). Output and weights files are served under
``/files/...`` without auth and deleted ``output_ttl_s`` after completion (an hour by default,
as Replicate does). Other endpoints: ``GET /v1/trainings``, ``/v1/predictions``,
``POST .../{id}/cancel``, ``GET /v1/models/{o}/{n}[/versions[/{id}]]``, their ``DELETE``,
``POST|GET|DELETE /v1/files``, ``GET /v1/webhooks/default/secret``, ``GET /v1/account``.

Webhooks: the object is POSTed to ``webhook`` on the ``start``, ``output``, ``logs`` (at most
every 0.5 s) and ``completed`` events allowed by ``webhook_events_filter`` (``start`` is sent on
creation), signed as Standard Webhooks (``webhook-id`` per event, kept by its retries) so that
``replicate.webhooks.validate`` accepts them; non-2xx answers are retried after each of
``retry_delays_s``.

Emulator controls (JSON): ``GET|POST /_emulator/config`` (``start_delay_s``,
``training_duration_s``, ``prediction_duration_s``, ``log_interval_s``, ``output_ttl_s``,
``latency_ms`` (before a request is handled), ``answer_delay_ms`` (after it was applied,
before the answer), ``file_latency_ms`` (before an output file is served), ``fail_next_trainings``, ``fail_next_predictions``, ``drop_webhooks``,
``paused_deliveries``, ``retry_delays_s``); ``POST /_emulator/reset`` (state, deliveries and
config back to start-up); ``POST /_emulator/{trainings|predictions}/{id}/finish``
``{"status": "succeeded"|"failed"|"canceled", "error"?}``; ``GET /_emulator/trainings`` (every
training held, never delayed); ``POST /_emulator/expire-outputs``;
``GET /_emulator/deliveries``; ``POST /_emulator/deliveries/{webhook_id}/redeliver``.
Start-up values come from ``REPLICATE_EMULATOR_*`` environment variables, see
:meth:`Settings.from_env`.
"""

from __future__ import annotations

from visiona.emulators.replicate._app import ConfigPatch, create_app, serve
from visiona.emulators.replicate._config import (
    DEFAULT_API_TOKEN,
    DEFAULT_OWNER,
    DEFAULT_PORT,
    DEFAULT_RETRY_DELAYS_S,
    DEFAULT_TRAINER,
    DEFAULT_TRAINER_VERSION,
    DEFAULT_WEBHOOK_SECRET,
    Settings,
)

__all__ = [
    "DEFAULT_API_TOKEN",
    "DEFAULT_OWNER",
    "DEFAULT_PORT",
    "DEFAULT_RETRY_DELAYS_S",
    "DEFAULT_TRAINER",
    "DEFAULT_TRAINER_VERSION",
    "DEFAULT_WEBHOOK_SECRET",
    "ConfigPatch",
    "Settings",
    "create_app",
    "serve",
]
