"""Event types that exist only for the kit's integration tests (registered once per process)."""

from __future__ import annotations

from typing import ClassVar

from visiona.kit.events import Event


class ProbeHappenedV1(Event):
    """A test probe: the consumer under test records ``n`` for ``user_id`` in ``effects``."""

    routing_key: ClassVar[str] = "tests.probe.happened.v1"

    user_id: str
    n: int
