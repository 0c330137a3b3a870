"""Where the tests' PostgreSQL and RabbitMQ come from."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.infra import choose_mode, local_rabbitmqctl


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
