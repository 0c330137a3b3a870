"""Every process's /metrics, scraped before and after a journey on the real stack: each metric
of the catalogue (visiona.kit.metrics) moves in the process that owns it, and after a run
with many users no label carries anything of theirs.

The journey: a purchase (Stripe), photos and a training (Replicate), a generation with an
enhanced prompt (Anthropic) and one the provider fails (its hold released), a Stripe webhook
with a bad signature, an event billing cannot handle (retried to its delivery limit, then
dead-lettered), an erasure (Clerk), and thirty more users asking for things by id; a gateway
with tight limits refuses a user who asks too often.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.saga_helpers import unique_name
from tests.e2e.test_account_erasure import request_deletion, wait_erased
from tests.e2e.test_billing import signed
from tests.e2e.test_generation import generate, ready_owner, wait_generation
from tests.e2e.training_helpers import emulator
from tests.support.stack import RunningStack, extra_gateway
from tests.support.waiting import wait_for
from visiona.gateway.routes.pages import PAGES
from visiona.kit.bus import EventBus
from visiona.kit.events import GenerationRequestedV1

# The journey runs once, in the first test's setup: a purchase, a training, two generations,
# a dead-lettering, an erasure and thirty users, on a machine that may be busy.
pytestmark = pytest.mark.timeout(900)

SERVICES = ("gateway", "prompts", "training", "generation", "billing")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = labels.items()
    return sum(
        value for (n, have), value in samples.items() if n == name and wanted <= dict(have).items()
    )


def present(samples: Samples, name: str, **labels: str) -> bool:
    wanted = labels.items()
    return any(n == name and wanted <= dict(have).items() for n, have in samples)


Series = tuple[tuple[str, str], ...]


def series_of(stack: RunningStack, service: str) -> dict[str, set[Series]]:
    """Each metric family's series: its label sets, a histogram's buckets counted once."""
    text = httpx.get(stack.metrics_url(service), timeout=10).text
    series: dict[str, set[Series]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
            series.setdefault(family.name, set()).add(labels)
    return series


def scrape_all(stack: RunningStack) -> dict[str, Samples]:
    return {service: scrape(stack.metrics_url(service)) for service in SERVICES}


# What the journey must move, in the process that owns it: (metric, labels it must have).
MOVED: dict[str, list[tuple[str, dict[str, str]]]] = {
    "gateway": [
        ("http_server_requests_total", {"route": "/v1/generations", "code": "202"}),
        ("http_server_request_duration_seconds_count", {"route": "/v1/generations"}),
        ("grpc_client_handled_total", {"grpc_method": "CreateGeneration", "grpc_code": "OK"}),
        ("grpc_client_handling_seconds_count", {"grpc_method": "CreateGeneration"}),
        ("visiona_webhook_verifications_total", {"provider": "stripe", "result": "valid"}),
        ("visiona_webhook_verifications_total", {"provider": "stripe", "result": "invalid"}),
        ("visiona_webhook_verifications_total", {"provider": "replicate", "result": "valid"}),
        ("visiona_provider_requests_total", {"provider": "clerk", "operation": "users.delete"}),
        ("visiona_provider_request_duration_seconds_count", {"provider": "clerk"}),
        ("visiona_consumer_deliveries_total", {"consumer": "gateway-audit"}),
        ("visiona_consumer_handler_duration_seconds_count", {"consumer": "gateway-audit"}),
        ("visiona_relay_published_total", {}),
        ("visiona_relay_confirmed_total", {}),
    ],
    "prompts": [
        ("grpc_server_handled_total", {"grpc_code": "OK"}),
        ("grpc_server_handling_seconds_count", {}),
        ("visiona_provider_requests_total", {"provider": "anthropic", "outcome": "ok"}),
        ("visiona_provider_request_duration_seconds_count", {"provider": "anthropic"}),
        ("visiona_relay_published_total", {}),
        ("visiona_relay_confirmed_total", {}),
    ],
    "training": [
        ("grpc_server_handled_total", {"grpc_method": "CreateModel", "grpc_code": "OK"}),
        ("grpc_server_handling_seconds_count", {"grpc_method": "CreateModel"}),
        ("grpc_client_handled_total", {"grpc_code": "OK"}),
        ("grpc_client_handling_seconds_count", {}),
        ("visiona_provider_requests_total", {"provider": "replicate", "outcome": "ok"}),
        ("visiona_provider_request_duration_seconds_count", {"operation": "trainings.create"}),
        ("visiona_consumer_deliveries_total", {"consumer": "training.credits"}),
        ("visiona_consumer_handler_duration_seconds_count", {"outcome": "handled"}),
        ("visiona_relay_published_total", {}),
        ("visiona_relay_confirmed_total", {}),
    ],
    "generation": [
        ("grpc_server_handled_total", {"grpc_method": "CreateGeneration", "grpc_code": "OK"}),
        ("grpc_server_handling_seconds_count", {"grpc_method": "CreateGeneration"}),
        ("grpc_client_handled_total", {"grpc_code": "OK"}),
        ("grpc_client_handling_seconds_count", {}),
        ("visiona_provider_requests_total", {"operation": "predictions.create", "outcome": "ok"}),
        ("visiona_provider_request_duration_seconds_count", {"provider": "replicate"}),
        ("visiona_consumer_deliveries_total", {"consumer": "generation.credits"}),
        ("visiona_consumer_handler_duration_seconds_count", {"consumer": "generation.credits"}),
        ("visiona_relay_published_total", {}),
        ("visiona_relay_confirmed_total", {}),
    ],
    "billing": [
        ("grpc_server_handled_total", {"grpc_code": "OK"}),
        ("grpc_server_handling_seconds_count", {}),
        ("visiona_provider_requests_total", {"provider": "stripe", "outcome": "ok"}),
        ("visiona_provider_request_duration_seconds_count", {"provider": "stripe"}),
        ("visiona_consumer_deliveries_total", {"consumer": "billing.holds"}),
        ("visiona_consumer_redeliveries_total", {"consumer": "billing.holds"}),
        ("visiona_consumer_dead_lettered_total", {"consumer": "billing.holds"}),
        ("visiona_consumer_handler_duration_seconds_count", {"outcome": "failed"}),
        ("visiona_consumer_handler_duration_seconds_count", {"outcome": "handled"}),
        ("visiona_relay_published_total", {}),
        ("visiona_relay_confirmed_total", {}),
        ("visiona_credits_granted_total", {"source": "purchase"}),
        ("visiona_credits_held_total", {}),
        ("visiona_credits_captured_total", {}),
        ("visiona_credits_released_total", {}),
    ],
}

# Gauges each process samples: (metric, labels), for tables it owns.
SAMPLED: dict[str, list[tuple[str, dict[str, str]]]] = {
    "gateway": [
        ("visiona_jobs", {"kind": "erasure", "state": "erasing"}),
        ("visiona_jobs", {"kind": "export", "state": "ready"}),
        ("visiona_job_oldest_active_age_seconds", {"kind": "erasure"}),
        ("visiona_job_oldest_active_age_seconds", {"kind": "export"}),
    ],
    "training": [
        ("visiona_jobs", {"kind": "training", "state": "succeeded"}),
        ("visiona_jobs", {"kind": "ingest", "state": "accepted"}),
        ("visiona_job_oldest_active_age_seconds", {"kind": "training"}),
        ("visiona_job_oldest_active_age_seconds", {"kind": "ingest"}),
    ],
    "generation": [
        ("visiona_jobs", {"kind": "generation", "state": "succeeded"}),
        ("visiona_job_oldest_active_age_seconds", {"kind": "generation"}),
    ],
    "prompts": [],
    "billing": [],
}
for _service in SERVICES:
    SAMPLED[_service] += [
        ("visiona_outbox_backlog", {}),
        ("visiona_outbox_oldest_unpublished_age_seconds", {}),
    ]


async def poison_billing(stack: RunningStack) -> None:
    """An event billing's holds consumer cannot handle (a price beyond any integer column):
    it fails every attempt, is redelivered to the delivery limit, then dead-lettered."""
    cfg = stack.cfg
    bus = EventBus(cfg.amqp_url, cfg.exchange, queue_prefix=cfg.queue_prefix)
    await bus.connect()
    try:
        await bus.publish_event(
            GenerationRequestedV1(
                user_id=unique_name("poison"),
                generation_id=uuid.uuid4(),
                model_id=uuid.uuid4(),
                num_outputs=10**19,
            )
        )
    finally:
        await bus.close()


async def purge_dead_letters(stack: RunningStack, consumer: str) -> None:
    cfg = stack.cfg
    bus = EventBus(cfg.amqp_url, cfg.exchange, queue_prefix=cfg.queue_prefix)
    await bus.connect()
    try:
        channel = await bus._connection.channel()  # type: ignore[union-attr]
        queue = await channel.declare_queue(f"{bus.queue_name(consumer)}.dlq", passive=True)
        await queue.purge()
    finally:
        await bus.close()


def ask_by_id(stack: RunningStack, user: str) -> None:
    """Requests whose paths carry ids of the user's (and of nobody's)."""
    with httpx.Client(base_url=stack.url, headers=stack.auth(user), timeout=15) as client:
        assert client.get("/v1/me").status_code == 200
        for path in ("/v1/models/{}", "/v1/generations/{}", "/v1/photos/{}"):
            assert client.get(path.format(uuid.uuid4())).status_code == 404
        assert client.get(f"/v1/nothing/{user}/12345678").status_code == 404


class Run:
    def __init__(self) -> None:
        self.before: dict[str, Samples] = {}
        self.after: dict[str, Samples] = {}
        self.users: list[str] = []
        self.limited: Samples = {}
        self.limited_before: Samples = {}
        self.series_after_one: dict[str, dict[str, set[Series]]] = {}
        self.series_after_all: dict[str, dict[str, set[Series]]] = {}


@pytest.fixture(scope="module")
def run(stack: RunningStack) -> Iterator[Run]:
    done = Run()
    done.before = scrape_all(stack)

    user, model = ready_owner(stack, unique_name("metered"))
    done.users.append(user)
    enhanced = generate(stack, user, model_id=model["id"], enhance=True, num_outputs=1)
    assert enhanced.status_code == 202, enhanced.text
    assert wait_generation(stack, user, enhanced.json()["id"])["status"] == "succeeded"
    emulator(stack, "config", {"fail_next_predictions": 1})
    failing = generate(stack, user, model_id=model["id"], num_outputs=1)
    assert failing.status_code == 202, failing.text
    assert wait_generation(stack, user, failing.json()["id"])["status"] == "failed"
    with httpx.Client(base_url=stack.url, headers=stack.auth(user), timeout=15) as client:
        assert client.post("/v1/me/export").status_code == 202

    event = {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "customer.created"}
    assert signed(stack, {**event, "data": {"object": {}}}, secret="whsec_wrong").status_code == 400

    asyncio.run(poison_billing(stack))

    for i in range(30):
        other = unique_name(f"many{i}")
        done.users.append(other)
        ask_by_id(stack, other)
        if i == 0:
            # What one user's requests have added; twenty-nine more must add nothing.
            done.series_after_one = {s: series_of(stack, s) for s in SERVICES}
    done.series_after_all = {s: series_of(stack, s) for s in SERVICES}
    leaving = unique_name("leaving")
    done.users.append(leaving)
    ask_by_id(stack, leaving)
    request_deletion(stack, leaving)
    wait_erased(stack, leaving)

    with extra_gateway(stack, GATEWAY_USER_RATE_PER_S="0.2", GATEWAY_USER_BURST="3") as tight:
        done.limited_before = scrape(f"{tight}/metrics")
        pushy = unique_name("pushy")
        done.users.append(pushy)
        with httpx.Client(base_url=tight, headers=stack.auth(pushy), timeout=15) as client:
            codes = [client.get("/v1/me").status_code for _ in range(6)]
        assert 429 in codes, codes
        done.limited = scrape(f"{tight}/metrics")

    def settled() -> dict[str, Samples] | None:
        after = scrape_all(stack)
        dead = total(after["billing"], "visiona_dead_letter_messages", consumer="billing.holds")
        sampled = all(present(after[s], n, **want) for s in SERVICES for n, want in SAMPLED[s])
        moved = all(
            total(after[s], n, **want) > total(done.before[s], n, **want)
            for s in SERVICES
            for n, want in MOVED[s]
        )
        return after if dead >= 1 and sampled and moved else None

    try:
        done.after = wait_for("every metric to move", settled, lambda a: a is not None, 60)
    except AssertionError:
        done.after = scrape_all(stack)  # the tests below name what did not move
    try:
        yield done
    finally:
        asyncio.run(purge_dead_letters(stack, "billing.holds"))


@pytest.mark.parametrize("service", SERVICES)
def test_each_metric_moves_in_the_process_that_owns_it(run: Run, service: str) -> None:
    still = [
        (name, labels, total(run.after[service], name, **labels))
        for name, labels in MOVED[service]
        if total(run.after[service], name, **labels) <= total(run.before[service], name, **labels)
    ]
    assert not still, f"{service}: did not move: {still}"


@pytest.mark.parametrize("service", SERVICES)
def test_sampled_gauges_are_there(run: Run, service: str) -> None:
    missing = [(n, w) for n, w in SAMPLED[service] if not present(run.after[service], n, **w)]
    assert not missing, f"{service}: not sampled: {missing}"


def test_dead_letters_are_a_gauge_of_the_consumer_group(run: Run) -> None:
    dead = total(run.after["billing"], "visiona_dead_letter_messages", consumer="billing.holds")
    assert dead >= 1


def test_a_rate_limit_rejection_is_counted_by_scope(run: Run) -> None:
    name = "visiona_rate_limit_rejections_total"
    assert total(run.limited, name, scope="user") > total(run.limited_before, name, scope="user")


# Every label name the catalogue uses, and the client library's own process metrics'.
ALLOWED_LABELS = {
    *("method", "route", "code", "grpc_service", "grpc_method", "grpc_code"),
    *("consumer", "outcome", "kind", "state", "provider", "operation", "source"),
    *("result", "scope", "le"),
    # prometheus-client's python_info and python_gc_* metrics.
    *("implementation", "major", "minor", "patchlevel", "version", "generation"),
}
UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
DIGITS = re.compile(r"\d{5,}")
# The gateway's routes outside its OpenAPI document, and the label of a path no route has.
UNDOCUMENTED_ROUTES = {*PAGES, "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
UNMATCHED = "unmatched"
# The families requests by id reach: the gateway's HTTP and gRPC-client ones and the gRPC-server
# ones of the services it calls (samplers, relays and consumers may add series meanwhile).
ASKED_BY_ID = ("http_server_", "grpc_server_", "grpc_client_", "visiona_rate_limit_")


def routes_of(stack: RunningStack) -> set[str]:
    """Every value the ``route`` label may take: the gateway's route templates."""
    paths = httpx.get(f"{stack.url}/openapi.json", timeout=10).json()["paths"]
    return {*paths, *UNDOCUMENTED_ROUTES, UNMATCHED}


