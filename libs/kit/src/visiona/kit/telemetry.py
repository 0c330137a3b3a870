"""OpenTelemetry tracing, and carrying trace context over HTTP, gRPC metadata and AMQP headers.

One user action is one trace: the gateway starts it (or continues the caller's `traceparent`),
gRPC metadata carries it to a service, the outbox row stores it, and the relay puts it on the
AMQP message so the consumer's span joins the same trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from visiona.kit.settings import KitSettings

_configured = False


def configure_tracing(settings: KitSettings) -> None:
    """Install a tracer provider. With exporter ``none`` spans still get ids (for logs)."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    exporter: SpanExporter | None = None
    if settings.otel_exporter == "console":
        exporter = ConsoleSpanExporter()
    elif settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otel_endpoint)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject_headers() -> dict[str, str]:
    """The current context as W3C headers (`traceparent`, `tracestate`)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract_context(carrier: Mapping[str, Any] | None) -> context.Context:
    """A context continuing the trace found in headers; empty when there is none."""
    if not carrier:
        return context.Context()
    return propagate.extract({k.lower(): str(v) for k, v in carrier.items()})


def metadata_to_dict(metadata: Iterable[tuple[str, str | bytes]] | None) -> dict[str, str]:
    """gRPC invocation metadata (a sequence of pairs) as a dict of text values."""
    result: dict[str, str] = {}
    for key, value in metadata or ():
        if not key.endswith("-bin"):
            result[key] = value.decode() if isinstance(value, bytes) else value
    return result
