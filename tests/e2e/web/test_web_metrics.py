"""The web app's /metrics (web/lib/metrics), scraped from the real server as Prometheus scrapes
it: Prometheus text of the Node.js process and of the HTTP requests by route template, which
requests move (a page, a not-found page, a redirect of the proxy's own); no label carries a
user, a path or anything else unbounded; a scrape by the pod's address is answered, where the
proxy of dev sign-in would refuse a page."""

from __future__ import annotations

import time
import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.web import WebApp, new_user

SIGN_IN_ROUTE = "/sign-in/[[...sign-in]]"
# Every label the web app may use: its HTTP metrics' (and a histogram's le), and those of
# prom-client's default metrics (handle and request types, V8 heap spaces, GC kinds, the Node.js
# version). Each is a small fixed set.
ALLOWED_LABELS = frozenset(
    {"method", "route", "code", "le", "type", "space", "kind", "version", "major", "minor", "patch"}
)
# The process metrics every scrape must carry (family names: a counter's without _total).
PROCESS_FAMILIES = (
    "process_cpu_seconds",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "nodejs_heap_size_used_bytes",
    "nodejs_heap_space_size_used_bytes",
    "nodejs_eventloop_lag_seconds",
    "nodejs_eventloop_lag_p99_seconds",
    "nodejs_gc_duration_seconds",
    "nodejs_active_handles_total",
    "nodejs_version_info",
)
HTTP_FAMILIES = ("http_server_requests", "http_server_request_duration_seconds")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape_text(web: WebApp, **headers: str) -> httpx.Response:
    answer = httpx.get(f"{web.url}/metrics", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text[:500]
    return answer


def scrape(web: WebApp) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scrape_text(web).text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = labels.items()
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= dict(have).items())


def test_metrics_are_prometheus_text_of_the_node_process(web: WebApp) -> None:
    answer = scrape_text(web)
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert answer.headers["cache-control"] == "no-store"
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    missing = [name for name in PROCESS_FAMILIES + HTTP_FAMILIES if name not in families]
    assert not missing, f"families missing from /metrics: {missing}"
    for name in PROCESS_FAMILIES:
        assert families[name].samples, f"{name} has no sample"
    assert families["process_resident_memory_bytes"].samples[0].value > 0
    started = families["process_start_time_seconds"].samples[0].value
    assert time.time() - 24 * 3600 < started <= time.time()
    assert families["http_server_request_duration_seconds"].type == "histogram"


def test_requests_move_the_http_metrics_by_route_template(web: WebApp) -> None:
    before = scrape(web)
    with httpx.Client(base_url=web.url, timeout=30) as client:
        assert client.get("/sign-in").status_code == 200
        assert client.get(f"/no-such-page-{uuid.uuid4().hex[:8]}").status_code == 404
        # Signed out, the proxy itself answers an app page: a redirect to sign-in.
        assert client.get("/dashboard").status_code == 307
    after = scrape(web)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    requests, durations = "http_server_requests_total", "http_server_request_duration_seconds"
    assert moved(requests, method="GET", route=SIGN_IN_ROUTE, code="200") >= 1
    assert moved(f"{durations}_count", method="GET", route=SIGN_IN_ROUTE) >= 1
    assert moved(f"{durations}_sum", method="GET", route=SIGN_IN_ROUTE) > 0
    assert moved(requests, method="GET", route="/_not-found", code="404") >= 1
    assert moved(requests, method="GET", route="proxy", code="307") >= 1
    # Next.js's pass that runs the proxy is not a request of its own (web/lib/metrics/requests.ts).
    assert moved(requests, route="unmatched") == 0
    # The scrape itself is not counted, as at the gateway.
    assert total(after, requests, route="/metrics") == 0


def test_no_label_carries_a_user_or_a_path(web: WebApp) -> None:
    user = new_user("metrics")
    marker = uuid.uuid4().hex
    with httpx.Client(base_url=web.url, timeout=30) as client:
        signed_in = client.post("/api/dev/session", json={"user": user})
        assert signed_in.status_code == 200, signed_in.text
        assert client.get("/dashboard").status_code == 200
        assert client.get(f"/models/{marker}").status_code == 404
        assert client.get(f"/sign-in/{marker}").status_code == 200
        assert client.get(f"/dashboard?ref={marker}").status_code == 200
    samples = scrape(web)

    names = {name for _, labels in samples for name, _ in labels}
    assert names <= ALLOWED_LABELS, f"labels beyond the allow-list: {names - ALLOWED_LABELS}"
    values = {value for _, labels in samples for _, value in labels}
    leaked = [v for v in values if user in v or marker in v]
    assert not leaked, f"label values carry the user or the path: {leaked}"
    routes = {dict(labels).get("route") for name, labels in samples} - {None}
    assert {"/dashboard", "/api/dev/session", SIGN_IN_ROUTE, "/_not-found"} <= routes
    assert all(r in ("proxy", "unmatched") or r.startswith("/") for r in routes), routes


def test_a_scrape_by_the_pods_address_is_answered(web: WebApp) -> None:
    # Prometheus asks a pod by its address. The server runs in dev sign-in mode, whose proxy
    # refuses any other Host than a loopback one: it does not run on /metrics.
    pod = "10.0.0.7:3000"
    assert httpx.get(f"{web.url}/sign-in", headers={"Host": pod}, timeout=10).status_code == 403
    answer = scrape_text(web, Host=pod)
    assert "# TYPE http_server_requests_total counter" in answer.text


def test_other_spellings_of_metrics_serve_none(web: WebApp) -> None:
    # The prod Ingress refuses /metrics exactly (overlays/prod/ingress.yaml, web-metrics): any
    # other spelling reaches the app, and must not be the metrics.
    with httpx.Client(base_url=web.url, timeout=10) as client:
        slash = client.get("/metrics/")
        assert slash.status_code == 308 and slash.headers["location"] == "/metrics"
        for path in ("/METRICS", "/Metrics", "/metrics.txt", "/metrics/x"):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert "http_server_requests_total" not in answer.text, path
