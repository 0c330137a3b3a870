"""Prometheus metrics: the catalogue, defined once, and how a process observes and serves it.

Every process serves ``/metrics`` (``prometheus-client``'s exposition): the gateway on its
own HTTP port, a back service on ``<SVC>_METRICS_HOST:<SVC>_METRICS_PORT`` (prompts 9461,
training 9462, generation 9463, billing 9464; 0 turns it off). The exposition follows the
scraper's Accept header: the OpenMetrics format carries the exemplars (the trace id of the
sampled span an observation was made in) on the latency histograms; the classic text format
has none.

Label values come from small fixed sets only: route templates, gRPC method names, consumer
group names, job kinds and states, provider operation names, outcome words. Never a user id,
an email, a raw path or any id: a label value is a time series for as long as the process
lives.

The catalogue (owner in brackets; histograms are in seconds and carry exemplars):

HTTP [gateway, pure ASGI middleware]
  http_server_requests_total{method,route,code}             requests answered
  http_server_request_duration_seconds{method,route}         time to the whole answer; an
      event stream (SSE) is counted in requests_total but its duration, which is the
      client's session and not latency, is not observed
  route is the matched route template (``/v1/models/{model_id}``), ``unmatched`` otherwise.
gRPC [every back service's server; every client channel: gateway, training, generation]
  grpc_server_handled_total{grpc_service,grpc_method,grpc_code}
  grpc_server_handling_seconds{grpc_service,grpc_method}
  grpc_client_handled_total{grpc_service,grpc_method,grpc_code}
  grpc_client_handling_seconds{grpc_service,grpc_method}
  Health and reflection are not counted.
Outbox and relay [every process with an outbox: the back services and the gateway]
  visiona_outbox_backlog                            unpublished rows (sampled)
  visiona_outbox_oldest_unpublished_age_seconds     age of the oldest, 0 when none (sampled)
  visiona_relay_published_total                     messages the relay sent
  visiona_relay_confirmed_total                     confirmed by the broker, marked published
Consumers [every consumer group; consumer = the group's logical name]
  visiona_consumer_deliveries_total{consumer}
  visiona_consumer_redeliveries_total{consumer}     deliveries the broker marked redelivered
  visiona_consumer_dead_lettered_total{consumer}    deliveries this consumer sent to the DLQ
  visiona_consumer_handler_duration_seconds{consumer,outcome}   handled|duplicate|failed
  visiona_dead_letter_messages{consumer}            DLQ depth (the periodic dead-letter count)
Jobs [sampled every metrics_sample_interval_s by the owning process]
  visiona_jobs{kind,state}                          rows per kind and state
  visiona_job_oldest_active_age_seconds{kind}       oldest non-final row's age, 0 when none
  kinds: training (training.models), ingest (training.photos), generation
  (generation.generations), erasure (gateway.deletions), export (gateway.exports)
Providers [the adapters: replicate, stripe, anthropic, openai, clerk]
  visiona_provider_requests_total{provider,operation,outcome}
      outcome: ok|client_error|server_error|timeout|unavailable
  visiona_provider_request_duration_seconds{provider,operation}
Credits [billing; once per new ledger entry, after its commit; in credits]
  visiona_credits_granted_total{source}             purchase, subscription, refund, ...
  visiona_credits_held_total
  visiona_credits_captured_total
  visiona_credits_released_total
Webhooks and rate limits [gateway]
  visiona_webhook_verifications_total{provider,result}
      provider: replicate|stripe|clerk; result: valid|invalid|missing_signature|too_large
  visiona_rate_limit_rejections_total{scope}         scope: ip|user|webhook
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

# Seconds. Edge and RPC latencies: a few ms to a deadline's worth.
LATENCY_BUCKETS: Final = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Provider calls and handlers can legitimately take longer (an upload, an LLM answer).
SLOW_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

# -- HTTP (the gateway) ------------------------------------------------------------------------
http_requests = Counter(
    "http_server_requests",
    "HTTP requests answered by the gateway, by method, route template and status code.",
    ["method", "route", "code"],
)
http_duration = Histogram(
    "http_server_request_duration_seconds",
    "Time the gateway took to answer a request (event streams are not observed).",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)

# -- gRPC --------------------------------------------------------------------------------------
grpc_server_handled = Counter(
    "grpc_server_handled",
    "RPCs completed on the server, by service, method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
grpc_server_seconds = Histogram(
    "grpc_server_handling_seconds",
    "Time the server took to handle an RPC.",
    ["grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)
grpc_client_handled = Counter(
    "grpc_client_handled",
    "RPCs this process made that completed, by service, method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
grpc_client_seconds = Histogram(
    "grpc_client_handling_seconds",
    "Time an RPC this process made took, until its status.",
    ["grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)

# -- Outbox and relay --------------------------------------------------------------------------
outbox_backlog = Gauge("visiona_outbox_backlog", "Outbox rows not yet published (sampled).")
outbox_oldest_age = Gauge(
    "visiona_outbox_oldest_unpublished_age_seconds",
    "Age of the oldest unpublished outbox row, 0 when there is none (sampled).",
)
relay_published = Counter("visiona_relay_published", "Messages the outbox relay published.")
relay_confirmed = Counter(
    "visiona_relay_confirmed",
    "Published messages the broker confirmed and the relay marked published.",
)

# -- Consumers ---------------------------------------------------------------------------------
consumer_deliveries = Counter(
    "visiona_consumer_deliveries", "Deliveries a consumer group received.", ["consumer"]
)
consumer_redeliveries = Counter(
    "visiona_consumer_redeliveries",
    "Deliveries the broker marked as redelivered (a previous attempt did not ack).",
    ["consumer"],
)
consumer_dead_lettered = Counter(
    "visiona_consumer_dead_lettered",
    "Deliveries a consumer group sent to its dead-letter queue (undecodable, or the last "
    "allowed attempt failed).",
    ["consumer"],
)
consumer_handler_seconds = Histogram(
    "visiona_consumer_handler_duration_seconds",
    "Time a consumer group took on one delivery, by outcome: handled, duplicate (the inbox "
    "had it) or failed.",
    ["consumer", "outcome"],
    buckets=SLOW_BUCKETS,
)
dead_letter_messages = Gauge(
    "visiona_dead_letter_messages",
    "Messages waiting in a consumer group's dead-letter queue (sampled).",
    ["consumer"],
)

# -- Job rows ----------------------------------------------------------------------------------
jobs = Gauge("visiona_jobs", "Job rows by kind and state (sampled).", ["kind", "state"])
job_oldest_active_age = Gauge(
    "visiona_job_oldest_active_age_seconds",
    "Age of the oldest job of a kind that is not in a final state, 0 when none (sampled).",
    ["kind"],
)

# -- Providers ---------------------------------------------------------------------------------
PROVIDER_OUTCOMES: Final = ("ok", "client_error", "server_error", "timeout", "unavailable")
provider_requests = Counter(
    "visiona_provider_requests",
    "Calls to an external provider, by provider, operation and outcome "
    "(ok, client_error, server_error, timeout, unavailable).",
    ["provider", "operation", "outcome"],
)
provider_seconds = Histogram(
    "visiona_provider_request_duration_seconds",
    "Time a call to an external provider took, whatever its outcome.",
    ["provider", "operation"],
    buckets=SLOW_BUCKETS,
)

# -- Credits (billing) -------------------------------------------------------------------------
credits_granted = Counter(
    "visiona_credits_granted",
    "Credits added to balances, by the ledger entry's source.",
    ["source"],
)
credits_held = Counter("visiona_credits_held", "Credits put on hold for paid jobs.")
credits_captured = Counter("visiona_credits_captured", "Held credits captured (spent).")
credits_released = Counter("visiona_credits_released", "Held credits released (given back).")

# -- Webhooks and rate limits (gateway) --------------------------------------------------------
WEBHOOK_RESULTS: Final = ("valid", "invalid", "missing_signature", "too_large")
webhook_verifications = Counter(
    "visiona_webhook_verifications",
    "Provider webhooks received, by provider and verification result.",
    ["provider", "result"],
)
rate_limit_rejections = Counter(
    "visiona_rate_limit_rejections",
    "Requests refused with 429 by the edge's rate limits, by the limit's scope.",
    ["scope"],
)


def trace_exemplar() -> dict[str, str] | None:
    """``{"trace_id": ...}`` of the current span when it is valid and sampled (an exemplar
    must lead to a trace that was kept), else None."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {"trace_id": format(context.trace_id, "032x")}


