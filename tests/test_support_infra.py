"""Where the tests' PostgreSQL and RabbitMQ come from."""

from __future__ import annotations

from tests.support.infra import choose_mode


def test_a_configured_url_wins_over_docker() -> None:
    env = {"VISIONA_ADMIN_DATABASE_URL": "postgresql://db/postgres"}
    assert choose_mode(env, lambda: True) == "configured"


def test_containers_are_used_when_nothing_is_configured_and_docker_answers() -> None:
    assert choose_mode({}, lambda: True) == "containers"


def test_local_services_are_used_without_a_docker_engine() -> None:
    assert choose_mode({}, lambda: False) == "local"
