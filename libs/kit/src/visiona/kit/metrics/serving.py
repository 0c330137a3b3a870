"""``/metrics`` of a back service: prometheus-client's own HTTP server on the metrics port.

Its server runs in a daemon thread, so a scrape never waits for the event loop (a busy loop
is exactly when the numbers matter) and the loop never waits for a scrape. It negotiates the
exposition from the Accept header (``choose_encoder``): OpenMetrics, with exemplars, for a
scraper that asks for it.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import REGISTRY, start_http_server

from visiona.kit.logging import get_logger

log = get_logger(__name__)


def serve_metrics(host: str, port: int) -> Callable[[], None] | None:
    """Serve the process's registry on ``host:port`` until the returned function is called;
    None (nothing served) when ``port`` is 0. Raises when the port cannot be bound: a
    service that would run unobserved is a configuration error, like a gRPC port taken."""
    if port == 0:
        return None
    server, thread = start_http_server(port, addr=host, registry=REGISTRY)
    log.info("metrics.serving", host=host, port=port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