def observe(histogram: Histogram, seconds: float) -> None:
    """Observe on a histogram (or a labelled child) with the current trace as exemplar."""
    histogram.observe(seconds, trace_exemplar())


def provider_outcome(error: BaseException | None) -> str:
    """What a provider call's failure was, from the SDK's exception: a timeout, no answer at
    all (unavailable), or the provider's status (4xx client_error, 5xx server_error).

    The SDKs differ (``status_code``: httpx, Anthropic, OpenAI, Clerk; ``http_status``:
    Stripe; ``status``: Replicate and our ProviderError), so the status is looked for under
    each name, on the error and on what it wraps.
    """
    if error is None:
        return "ok"
    seen: BaseException | None = error
    while seen is not None:
        names = [cls.__name__ for cls in type(seen).__mro__]
        if isinstance(seen, TimeoutError) or any("Timeout" in name for name in names):
            return "timeout"
        # An HTTP error's response (httpx, Clerk's SDK) has the status when the error does not.
        response = _attribute(seen, "raw_response") or _attribute(seen, "response")
        for holder, attribute in (
            (seen, "status_code"),
            (seen, "http_status"),
            (seen, "status"),
            (response, "status_code"),
        ):
            status = _attribute(holder, attribute)
            if isinstance(status, int) and 400 <= status < 600:
                if status == 408:
                    return "timeout"
                return "server_error" if status >= 500 else "client_error"
        seen = seen.__cause__
    return "unavailable"


@contextmanager
def provider_call(provider: str, operation: str) -> Iterator[None]:
    """Count and time one call to ``provider``; ``operation`` is the adapter's fixed name for
    it (``trainings.create``). The error, if any, goes on unchanged."""
    start = time.perf_counter()
    error: BaseException | None = None
    try:
        yield
    except asyncio.CancelledError:
        raise  # the caller gave up (a stop): the provider's outcome is unknown, not counted
    except BaseException as exc:
        error = exc
        raise
    finally:
        if error is not None or not _cancelled():
            observe(provider_seconds.labels(provider, operation), time.perf_counter() - start)
            provider_requests.labels(provider, operation, provider_outcome(error)).inc()


def _cancelled() -> bool:
    """Whether the exception being handled (in a ``finally``) is a cancellation."""
    return isinstance(sys.exc_info()[1], asyncio.CancelledError)


def _attribute(holder: object, name: str) -> object:
    """``holder.name``, or None when it has none (an SDK's property may raise instead)."""
    try:
        return getattr(holder, name, None)
    except Exception:
        return None
