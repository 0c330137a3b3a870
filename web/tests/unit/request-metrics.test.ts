// @vitest-environment node
import { SpanKind } from "@opentelemetry/api";
import type { MetricValueWithName } from "prom-client";

import { createWebMetrics, webMetrics, type WebMetrics } from "@/lib/metrics/registry";
import {
  hrSeconds,
  PROXY_ROUTE,
  proxyAnswerLabels,
  REQUEST_SPAN_TYPE,
  requestLabels,
  UNMATCHED_ROUTE,
} from "@/lib/metrics/requests";
import { requestTracerProvider } from "@/lib/metrics/server";

// The attributes of Next.js's root span of a request, as it ends (lib/metrics/requests.ts).
const rendered = {
  "next.span_type": REQUEST_SPAN_TYPE,
  "http.method": "GET",
  "http.target": "/models?cursor=abc",
  "http.status_code": 200,
  "next.route": "/models",
};

describe("which spans are answered requests", () => {
  it("counts a rendered request under its route template and status", () => {
    expect(requestLabels(rendered)).toEqual({ method: "GET", route: "/models", code: "200" });
    expect(requestLabels({ ...rendered, "next.route": "/_not-found", "http.status_code": 404 })).toEqual({
      method: "GET",
      route: "/_not-found",
      code: "404",
    });
  });

  it("does not count the proxy's pass, whose answer is not known yet", () => {
    const proxyPass = { ...rendered, "next.bubble": true, "next.route": undefined };
    expect(requestLabels(proxyPass)).toBeNull();
  });

  it("does not count other spans, a span without a status, or the scrape itself", () => {
    expect(requestLabels({ ...rendered, "next.span_type": "AppRender.getBodyResult" })).toBeNull();
    expect(requestLabels({ ...rendered, "http.status_code": undefined })).toBeNull();
    expect(requestLabels({ ...rendered, "http.status_code": "200" })).toBeNull();
    expect(requestLabels({ ...rendered, "next.route": "/metrics" })).toBeNull();
  });

  it("keeps methods and routes to bounded values", () => {
    expect(requestLabels({ ...rendered, "http.method": "PROPFIND" })?.method).toBe("OTHER");
    expect(requestLabels({ ...rendered, "http.method": "post" })?.method).toBe("POST");
    expect(requestLabels({ ...rendered, "next.route": undefined })?.route).toBe(UNMATCHED_ROUTE);
    expect(requestLabels({ ...rendered, "next.route": 7 })?.route).toBe(UNMATCHED_ROUTE);
  });
});

describe("the proxy's own answers", () => {
  it("counts a redirect or a refusal under the proxy", () => {
    const redirect = Response.redirect("http://localhost/sign-in", 307);
    expect(proxyAnswerLabels("GET", redirect)).toEqual({ method: "GET", route: PROXY_ROUTE, code: "307" });
    expect(proxyAnswerLabels("POST", new Response("no", { status: 403 }))?.code).toBe("403");
  });

  it("leaves a request it lets through to the route that answers it", () => {
    expect(proxyAnswerLabels("GET", undefined)).toBeNull();
    expect(proxyAnswerLabels("GET", new Response(null, { headers: { "x-middleware-next": "1" } }))).toBeNull();
    expect(
      proxyAnswerLabels("GET", new Response(null, { headers: { "x-middleware-rewrite": "http://localhost/x" } })),
    ).toBeNull();
  });
});

describe("the process's registry", () => {
  it("is made once per process, however many bundles ask", () => {
    expect(webMetrics()).toBe(webMetrics());
  });

  it("serves the process metrics in Prometheus's text format", async () => {
    const { registry } = createWebMetrics();
    const text = await registry.metrics();
    expect(registry.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const family of [
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "nodejs_heap_size_used_bytes",
      "nodejs_eventloop_lag_seconds",
      "nodejs_gc_duration_seconds",
      "nodejs_active_handles_total",
    ]) {
      expect(text).toContain(`# TYPE ${family}`);
    }
  });
});

describe("request spans into metrics", () => {
  let metrics: WebMetrics;
  beforeEach(() => {
    metrics = createWebMetrics();
  });

  /** The value of the sample ``sample`` (a histogram's `_count`, say) of ``family`` with ``labels``. */
  async function value(family: string, sample: string, labels: Record<string, string>): Promise<number> {
    const metric = await metrics.registry.getSingleMetric(family)?.get();
    const values = (metric?.values ?? []) as MetricValueWithName<string>[];
    const found = values.find(
      (v) => (v.metricName ?? family) === sample && Object.entries(labels).every(([k, want]) => v.labels[k] === want),
    );
    return found?.value ?? 0;
  }

  it("records the request span alone and counts it when it ends", async () => {
    const tracer = requestTracerProvider(metrics).getTracer("next.js");
    const inner = tracer.startSpan("render route (app) /models", {
      attributes: { "next.span_type": "AppRender.getBodyResult" },
    });
    expect(inner.isRecording()).toBe(false);
    const request = tracer.startSpan("GET", {
      kind: SpanKind.SERVER,
      attributes: { "next.span_type": REQUEST_SPAN_TYPE, "http.method": "GET" },
    });
    expect(request.isRecording()).toBe(true);
    request.setAttributes({ "http.status_code": 200, "next.route": "/models" });
    request.end();
    const requests = "http_server_requests_total";
    expect(await value(requests, requests, { method: "GET", route: "/models", code: "200" })).toBe(1);
    const duration = "http_server_request_duration_seconds";
    expect(await value(duration, `${duration}_count`, { method: "GET", route: "/models" })).toBe(1);
  });

  it("counts nothing for the proxy's pass", async () => {
    const tracer = requestTracerProvider(metrics).getTracer("next.js");
    const pass = tracer.startSpan("GET", { attributes: { "next.span_type": REQUEST_SPAN_TYPE, "http.method": "GET" } });
    pass.setAttributes({ "http.status_code": 200, "next.bubble": true });
    pass.end();
    const counted = await metrics.registry.getSingleMetric("http_server_requests_total")?.get();
    expect(counted?.values).toEqual([]);
  });
});

describe("durations", () => {
  it("are seconds", () => {
    expect(hrSeconds([2, 500_000_000])).toBe(2.5);
  });
});
