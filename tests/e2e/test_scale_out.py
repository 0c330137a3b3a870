"""Horizontal scale: two instances of every back service behind the same database, exchange
and queues run the whole journey, and each job is done once.

Beside the session stack's services the test starts a second instance of each (its own gRPC
and metrics ports; tests/support/stack.second_instances) and a gateway whose addresses list
both instances, so its calls take them in turn (round robin, visiona.kit.metrics.grpcclient).
Several users then buy credits, upload photos, train a model and generate through that
gateway, side by side. What must hold:

- each job done once: one Replicate training per model, one prediction per generation (the
  Replicate emulator's own lists), one hold and one capture per paid job in billing's ledger,
  the images each generation asked for, and every balance equal to its ledger;
- both instances worked: each instance of each service answered gRPC calls, and both
  instances' consumers received deliveries and both instances' relays published, scraped
  from each instance's /metrics.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.test_billing import balance, buy_starter, ledger, wait_balance
from tests.e2e.test_generation import AFTER_TRAINING, IMAGE, STARTER, generate, wait_generation
from tests.e2e.test_metrics import Samples, scrape, total
from tests.e2e.training_helpers import api, replicate_get, trained_model
from tests.support.stack import RunningStack, SecondInstances, extra_gateway, second_instances
from visiona.kit.provision import BACK_SERVICES

# Three users side by side, each a purchase, ten photos, a training and three generations,
# on a machine that also runs the first instances: generous.
pytestmark = pytest.mark.timeout(900)

USERS = 3
GENERATIONS = 3  # per user, one image each


@dataclasses.dataclass
class Journey:
    user: str
    model: dict[str, Any]
    generations: list[dict[str, Any]]


def journey(gateway: RunningStack, name: str) -> Journey:
    user = f"{name}{uuid.uuid4().hex[:8]}"
    buy_starter(gateway, user)
    wait_balance(gateway, user, STARTER)
    model = trained_model(gateway, user)
    wait_balance(gateway, user, AFTER_TRAINING)
    generations = []
    # One at a time: the free plan allows no more.
    for _ in range(GENERATIONS):
        created = generate(gateway, user, model_id=model["id"], num_outputs=1)
        assert created.status_code == 202, created.text
        generations.append(wait_generation(gateway, user, created.json()["id"], timeout_s=120))
    wait_balance(gateway, user, AFTER_TRAINING - GENERATIONS * IMAGE)
    return Journey(user, model, generations)


def through(stack: RunningStack, url: str) -> RunningStack:
    """The stack as seen through another gateway (the e2e helpers call ``stack.url``)."""
    port = urlsplit(url).port
    assert port is not None
    cfg = dataclasses.replace(stack.cfg, ports=stack.cfg.ports | {"gateway": port})
    return dataclasses.replace(stack, cfg=cfg)


def instance_samples(stack: RunningStack, second: SecondInstances) -> dict[str, list[Samples]]:
    """Each back service's two instances' /metrics, first then second."""
    return {
        service: [scrape(stack.metrics_url(service)), scrape(second.metrics_url(service))]
        for service in BACK_SERVICES
    }


def moved(before: Samples, after: Samples, name: str) -> float:
    return total(after, name) - total(before, name)


def test_two_instances_of_every_service_do_each_job_once(stack: RunningStack) -> None:
    with second_instances(stack) as second:
        before = instance_samples(stack, second)
        with extra_gateway(stack, **second.gateway_env()) as url:
            gateway = through(stack, url)
            with ThreadPoolExecutor(USERS) as pool:
                journeys = list(pool.map(lambda i: journey(gateway, f"scale{i}"), range(USERS)))
            after = instance_samples(stack, second)
            check_each_job_done_once(gateway, journeys)

    # Both instances of every service answered gRPC calls (the gateway's and each other's).
    for service in BACK_SERVICES:
        handled = [
            moved(before[service][i], after[service][i], "grpc_server_handled_total")
            for i in (0, 1)
        ]
        assert all(n > 0 for n in handled), (service, handled)
    # Both instances' consumers took deliveries from the shared queues, and both instances'
    # relays published from the shared outboxes (which instance publishes a row is a race
    # between them, so the count is over all services).
    for metric in ("visiona_consumer_deliveries_total", "visiona_relay_published_total"):
        by_instance = [
            sum(moved(before[s][i], after[s][i], metric) for s in BACK_SERVICES) for i in (0, 1)
        ]
        assert all(n > 0 for n in by_instance), (metric, by_instance)
    # Billing takes every hold and capture request from the bus: both instances did some.
    billing = [
        moved(before["billing"][i], after["billing"][i], "visiona_consumer_deliveries_total")
        for i in (0, 1)
    ]
    assert all(n > 0 for n in billing), billing


def check_each_job_done_once(gateway: RunningStack, journeys: list[Journey]) -> None:
    """Every rule for every user, all of them checked before failing (a failure names each
    job done twice or missing, not only the first)."""
    trainings = replicate_get(gateway, "/v1/trainings").json()["results"]
    predictions = replicate_get(gateway, "/v1/predictions").json()["results"]
    problems: list[str] = []
    for j in journeys:
        # The provider's names carry the model id only (training.jobs.model.provider_model_name).
        provider_name = f"vsn-{uuid.UUID(j.model['id']).hex}"
        mine = [t["id"] for t in trainings if t["destination"].endswith(f"/{provider_name}")]
        if len(mine) != 1:
            problems.append(f"{j.user}: model {j.model['id']} has trainings {mine}")
        runs = [p["id"] for p in predictions if p["model"].endswith(f"/{provider_name}")]
        if len(runs) != GENERATIONS:
            problems.append(f"{j.user}: {GENERATIONS} generations made predictions {runs}")

        for generation in j.generations:
            if generation["status"] != "succeeded" or len(generation["images"]) != 1:
                problems.append(f"{j.user}: generation {generation}")
        with api(gateway, j.user) as c:
            gallery = c.get("/v1/images", params={"model_id": j.model["id"]}).json()["images"]
        if len(gallery) != GENERATIONS:
            problems.append(f"{j.user}: {len(gallery)} images")

        entries = ledger(gateway, j.user)
        holds = Counter(e["reference"] for e in entries if e["kind"] == "hold")
        captures = Counter(e["reference"] for e in entries if e["kind"] == "capture")
        released = [e for e in entries if e["kind"] == "release"]
        # The training and each generation: held once, captured once, nothing released.
        if len(holds) != 1 + GENERATIONS or set(holds.values()) != {1} or captures != holds:
            problems.append(f"{j.user}: holds {dict(holds)}, captures {dict(captures)}")
        if released:
            problems.append(f"{j.user}: released {released}")
        now = balance(gateway, j.user)
        expected = AFTER_TRAINING - GENERATIONS * IMAGE
        if now["held"] != 0 or now["balance"] != expected:
            problems.append(f"{j.user}: balance {now}, expected {expected}")
        if now["balance"] != sum(e["delta_balance"] for e in entries):
            problems.append(f"{j.user}: balance {now} is not its ledger's sum")
    assert not problems, "\n".join(problems)
