/**
 * Which of Next.js's spans is one answered HTTP request, and the labels it is counted under.
 * Pure (no I/O, no SDK), so the rules are unit-tested; lib/metrics/server.ts feeds it the spans.
 *
 * Next.js traces every request it handles in one root span of type `BaseServer.handleRequest`
 * (its documented default spans: "[http.method] [next.route]", with `http.method`,
 * `http.status_code` and `next.route`, the route's template: `/dashboard`, `/api/dev/session`,
 * `/_not-found`, never the path). A request the proxy (proxy.ts) matches is handled twice:
 * once to run the proxy, then, if the proxy lets it through, once to render it. The first
 * pass ends before the proxy's answer is known (Next marks it `next.bubble`): it is not a
 * request of its own and is not counted here; the proxy counts what it answers itself
 * (proxy.ts, {@link PROXY_ROUTE}). `next.bubble` is not among Next's documented attributes: were
 * an upgrade to drop it, every proxied request would also count as `unmatched`, which
 * tests/e2e/web/test_web_metrics.py refuses.
 */

/** `next.span_type` of the root span of each request Next.js handles. */
export const REQUEST_SPAN_TYPE = "BaseServer.handleRequest";
/** The route label of a request no route of the app matched (nor Next's not-found page). */
export const UNMATCHED_ROUTE = "unmatched";
/** The route label of a request the proxy answered itself (a sign-in redirect, a refusal). */
export const PROXY_ROUTE = "proxy";
/** Prometheus's own route (app/metrics). */
export const METRICS_ROUTE = "/metrics";

// Methods are a bounded label too (as at the gateway): anything else is counted as OTHER.
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

export type RequestLabels = { method: string; route: string; code: string };

type AttributeValue = string | number | boolean | Array<null | undefined | string | number | boolean>;
export type SpanAttributes = Readonly<Record<string, AttributeValue | undefined>>;

export function methodLabel(method: unknown): string {
  const upper = typeof method === "string" ? method.toUpperCase() : "";
  return METHODS.has(upper) ? upper : "OTHER";
}

/** The HTTP status as a label, or null when it is no status code. */
export function codeLabel(status: unknown): string | null {
  return typeof status === "number" && Number.isInteger(status) && status >= 100 && status <= 599
    ? String(status)
    : null;
}

/** Whether a span about to start is the root span of a request (the sampler's question). */
export function isRequestSpan(attributes: SpanAttributes): boolean {
  return attributes["next.span_type"] === REQUEST_SPAN_TYPE;
}

/** The labels of an ended request span, or null when it is not one answered request. */
export function requestLabels(attributes: SpanAttributes): RequestLabels | null {
  if (!isRequestSpan(attributes) || attributes["next.bubble"] === true) return null;
  const code = codeLabel(attributes["http.status_code"]);
  if (code === null) return null;
  const route = attributes["next.route"];
  // The scrape itself is not counted, as at the gateway.
  if (route === METRICS_ROUTE) return null;
  return {
    method: methodLabel(attributes["http.method"]),
    route: typeof route === "string" && route.startsWith("/") ? route : UNMATCHED_ROUTE,
    code,
  };
}

/**
 * The labels of what the proxy returned when it answers the request itself (a redirect to
 * sign-in, a refusal), or null when it lets the request through (`NextResponse.next()`, a
 * rewrite, or nothing): the route that answers is counted then, from its span.
 */
export function proxyAnswerLabels(
  method: string,
  answer: { status: number; headers: Headers } | null | undefined | void,
): RequestLabels | null {
  if (!answer || answer.headers.has("x-middleware-next") || answer.headers.has("x-middleware-rewrite")) {
    return null;
  }
  const code = codeLabel(answer.status);
  return code === null ? null : { method: methodLabel(method), route: PROXY_ROUTE, code };
}

/** An OpenTelemetry duration ([seconds, nanoseconds]) in seconds. */
export function hrSeconds([seconds, nanos]: readonly [number, number]): number {
  return seconds + nanos / 1e9;
}
