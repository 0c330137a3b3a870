/**
 * Counting the requests Next.js answers, from its own traces (started by instrumentation.ts).
 *
 * Next.js has no request hook that sees the answer: `onRequestError` sees errors only, and the
 * proxy runs before the route and never sees its status or its end. What does see both is the
 * root span Next.js opens for every request it handles (lib/metrics/requests.ts), once an
 * OpenTelemetry tracer provider is registered. This registers one whose sampler records that
 * span alone (every other span of Next.js is a non-recording one, nearly free) and whose one
 * processor turns each ended request span into the HTTP metrics. Nothing is exported and no
 * propagator is set: a `traceparent` a client sends changes nothing here.
 *
 * Only one tracer provider can be global. Exporting the web app's traces some day means adding
 * an exporting processor (and a sampler that keeps more) here, not registering another.
 */
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  SamplingDecision,
  TracerProvider,
  type ReadableSpan,
  type Sampler,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace";

import { observeRequest, webMetrics, type WebMetrics } from "@/lib/metrics/registry";
import { hrSeconds, isRequestSpan, requestLabels } from "@/lib/metrics/requests";

const STARTED = Symbol.for("visiona.web.request-metrics");

const requestSpansOnly: Sampler = {
  shouldSample: (_context, _traceId, _name, _kind, attributes) => ({
    decision: isRequestSpan(attributes) ? SamplingDecision.RECORD : SamplingDecision.NOT_RECORD,
  }),
  toString: () => "RequestSpansOnly",
};

function requestMetricsProcessor(metrics: WebMetrics): SpanProcessor {
  return {
    onStart: () => {},
    onEnd: (span: ReadableSpan) => {
      const labels = requestLabels(span.attributes);
      if (labels) observeRequest(metrics, labels, hrSeconds(span.duration));
    },
    forceFlush: async () => {},
    shutdown: async () => {},
  };
}

/** A tracer provider that records request spans only and counts each into ``metrics``. */
export function requestTracerProvider(metrics: WebMetrics): TracerProvider {
  return new TracerProvider({ sampler: requestSpansOnly, spanProcessors: [requestMetricsProcessor(metrics)] });
}

/**
 * Make this process's registry (the process metrics start sampling) and count requests. False
 * when another tracer provider was registered first: the process metrics are served all the
 * same, the HTTP ones stay at zero, and the log says why.
 */
export function startMetrics(): boolean {
  const holder = globalThis as { [STARTED]?: boolean };
  if (holder[STARTED] !== undefined) return holder[STARTED];
  const provider = requestTracerProvider(webMetrics());
  // Next.js finds a request's root span through the active context: without a context manager
  // every span would be a root of its own and none would carry the route.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  holder[STARTED] = trace.setGlobalTracerProvider(provider);
  if (!holder[STARTED]) {
    console.error("visiona-web: another OpenTelemetry tracer provider is registered: no HTTP metrics");
  }
  return holder[STARTED];
}
