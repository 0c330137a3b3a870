"""A stack with several instances of each back service: every instance on ports of its own,
and every client's address listing them all (a stack of one keeps its plain addresses)."""

from __future__ import annotations

from pathlib import Path

from visiona.emulators.stack import StackConfig, processes
from visiona.kit.provision import BACK_SERVICES

NAMES = ["gateway", *BACK_SERVICES, "anthropic", "stripe", "replicate", "clerk"]


def config(tmp_path: Path, instances: int) -> StackConfig:
    return StackConfig(
        admin_url="postgresql://postgres@127.0.0.1:5432/postgres",
        database="unused",
        amqp_url="amqp://guest:guest@127.0.0.1:5672/",
        ports={name: 10_000 + i for i, name in enumerate(NAMES)},
        state_dir=tmp_path,
        instances=instances,
    )


def test_one_instance_keeps_plain_addresses(tmp_path: Path) -> None:
    cfg = config(tmp_path, 1)
    envs = {name: env for name, (_, env) in processes(cfg).items()}
    assert not [name for name in envs if name.endswith("-2")]
    assert envs["gateway"]["GATEWAY_BILLING_ADDR"] == f"127.0.0.1:{cfg.ports['billing']}"


def test_two_instances_run_on_their_own_ports_and_every_client_lists_both(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path, 2)
    envs = {name: env for name, (_, env) in processes(cfg).items()}
    ports = set()
    for service in BACK_SERVICES:
        p = service.upper()
        first, second = envs[service], envs[f"{service}-2"]
        assert first[f"{p}_GRPC_PORT"] == str(cfg.ports[service])
        assert second[f"{p}_GRPC_PORT"] == str(cfg.ports[f"{service}-2"])
        assert second[f"{p}_METRICS_PORT"] == str(cfg.ports[f"{service}-2-metrics"])
        # The same database, exchange and queues.
        for key in ("DATABASE_URL", "EVENTS_EXCHANGE", "QUEUE_PREFIX"):
            assert first[f"{p}_{key}"] == second[f"{p}_{key}"]
        ports |= {second[f"{p}_GRPC_PORT"], second[f"{p}_METRICS_PORT"]}
        target = f"ipv4:127.0.0.1:{cfg.ports[service]},127.0.0.1:{cfg.ports[f'{service}-2']}"
        assert envs["gateway"][f"GATEWAY_{p}_ADDR"] == target
    assert len(ports) == 2 * len(BACK_SERVICES)
    assert envs["generation-2"]["GENERATION_BILLING_ADDR"] == cfg.grpc_target("billing")
    assert envs["training"]["TRAINING_BILLING_ADDR"].count(",") == 1
