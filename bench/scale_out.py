"""scale_out: generation throughput with two instances of each back service against one.

Two platforms run one after the other in the same run, each the whole of ``LocalStack``
(SeaweedFS and the Replicate emulator included): the first with one instance of each back
service, the second with two (``StackConfig.instances``; every client's address lists both
and its channel takes them in turn; both instances consume the same queues and relay the
same outboxes). The database connections are the same per service in both: one instance with
a pool of 4 + 2, or two with 2 + 1 each.

On each: ``USERS`` users buy the Pro pack, upload 10 photos and train a model (not measured);
every user makes one generation (a warm-up, not measured); then every user makes ``rounds``
one-image generations back to back, as bench/generation_throughput.py does at its largest
level (the emulator takes exactly ``PREDICTION_S`` per prediction and runs any number at
once). Throughput = generations ÷ the wall time from the first POST to the last success.

ratio (reported) = throughput with two instances ÷ with one, goal ``>= 0.9``. Both
platforms share this machine's two cores with PostgreSQL, RabbitMQ, SeaweedFS and the load
generator, and the provider's 3 s dominate each generation, so a second instance adds no
cores and no speed-up is expected: the goal is that spreading the work over two instances
(round robin, competing consumers and relays, row-job leases) costs nothing measurable. The
real gain of a second pod, more cores, cannot show on one machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import Iterator
from typing import Any

from bench.common import (
    BrokerWatch,
    Measurement,
    Result,
    bench_stack_config,
    load_average,
    running_stack,
    undisturbed,
)
from bench.generation_flow import FullPlatform, ready_users, settle
from bench.generation_throughput import _level
from visiona.kit.provision import BACK_SERVICES

NAME = "scale_out"
GOAL = ">= 0.9"
PREDICTION_S = 3.0
USERS = 8
# Connections per service, the same in both platforms (see the module's docstring).
POOLS = {1: ("4", "2"), 2: ("2", "1")}
NOTES = (
    "Two platforms one after the other on the same machine: one instance of each back service, "
    "then two. Both share the machine's 2 cores with Postgres, RabbitMQ, SeaweedFS and this "
    "load generator, and each generation waits 3.0 s on the provider emulator, so a second "
    "instance brings no extra cores: the ratio shows what spreading the work costs, not what "
    "a second pod gains. Per-service database connections are equal in both (pool 4 + 2, or "
    "2 + 1 per instance)."
)


@contextlib.contextmanager
def platform_with(instances: int) -> Iterator[FullPlatform]:
    pool, overflow = POOLS[instances]
    env = {
        f"{service.upper()}_{setting}": value
        for service in BACK_SERVICES
        for setting, value in (("DB_POOL_SIZE", pool), ("DB_POOL_OVERFLOW", overflow))
    } | {"GATEWAY_DB_POOL_SIZE": "4", "GATEWAY_DB_POOL_OVERFLOW": "2"}
    label = f"scale{instances}"
    cfg = dataclasses.replace(
        bench_stack_config(label, ["anthropic", "stripe", "replicate"], env), instances=instances
    )
    with running_stack(cfg, label) as (stack, issuer):
        yield FullPlatform(cfg, stack, issuer)


async def _throughput(stack: FullPlatform, rounds: int) -> dict[str, Any]:
    await stack.replicate_config(
        start_delay_s=0.0, training_duration_s=1.0, prediction_duration_s=PREDICTION_S
    )
    users = await ready_users(stack, USERS, "scl")
    watch = BrokerWatch()
    await watch.open()
    try:
        await undisturbed(watch, lambda: _level(stack, users, 1), settle)
        level, repeats = await undisturbed(
            watch, functools.partial(_level, stack, users, rounds), settle
        )
    finally:
        for user in users:
            await user.client.aclose()
        await watch.close()
    latencies = [g.end_to_end_s for g in level.gens]
    return {
        "measurement": Measurement.of(latencies, level.wall_s),
        "per_s": round(len(level.gens) / level.wall_s, 4),
        "generations": len(level.gens),
        "wall_s": round(level.wall_s, 3),
        "repeated_for_broker_closures": repeats,
    }


def run(rounds: int) -> Result:
    load_at_start = load_average()
    phases: dict[int, dict[str, Any]] = {}
    for instances in (1, 2):
        with platform_with(instances) as stack:
            phases[instances] = asyncio.run(_throughput(stack, rounds))
    one, two = phases[1], phases[2]
    return Result(
        name=NAME,
        ratio=round(two["per_s"] / one["per_s"], 4),
        goal=GOAL,
        candidate=two["measurement"],
        baseline=one["measurement"],
        rounds=rounds,
        extra={
            "per_s_one_instance": one["per_s"],
            "per_s_two_instances": two["per_s"],
            "ideal_per_s": round(USERS / PREDICTION_S, 4),
            "phases": {
                str(n): {k: v for k, v in phase.items() if k != "measurement"}
                for n, phase in phases.items()
            },
            "users": USERS,
            "generations_per_user": rounds,
            "prediction_s": PREDICTION_S,
            "load_avg_1m_at_start": load_at_start,
            "notes": NOTES,
        },
        headline=("per_s_one_instance", "per_s_two_instances"),
    )
