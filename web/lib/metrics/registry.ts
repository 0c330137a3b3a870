/**
 * The web server's Prometheus metrics (prom-client), served at GET /metrics (app/metrics).
 *
 * One registry per process: Next.js bundles instrumentation.ts, proxy.ts and each route into
 * modules of their own, so a module-level registry would be made once per bundle (and the
 * route would serve one that nothing records into). The first caller makes it and keeps it on
 * `globalThis`; everyone else gets that one.
 *
 * The series (no label holds a user id, a path or any other unbounded value):
 *   process_* and nodejs_*   prom-client's default metrics: CPU, resident memory, heap (and
 *       per V8 space), event-loop lag, GC pauses by kind, active handles and requests by type,
 *       open file descriptors, the Node.js version
 *   http_server_requests_total{method,route,code}         as at the gateway: requests
 *       answered, route = the route's template (`/dashboard`, `/_not-found`), `proxy` for
 *       an answer of the proxy itself (a sign-in redirect), `unmatched` when there is none
 *   http_server_request_duration_seconds{method,route}     time to the whole answer (for a
 *       request the proxy let through, from routing on: the proxy's few milliseconds before
 *       it are Next.js's span of their own, not counted)
 * Neither counts the scrape itself, nor the files Next.js serves before any route
 * (`/_next/static`, a trailing-slash redirect). lib/metrics/requests.ts says how requests are
 * seen, lib/metrics/server.ts why through Next.js's traces.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";

import type { RequestLabels } from "@/lib/metrics/requests";

// Seconds: the gateway's latency buckets (visiona.kit.metrics.LATENCY_BUCKETS), so that one
// dashboard query reads both.
export const LATENCY_BUCKETS = [0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export type WebMetrics = {
  registry: Registry;
  httpRequests: Counter<"method" | "route" | "code">;
  httpDuration: Histogram<"method" | "route">;
};

/** A registry of its own with the process metrics and the HTTP metrics (tests make several). */
export function createWebMetrics(): WebMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Counter({
      name: "http_server_requests_total",
      help: "HTTP requests answered by the web app, by method, route template and status code.",
      labelNames: ["method", "route", "code"],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "http_server_request_duration_seconds",
      help: "Time the web app took to answer a request in full, by method and route template.",
      labelNames: ["method", "route"],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
  };
}

const PROCESS_METRICS = Symbol.for("visiona.web.metrics");
type Holder = { [PROCESS_METRICS]?: WebMetrics };

/** This process's metrics, made at the first call. */
export function webMetrics(): WebMetrics {
  const holder = globalThis as Holder;
  holder[PROCESS_METRICS] ??= createWebMetrics();
  return holder[PROCESS_METRICS];
}

/** Count one answered request that took ``seconds``. */
export function observeRequest(metrics: WebMetrics, labels: RequestLabels, seconds: number): void {
  metrics.httpRequests.inc(labels);
  metrics.httpDuration.observe({ method: labels.method, route: labels.route }, seconds);
}
