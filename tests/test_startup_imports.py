"""What a serving process does not import: Alembic (only ``migrate`` runs migrations) and svix's
API client (only a Clerk webhook needs its verifier). Each is a third to half a second of every
process start, paid at every pod start and every restart."""

from __future__ import annotations

import subprocess
import sys

import pytest

from visiona.kit.provision import SERVICES

NOT_AT_START = ("alembic", "svix")


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_starts_without_migration_or_webhook_tooling(service: str) -> None:
    probe = (
        "import sys\n"
        f"import visiona.{service}.__main__\n"
        f"print(' '.join(m for m in {NOT_AT_START!r} if m in sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == [], f"visiona-{service} imports {loaded} before it serves"
