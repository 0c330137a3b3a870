"""Start-up configuration of the Replicate emulator."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from visiona.emulators._delivery import retry_delays_from_env
from visiona.emulators._state import fresh_from_env, state_dir_from_env

DEFAULT_PORT = 8103
DEFAULT_API_TOKEN = "r8_visiona_local"  # noqa: S105 - a published dev-only token
DEFAULT_OWNER = "visiona"
# A published dev-only signing secret (base64 of 32 bytes, as Replicate's are).
DEFAULT_WEBHOOK_SECRET = "whsec_mxIUdZdP3LL3x87TgJEJpB/AeQZKy4osMTPpBm1FWuk="  # noqa: S105
DEFAULT_TRAINER = "ostris/flux-dev-lora-trainer"
DEFAULT_TRAINER_VERSION = "d8aa01550cc45369716371bfc0ed16f697fd87eef9d73edcc5e328abcb46c485"
DEFAULT_RETRY_DELAYS_S: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)
# Replicate deletes the output files of API predictions one hour after they complete.
DEFAULT_OUTPUT_TTL_S = 3600.0


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    """Start-up configuration; the timings can be changed at run time via ``/_emulator/config``.

    ``public_url`` is the base of the output and weights URLs handed out (default: the base URL
    of the request that reads the prediction or training). ``owner`` is the account the token
    belongs to, reported by ``GET /v1/account``.
    """

    api_token: str = DEFAULT_API_TOKEN
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    public_url: str | None = None
    owner: str = DEFAULT_OWNER
    trainer: str = DEFAULT_TRAINER
    trainer_version: str = DEFAULT_TRAINER_VERSION
    start_delay_s: float = 0.5
    training_duration_s: float = 10.0
    prediction_duration_s: float = 1.0
    log_interval_s: float = 1.0
    output_ttl_s: float = DEFAULT_OUTPUT_TTL_S
    retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S
    # Where the state is kept across restarts (visiona.emulators._state); None: memory only.
    state_dir: Path | None = None
    # Start empty, forgetting what ``state_dir`` holds.
    fresh: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        """Read ``REPLICATE_EMULATOR_API_TOKEN``, ``_WEBHOOK_SECRET``, ``_PUBLIC_URL``,
        ``_TRAINING_DURATION_S``, ``_PREDICTION_DURATION_S``, ``_START_DELAY_S``,
        ``_LOG_INTERVAL_S`` and ``_RETRY_DELAYS_S`` (comma-separated seconds), and
        ``VISIONA_EMULATOR_STATE_DIR`` and ``VISIONA_EMULATOR_FRESH``."""
        env = os.environ
        defaults = cls()
        return cls(
            api_token=env.get("REPLICATE_EMULATOR_API_TOKEN", "").strip() or DEFAULT_API_TOKEN,
            webhook_secret=env.get("REPLICATE_EMULATOR_WEBHOOK_SECRET", "").strip()
            or DEFAULT_WEBHOOK_SECRET,
            public_url=env.get("REPLICATE_EMULATOR_PUBLIC_URL", "").strip().rstrip("/") or None,
            training_duration_s=_float(
                "REPLICATE_EMULATOR_TRAINING_DURATION_S", defaults.training_duration_s
            ),
            prediction_duration_s=_float(
                "REPLICATE_EMULATOR_PREDICTION_DURATION_S", defaults.prediction_duration_s
            ),
            start_delay_s=_float("REPLICATE_EMULATOR_START_DELAY_S", defaults.start_delay_s),
            log_interval_s=_float("REPLICATE_EMULATOR_LOG_INTERVAL_S", defaults.log_interval_s),
            retry_delays_s=retry_delays_from_env(
                "REPLICATE_EMULATOR_RETRY_DELAYS_S", defaults.retry_delays_s
            ),
            state_dir=state_dir_from_env(),
            fresh=fresh_from_env(),
        )
