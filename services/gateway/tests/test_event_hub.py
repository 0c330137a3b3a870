"""The live-event fan-out: numbering, per-user delivery, replay on resume, slow clients."""

from __future__ import annotations

import uuid

import pytest

from visiona.gateway.live.feed import EventHub, LiveEvent, Subscription, live_event
from visiona.kit.events import (
    CreditsChangedV1,
    ModelReadyV1,
    PromptEnhancementCreatedV1,
    StripeEventReceivedV1,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hub(**kwargs: object) -> EventHub:
    options: dict[str, object] = {"instance": "inst", "replay_size": 5, "client_queue": 10}
    return EventHub(**(options | kwargs))  # type: ignore[arg-type]


def emit(h: EventHub, user: str, n: int = 1) -> list[LiveEvent]:
    out = []
    for _ in range(n):
        event = h.publish(user, "training.model.ready.v1", uuid.uuid4().hex, "{}")
        assert event is not None
        out.append(event)
    return out


def queued(stream: Subscription) -> list[str]:
    ids = []
    while not stream._queue.empty():
        item = stream._queue.get_nowait()
        ids.append("<end>" if item is None else item.id)
    return ids


def test_ids_carry_the_instance_and_count_up_across_users() -> None:
    h = hub()
    events = [*emit(h, "user_a"), *emit(h, "user_b"), *emit(h, "user_a")]
    assert [e.id for e in events] == ["inst-1", "inst-2", "inst-3"]
    assert EventHub().instance != EventHub().instance


def test_a_stream_receives_only_its_users_events_in_order() -> None:
    h = hub()
    a, b = h.subscribe("user_a"), h.subscribe("user_b")
    emit(h, "user_a")
    emit(h, "user_b")
    emit(h, "user_a")
    assert queued(a) == ["inst-1", "inst-3"]
    assert queued(b) == ["inst-2"]


def test_every_open_stream_of_a_user_gets_each_event() -> None:
    h = hub()
    first, second = h.subscribe("user_a"), h.subscribe("user_a")
    emit(h, "user_a", 2)
    assert queued(first) == queued(second) == ["inst-1", "inst-2"]


def test_a_fresh_stream_replays_nothing_and_stands_at_the_latest_id() -> None:
    h = hub()
    emit(h, "user_a", 3)
    stream = h.subscribe("user_a")
    assert (stream.replay, stream.resync, stream.position) == ([], None, 3)


def test_resuming_replays_only_the_events_after_the_last_id() -> None:
    h = hub()
    events = emit(h, "user_a", 4)
    emit(h, "user_b", 2)
    stream = h.subscribe("user_a", events[1].id)
    assert [e.id for e in stream.replay] == [events[2].id, events[3].id]
    assert (stream.resync, stream.position) == (None, 2)


def test_resuming_from_the_opening_position_replays_what_came_after() -> None:
    h = hub()
    emit(h, "user_a")
    opened = h.subscribe("user_a")
    h.unsubscribe(opened)
    later = emit(h, "user_a", 2)
    resumed = h.subscribe("user_a", f"inst-{opened.position}")
    assert resumed.replay == later


def test_an_id_of_another_instance_starts_fresh_with_a_resync() -> None:
    h = hub()
    emit(h, "user_a", 2)
    for foreign in ("other-1", "inst-99", "inst-x", "garbage", "inst-"):
        stream = h.subscribe("user_a", foreign)
        assert (stream.replay, stream.resync) == ([], "unknown_last_event_id"), foreign


def test_an_id_older_than_the_buffer_is_a_gap() -> None:
    h = hub(replay_size=3)
    events = emit(h, "user_a", 5)  # 1 and 2 are gone
    assert h.subscribe("user_a", events[0].id).resync == "replay_gap"
    kept = h.subscribe("user_a", events[1].id)
    assert (kept.resync, [e.id for e in kept.replay]) == (None, ["inst-3", "inst-4", "inst-5"])


def test_events_past_their_age_leave_the_buffer() -> None:
    clock = Clock()
    h = hub(replay_max_age_s=60, clock=clock)
    old = emit(h, "user_a", 2)
    clock.now += 45
    recent = emit(h, "user_a")
    clock.now += 30  # the first two are 75 s old, the last 30 s
    assert h.subscribe("user_a", old[0].id).resync == "replay_gap"
    stream = h.subscribe("user_a", old[1].id)
    assert (stream.resync, stream.replay) == (None, recent)


def test_a_quiet_users_buffer_is_dropped_and_their_old_ids_are_gaps() -> None:
    clock = Clock()
    h = hub(replay_max_age_s=60, clock=clock)
    first, last = emit(h, "user_a", 2)
    clock.now += 61
    h.sweep()
    assert "user_a" not in h._logs
    assert h.subscribe("user_a", first.id).resync == "replay_gap"
    # Nothing came after the last one: nothing was missed.
    assert (h.subscribe("user_a", last.id).resync, h.subscribe("user_a", last.id).replay) == (
        None,
        [],
    )


def test_a_repeated_event_is_dropped() -> None:
    h = hub()
    stream = h.subscribe("user_a")
    assert h.publish("user_a", "billing.credits.changed.v1", "e1", "{}") is not None
    assert h.publish("user_a", "billing.credits.changed.v1", "e1", "{}") is None
    assert queued(stream) == ["inst-1"]


def test_a_slow_client_is_disconnected_and_others_keep_receiving() -> None:
    h = hub(client_queue=3)
    slow, fast = h.subscribe("user_a"), h.subscribe("user_a")
    emit(h, "user_a", 3)
    assert queued(fast) == ["inst-1", "inst-2", "inst-3"]
    emit(h, "user_a")  # the fourth does not fit in the slow stream's queue
    assert slow.overflowed and slow.closed
    assert queued(slow) == ["<end>"]  # what it had queued is dropped: it resumes by id
    assert queued(fast) == ["inst-4"]
    assert h.open_streams == 1
    assert [e.id for e in h.subscribe("user_a", "inst-1").replay] == [
        "inst-2",
        "inst-3",
        "inst-4",
    ]


def test_unsubscribing_ends_the_stream_and_forgets_it() -> None:
    h = hub()
    stream = h.subscribe("user_a")
    h.unsubscribe(stream)
    h.unsubscribe(stream)
    emit(h, "user_a")
    assert queued(stream) == ["<end>"]
    assert h.open_streams == 0


async def test_closing_the_hub_ends_open_and_new_streams() -> None:
    h = hub()
    stream = h.subscribe("user_a")
    emit(h, "user_a")
    h.close()
    assert (await stream.next()) is not None
    assert (await stream.next()) is None
    assert (await h.subscribe("user_a").next()) is None


def test_live_event_keeps_user_events_and_skips_the_rest() -> None:
    ready = ModelReadyV1(
        user_id="user_a", model_id=uuid.uuid4(), training_id=uuid.uuid4(), version="v1"
    )
    found = live_event(ready.routing_key, ready.model_dump_json().encode())
    assert found is not None
    user_id, event_id, data = found
    assert (user_id, event_id) == ("user_a", str(ready.event_id))
    assert ModelReadyV1.model_validate_json(data) == ready

    no_user = StripeEventReceivedV1(stripe_event_id="evt_1", type="checkout.session.completed")
    assert live_event(no_user.routing_key, no_user.model_dump_json().encode()) is None
    assert live_event("training.thing.happened.v9", b"{}") is None
    assert live_event(CreditsChangedV1.routing_key, b'{"user_id": "user_a"}') is None
    enhancement = PromptEnhancementCreatedV1(
        user_id="user_a",
        enhancement_id=uuid.uuid4(),
        model="m",
        input_tokens=1,
        output_tokens=1,
    )
    # Decodable, and its own user's; the feed simply does not bind its key.
    assert live_event(enhancement.routing_key, enhancement.model_dump_json().encode())


@pytest.mark.parametrize("size", [1, 2])
def test_the_buffer_never_holds_more_than_its_size(size: int) -> None:
    h = hub(replay_size=size)
    emit(h, "user_a", 10)
    assert len(h._logs["user_a"].entries) == size
    assert len(h._logs["user_a"].event_ids) == size
