"""The gateway's HTTP metrics: labelled by route template (never the path, which carries
ids), ``unmatched`` for no route, event streams counted but not timed, and ``/metrics``
answered before anything else, in the format the scraper asks for."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse
from prometheus_client import REGISTRY
from starlette.types import Scope

from visiona.gateway.edge.metrics import HttpMetricsMiddleware, route_template


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def metered_app() -> FastAPI:
    """Routers included under /v1, as the gateway's are."""
    app = FastAPI()
    models = APIRouter()

    @models.get("/models/{model_id}")
    async def model(model_id: str) -> dict[str, str]:
        return {"id": model_id}

    app.include_router(models, prefix="/v1")

    @app.get("/v1/events")
    async def events() -> StreamingResponse:
        async def stream() -> AsyncIterator[bytes]:
            yield b"data: hello\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    app.add_middleware(HttpMetricsMiddleware)
    return app


async def call(app: FastAPI, method: str, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


async def test_requests_are_counted_by_route_template_not_path() -> None:
    app = metered_app()
    template = {"method": "GET", "route": "/v1/models/{model_id}"}
    before = value("http_server_requests_total", **template, code="200")
    timed = value("http_server_request_duration_seconds_count", **template)
    for model_id in ("m_1", "m_2", "m_3"):
        assert (await call(app, "GET", f"/v1/models/{model_id}")).status_code == 200
    assert value("http_server_requests_total", **template, code="200") == before + 3
    assert value("http_server_request_duration_seconds_count", **template) == timed + 3
    exposition = (await call(app, "GET", "/metrics")).text
    assert "m_1" not in exposition and "m_2" not in exposition


async def test_an_unknown_path_is_unmatched_and_a_wrong_method_keeps_its_template() -> None:
    app = metered_app()
    unmatched = value("http_server_requests_total", method="GET", route="unmatched", code="404")
    wrong = {"method": "DELETE", "route": "/v1/models/{model_id}", "code": "405"}
    wrong_before = value("http_server_requests_total", **wrong)
    assert (await call(app, "GET", "/v1/nothing/here/u_42")).status_code == 404
    assert (await call(app, "DELETE", "/v1/models/m_1")).status_code == 405
    after = value("http_server_requests_total", method="GET", route="unmatched", code="404")
    assert after == unmatched + 1
    assert value("http_server_requests_total", **wrong) == wrong_before + 1


async def test_an_event_stream_is_counted_but_its_duration_is_not_observed() -> None:
    app = metered_app()
    labels = {"method": "GET", "route": "/v1/events"}
    before = value("http_server_requests_total", **labels, code="200")
    timed = value("http_server_request_duration_seconds_count", **labels)
    assert (await call(app, "GET", "/v1/events")).status_code == 200
    assert value("http_server_requests_total", **labels, code="200") == before + 1
    assert value("http_server_request_duration_seconds_count", **labels) == timed


async def test_metrics_negotiates_openmetrics_and_is_not_itself_counted() -> None:
    app = metered_app()
    plain = await call(app, "GET", "/metrics")
    assert plain.headers["content-type"].startswith("text/plain")
    open_metrics = await call(
        app, "GET", "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.rstrip().endswith("# EOF")
    assert 'route="/metrics"' not in open_metrics.text


def test_route_template_falls_back_to_matching_when_routing_did_not_run() -> None:
    app = metered_app()

    def scope(path: str) -> Scope:
        return {"type": "http", "method": "GET", "path": path, "app": app, "root_path": ""}

    assert route_template(scope("/v1/models/abc")) == "/v1/models/{model_id}"
    assert route_template(scope("/v1/other")) == "unmatched"
