"""``visiona-emulator {anthropic|clerk|openai|replicate|stripe} [--host H] [--port P]``: run
one emulator with uvicorn.

Default ports come from ``ANTHROPIC_EMULATOR_PORT`` / ``CLERK_ISSUER_PORT`` /
``OPENAI_EMULATOR_PORT`` / ``REPLICATE_EMULATOR_PORT`` / ``STRIPE_EMULATOR_PORT``
(config/local.env), else 8101 / 8104 / 8105 / 8103 / 8102.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from visiona.emulators import anthropic, clerk, openai, replicate, stripe


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and serve the chosen emulator until interrupted."""
    parser = argparse.ArgumentParser(
        prog="visiona-emulator", description="Run one local provider emulator (dev and test only)."
    )
    sub = parser.add_subparsers(dest="emulator", required=True)
    defaults = {
        "anthropic": int(os.environ.get("ANTHROPIC_EMULATOR_PORT", anthropic.DEFAULT_PORT)),
        "clerk": int(os.environ.get("CLERK_ISSUER_PORT", clerk.DEFAULT_PORT)),
        "openai": int(os.environ.get("OPENAI_EMULATOR_PORT", openai.DEFAULT_PORT)),
        "replicate": int(os.environ.get("REPLICATE_EMULATOR_PORT", replicate.DEFAULT_PORT)),
        "stripe": int(os.environ.get("STRIPE_EMULATOR_PORT", stripe.DEFAULT_PORT)),
    }
    for name, port in defaults.items():
        p = sub.add_parser(name, help=f"run the {name} emulator")
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=port)
    sub.choices["clerk"].add_argument(
        "--key-dir",
        type=Path,
        default=None,
        help="default: $CLERK_DEV_KEY_DIR or <repo>/.dev/clerk",
    )
    for name in ("clerk", "replicate", "stripe"):
        sub.choices[name].add_argument(
            "--state-dir",
            type=Path,
            default=None,
            metavar="DIR",
            help=f"keep the state across restarts in DIR/{name}.sqlite3; "
            "default: $VISIONA_EMULATOR_STATE_DIR (none: in memory only)",
        )
        sub.choices[name].add_argument(
            "--fresh",
            action="store_true",
            help="start empty, forgetting the stored state ($VISIONA_EMULATOR_FRESH=1)",
        )
    stripe_cli = sub.choices["stripe"]
    stripe_cli.add_argument(
        "--webhook-url", default=None, help="default: $STRIPE_EMULATOR_WEBHOOK_URL (none)"
    )
    stripe_cli.add_argument(
        "--webhook-secret",
        default=None,
        help="default: $STRIPE_EMULATOR_WEBHOOK_SECRET or the dev secret",
    )
    stripe_cli.add_argument(
        "--prices",
        type=Path,
        default=None,
        metavar="FILE",
        help="JSON list of prices to seed; default: $STRIPE_EMULATOR_PRICES_FILE",
    )
    replicate_cli = sub.choices["replicate"]
    replicate_cli.add_argument(
        "--webhook-secret",
        default=None,
        help="default: $REPLICATE_EMULATOR_WEBHOOK_SECRET or the dev secret",
    )
    replicate_cli.add_argument(
        "--public-url", default=None, help="base of output file URLs; default: request's base"
    )
    for flag, field, env in [
        ("--start-delay", "start_delay_s", "$REPLICATE_EMULATOR_START_DELAY_S"),
        ("--training-duration", "training_duration_s", "$REPLICATE_EMULATOR_TRAINING_DURATION_S"),
        (
            "--prediction-duration",
            "prediction_duration_s",
            "$REPLICATE_EMULATOR_PREDICTION_DURATION_S",
        ),
        ("--log-interval", "log_interval_s", None),
        ("--output-ttl", "output_ttl_s", None),
    ]:
        default = getattr(replicate.Settings(), field)
        replicate_cli.add_argument(
            flag,
            dest=field,
            type=float,
            default=None,
            metavar="SECONDS",
            help=f"default: {env + ' or ' if env else ''}{default}",
        )
    args = parser.parse_args(argv)
    if args.emulator == "anthropic":
        anthropic.serve(args.host, args.port)
    elif args.emulator == "clerk":
        users = clerk.users_from_env(args.state_dir, True if args.fresh else None)
        clerk.serve(args.host, args.port, args.key_dir, users)
    elif args.emulator == "openai":
        openai.serve(args.host, args.port)
    elif args.emulator == "replicate":
        replicate.serve(args.host, args.port, _replicate_settings(args))
    else:
        settings = stripe.Settings.from_env()
        if args.webhook_url is not None:
            settings = dataclasses.replace(settings, webhook_url=args.webhook_url or None)
        if args.webhook_secret:
            settings = dataclasses.replace(settings, webhook_secret=args.webhook_secret)
        if args.prices is not None:
            settings = dataclasses.replace(settings, prices=stripe.load_prices(args.prices))
        settings = dataclasses.replace(settings, **_state_changes(args))
        stripe.serve(args.host, args.port, settings)
    return 0


def _replicate_settings(args: argparse.Namespace) -> replicate.Settings:
    settings = replicate.Settings.from_env()
    changes: dict[str, object] = {
        name: getattr(args, name)
        for name in (
            "start_delay_s",
            "training_duration_s",
            "prediction_duration_s",
            "log_interval_s",
            "output_ttl_s",
        )
        if getattr(args, name) is not None
    }
    if args.webhook_secret:
        changes["webhook_secret"] = args.webhook_secret
    if args.public_url:
        changes["public_url"] = args.public_url.rstrip("/")
    changes |= _state_changes(args)
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def _state_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if args.state_dir is not None:
        changes["state_dir"] = args.state_dir
    if args.fresh:
        changes["fresh"] = True
    return changes


if __name__ == "__main__":
    raise SystemExit(main())
