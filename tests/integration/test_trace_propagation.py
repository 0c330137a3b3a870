"""One trace from the producer's unit of work, through the outbox and RabbitMQ, to the consumer."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from visiona.kit.bus import EventBus
from visiona.kit.relay import OutboxRelay

from .events import ProbeHappenedV1
from .support import Kit, eventually, recording


def _exporter() -> InMemorySpanExporter:
    """Spans of this process, recorded in memory (installs an SDK provider once)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


async def test_consumer_span_continues_the_producers_trace(kit: Kit, bus: EventBus) -> None:
    exporter = _exporter()
    handler, consumer = recording("traced", kit.db, bus)
    await consumer.start()
    try:
        with trace.get_tracer("test").start_as_current_span("user action") as action:
            event = ProbeHappenedV1(user_id="alice", n=1)
            async with kit.db.uow("alice") as uow:
                uow.emit(event)
                await uow.commit()
        await OutboxRelay(kit.db, bus).relay_once()
        await eventually(
            lambda: _true(handler.calls[event.event_id] == 1), "the event to be handled"
        )
        await eventually(
            lambda: _true(
                any(s.name == f"consume {event.routing_key}" for s in exporter.get_finished_spans())
            ),
            "the consumer span to finish",
        )
    finally:
        await consumer.stop()
    (consumed,) = [
        s for s in exporter.get_finished_spans() if s.name == f"consume {event.routing_key}"
    ]
    assert consumed.context.trace_id == action.get_span_context().trace_id
    assert consumed.parent is not None
    assert consumed.parent.span_id == action.get_span_context().span_id
    assert consumed.kind is trace.SpanKind.CONSUMER


async def _true(value: bool) -> bool:
    return value
