"""Where the tests' PostgreSQL and RabbitMQ come from."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest

from tests.support.infra import choose_mode, local_rabbitmqctl
from tests.support.waiting import wait_for


def test_a_configured_url_wins_over_docker() -> None:
    env = {"VISIONA_ADMIN_DATABASE_URL": "postgresql://db/postgres"}
    assert choose_mode(env, lambda: True) == "configured"


def test_containers_are_used_when_nothing_is_configured_and_docker_answers() -> None:
    assert choose_mode({}, lambda: True) == "containers"


def test_local_services_are_used_without_a_docker_engine() -> None:
    assert choose_mode({}, lambda: False) == "local"


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs RabbitMQ's rabbitmqctl")
def test_rabbitmqctl_targets_the_configured_node() -> None:
    # rabbitmqctl's own "-n" with a node that does not exist: it names that node, proving the
    # command went to it and not to the machine's default broker.
    ctl = local_rabbitmqctl("amqp://guest:guest@127.0.0.1:5673/", "visiona-absent@localhost")
    with pytest.raises(subprocess.CalledProcessError) as info:
        ctl(["-q", "status"])
    assert "visiona-absent" in (info.value.stderr + info.value.stdout)


def test_rabbitmqctl_for_a_broker_elsewhere_needs_its_node_named() -> None:
    ctl = local_rabbitmqctl("amqp://guest:guest@10.0.0.9:5673/", None)
    with pytest.raises(RuntimeError, match="VISIONA_RABBITMQ_NODE"):
        ctl(["-q", "status"])


def test_a_wait_asks_again_when_a_probe_times_out_and_fails_naming_it_at_the_bound() -> None:
    calls: list[int] = []

    def slow_then_ready() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise httpx.ReadTimeout("slow")
        return len(calls)

    assert wait_for("ready", slow_then_ready, lambda n: n == 3, timeout_s=5) == 3

    def always_slow() -> int:
        raise httpx.ReadTimeout("slow")

    with pytest.raises(AssertionError, match="timed out waiting for nothing; last: ReadTimeout"):
        wait_for("nothing", always_slow, lambda n: True, timeout_s=0.1)

    def broken() -> int:
        raise ValueError("a bug, not a slow answer")

    with pytest.raises(ValueError):
        wait_for("a bug", broken, lambda n: True, timeout_s=5)
