"""`make up` stops with a message naming the fix when PostgreSQL or RabbitMQ is unreachable."""

from __future__ import annotations

from visiona.emulators.stack import check_postgres, check_rabbitmq, free_port


def test_unreachable_postgres_is_named_with_the_fix() -> None:
    message = check_postgres(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    assert message is not None
    assert "PostgreSQL is not reachable" in message
    assert "pg_ctlcluster" in message
    assert "VISIONA_ADMIN_DATABASE_URL" in message


def test_unreachable_rabbitmq_is_named_with_the_fix() -> None:
    message = check_rabbitmq(f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    assert message is not None
    assert "rabbitmq-server -detached" in message
    assert "VISIONA_AMQP_URL" in message


def test_reachable_services_pass(stack_urls: tuple[str, str]) -> None:
    admin_url, amqp_url = stack_urls
    assert check_postgres(admin_url) is None
    assert check_rabbitmq(amqp_url) is None
