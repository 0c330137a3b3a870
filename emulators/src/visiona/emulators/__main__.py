"""``visiona-emulator {anthropic|clerk} [--host H] [--port P]``: run one emulator with uvicorn.

Default ports come from ``ANTHROPIC_EMULATOR_PORT`` / ``CLERK_ISSUER_PORT`` (config/local.env),
else 8101 / 8104.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from visiona.emulators import anthropic, clerk


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and serve the chosen emulator until interrupted."""
    parser = argparse.ArgumentParser(
        prog="visiona-emulator", description="Run one local provider emulator (dev and test only)."
    )
    sub = parser.add_subparsers(dest="emulator", required=True)
    defaults = {
        "anthropic": int(os.environ.get("ANTHROPIC_EMULATOR_PORT", anthropic.DEFAULT_PORT)),
        "clerk": int(os.environ.get("CLERK_ISSUER_PORT", clerk.DEFAULT_PORT)),
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
    args = parser.parse_args(argv)
    if args.emulator == "anthropic":
        anthropic.serve(args.host, args.port)
    else:
        clerk.serve(args.host, args.port, args.key_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
