"""Start-up configuration of the Stripe emulator."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visiona.emulators._delivery import retry_delays_from_env
from visiona.emulators._state import fresh_from_env, state_dir_from_env

DEFAULT_PORT = 8102
DEFAULT_API_KEY = "sk_test_visiona_local"
# A published dev-only secret: the emulator signs with it, local services verify with it.
DEFAULT_WEBHOOK_SECRET = "whsec_visiona_local_dev_secret"  # noqa: S105
DEFAULT_RETRY_DELAYS_S: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def load_prices(path: str | Path) -> tuple[dict[str, Any], ...]:
    """Read a prices file: a JSON list of ``{"id", "unit_amount", "currency",
    "recurring_interval", "product_name"}`` objects."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list) or not all(isinstance(p, dict) for p in data):
        raise ValueError(f"{path}: expected a JSON list of price objects")
    return tuple(data)


@dataclass(frozen=True)
class Settings:
    """Start-up configuration.

    ``prices`` are seeded at start and survive ``POST /_emulator/reset``. ``public_url`` is the
    base of the Checkout and billing portal URLs handed out (default: the base URL of the API
    request that created the session). ``webhook_url=None`` keeps events in memory only.
    """

    api_key: str = DEFAULT_API_KEY
    webhook_url: str | None = None
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S
    prices: Sequence[Mapping[str, Any]] = ()
    public_url: str | None = None
    # Where the state is kept across restarts (visiona.emulators._state); None: memory only.
    state_dir: Path | None = None
    # Start empty, forgetting what ``state_dir`` holds.
    fresh: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        """Read ``STRIPE_EMULATOR_API_KEY``, ``_WEBHOOK_URL``, ``_WEBHOOK_SECRET``,
        ``_RETRY_DELAYS_S`` (comma-separated seconds), ``_PRICES_FILE`` and ``_PUBLIC_URL``, and
        ``VISIONA_EMULATOR_STATE_DIR`` and ``VISIONA_EMULATOR_FRESH``."""
        env = os.environ
        prices_file = env.get("STRIPE_EMULATOR_PRICES_FILE", "").strip()
        return cls(
            api_key=env.get("STRIPE_EMULATOR_API_KEY", "").strip() or DEFAULT_API_KEY,
            webhook_url=env.get("STRIPE_EMULATOR_WEBHOOK_URL", "").strip() or None,
            webhook_secret=env.get("STRIPE_EMULATOR_WEBHOOK_SECRET", "").strip()
            or DEFAULT_WEBHOOK_SECRET,
            retry_delays_s=retry_delays_from_env(
                "STRIPE_EMULATOR_RETRY_DELAYS_S", DEFAULT_RETRY_DELAYS_S
            ),
            prices=load_prices(prices_file) if prices_file else (),
            public_url=env.get("STRIPE_EMULATOR_PUBLIC_URL", "").strip().rstrip("/") or None,
            state_dir=state_dir_from_env(),
            fresh=fresh_from_env(),
        )