@pytest.mark.parametrize("service", SERVICES)
def test_no_label_carries_a_user_an_id_or_an_unbounded_value(
    stack: RunningStack, run: Run, service: str
) -> None:
    """Label names from the catalogue's list, values free of anything of a user's, routes only
    as templates; and the series a family has do not grow with the number of users.

    The stack may be shared with every other end-to-end test (their requests are series too),
    so the bound is on growth: after one of the thirty users asked by id, the other
    twenty-nine add no series."""
    routes = routes_of(stack)
    series = series_of(stack, service)
    for name, label_sets in series.items():
        for labels in label_sets:
            assert {k for k, _ in labels} <= ALLOWED_LABELS, (name, labels)
            for key, value in labels:
                assert not UUID.search(value), (name, value)
                assert not DIGITS.search(value), (name, value)
                assert "@" not in value, (name, value)
                assert not any(user in value for user in run.users), (name, value)
                assert key != "route" or value in routes, (name, value)
    assert len(run.users) > 30
    before, after = run.series_after_one[service], run.series_after_all[service]
    grew = {
        name: sorted(now - before.get(name, set()))
        for name, now in after.items()
        if name.startswith(ASKED_BY_ID) and now - before.get(name, set())
    }
    assert not grew, grew


def test_the_gateway_serves_metrics_outside_the_api(stack: RunningStack) -> None:
    schema: dict[str, Any] = httpx.get(f"{stack.url}/openapi.json", timeout=10).json()
    assert "/metrics" not in schema["paths"]
    answer = httpx.get(
        f"{stack.url}/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
        timeout=10,
    )
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    # Exemplars: the trace a latency was measured in (the OpenMetrics format only).
    assert re.search(
        r'http_server_request_duration_seconds_bucket\{.*\} \S+ # \{trace_id="', answer.text
    )
