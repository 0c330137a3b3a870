"""Dead letters seen and redriven: a poison message is dead-lettered, the running service
warns about it, an operator lists it (ids and routing keys, never the payload), fixes the
handler and redrives it, and it is applied once (a duplicate of it too: same event id)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from visiona.kit import deadletters
from visiona.kit.bus import EventBus
from visiona.kit.runtime import Runtime, ServiceSpec, dead_letters
from visiona.kit.settings import ServiceSettings

from .events import ProbeHappenedV1
from .support import (
    Kit,
    RecordingConsumer,
    RecordingHandler,
    dead_letters_are,
    eventually,
    recording,
    running,
)
from .test_consumer_inbox import HandlerFailed

GROUP = "redrive"


class Switch:
    """A handler failure the operator can fix."""

    def __init__(self) -> None:
        self.broken = True

    async def __call__(self, event: ProbeHappenedV1) -> None:
        if self.broken:
            raise HandlerFailed("the handler has a bug")


def spec_for(
    bus: EventBus, kit: Kit, handler: RecordingHandler
) -> tuple[ServiceSpec, ServiceSettings]:
    """A service whose one consumer group is ``GROUP``, on the test's broker names."""
    settings = ServiceSettings(
        service_name="probe",
        database_url=kit.app_url,
        db_schema=kit.schema,
        amqp_url=bus.url,
        events_exchange=bus.exchange_name,
        queue_prefix=bus.queue_prefix,
        internal_token_secret="a-test-secret-that-is-long-enough-000",
    )

    async def setup(runtime: Runtime) -> None:
        runtime.add_consumer(GROUP, {ProbeHappenedV1: handler})

    spec = ServiceSpec("probe", lambda: settings, setup, proto=None, package=__file__)
    return spec, settings


async def test_a_dead_letter_is_reported_listed_and_redriven_once_fixed(
    kit: Kit, bus: EventBus, capsys: pytest.CaptureFixture[str]
) -> None:
    switch = Switch()
    handler, consumer = recording(GROUP, kit.db, bus, then=switch, retry_pause_s=0.01)
    spec, settings = spec_for(bus, kit, handler)
    async with running(consumer):
        event = ProbeHappenedV1(user_id="alice-private", n=1)
        # Published twice (the relay's at-least-once): both copies die.
        await bus.publish_event(event)
        await bus.publish_event(event)
        await eventually(lambda: dead_letters_are(bus, GROUP, 2), "both copies to be dead-lettered")

        # The running service's periodic check: the alertable warning, with the counts.
        check = deadletters.dead_letter_check(bus, lambda: [GROUP])
        with capture_logs() as logs:
            assert await check() == {GROUP: 2}
        warnings = [e for e in logs if e["event"] == "bus.dead_letters"]
        assert warnings and warnings[0]["counts"] == {GROUP: 2}
        assert warnings[0]["log_level"] == "warning"

        # The operator lists them: the event, why it died, no payload.
        capsys.readouterr()
        listed = await dead_letters(spec, "list", None, None, settings)
        assert listed == {GROUP: 2}
        out = [line for line in capsys.readouterr().out.splitlines() if "[" not in line]
        assert out[0] == f"{GROUP}: 2 dead-lettered"
        assert len(out) == 3
        for line in out[1:]:
            assert line.startswith(f"  {event.event_id} {ProbeHappenedV1.routing_key} ")
            assert "reason=delivery_limit deaths=1" in line
        assert "alice-private" not in "\n".join(out)
        # Listing left them where they were (given back: the broker requeues them a moment
        # after the listing's connection closes).
        await eventually(lambda: dead_letters_are(bus, GROUP, 2), "the listed letters to be back")

        switch.broken = False
        moved = await dead_letters(spec, "redrive", GROUP, None, settings)
        assert moved == {GROUP: 2}
        await eventually(lambda: dead_letters_are(bus, GROUP, 0), "the dead letters to be gone")
        await eventually(
            lambda: _finished(consumer, event, 2 * (bus.delivery_limit + 1) + 2),
            "both redriven copies to be handled",
        )

        assert await kit.count("effects", [event]) == 1
        assert await kit.count("inbox", [event]) == 1
        # Failed attempts, then one application: the second copy found its inbox row.
        assert handler.calls[event.event_id] == 2 * (bus.delivery_limit + 1) + 1
        assert (await bus.queue_counts(GROUP))[0] == 0


async def test_redrive_moves_only_the_named_group_and_at_most_the_limit(
    kit: Kit, bus: EventBus
) -> None:
    switch = Switch()
    _, consumer = recording(GROUP, kit.db, bus, then=switch, retry_pause_s=0.01)
    async with running(consumer):
        events = [ProbeHappenedV1(user_id="bob", n=i) for i in range(3)]
        for event in events:
            await bus.publish_event(event)
        await eventually(lambda: dead_letters_are(bus, GROUP, 3), "three dead letters")
        peeked = await deadletters.peek(bus, GROUP)
        assert sorted(p.event_id or "" for p in peeked) == sorted(str(e.event_id) for e in events)
        assert {p.reason for p in peeked} == {"delivery_limit"}
        # Peeking again sees the same: nothing was taken (each peek's letters are back a
        # moment after it).
        await eventually(lambda: dead_letters_are(bus, GROUP, 3), "the peeked letters to be back")
        again = await deadletters.peek(bus, GROUP)
        assert sorted(again, key=str) == sorted(peeked, key=str)
        await eventually(lambda: dead_letters_are(bus, GROUP, 3), "the peeked letters to be back")

        switch.broken = False
        assert await deadletters.redrive(bus, GROUP, limit=2) == 2
        await eventually(lambda: dead_letters_are(bus, GROUP, 1), "two of the three to be moved")
        (left,) = await deadletters.peek(bus, GROUP)
        moved = [e for e in events if str(e.event_id) != left.event_id]
        assert len(moved) == 2
        await eventually(lambda: _applied(kit, moved), "the two redriven to be applied")
        assert await kit.count("effects", [e for e in events if e not in moved]) == 0


async def _finished(consumer: RecordingConsumer, event: ProbeHappenedV1, count: int) -> bool:
    return consumer.finished.count(str(event.event_id)) >= count


async def _applied(kit: Kit, events: list[ProbeHappenedV1]) -> bool:
    return await kit.count("effects", events) == len(events)
