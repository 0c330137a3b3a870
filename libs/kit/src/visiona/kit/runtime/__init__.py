"""The shared ``serve``/``migrate`` entry point of every back service.

A service's ``__main__`` describes itself with a :class:`ServiceSpec` (settings, migrations,
gRPC servicers and consumers); :func:`run_cli` does the rest: logging, tracing, database,
broker, gRPC with health and reflection, the outbox relay, consumers, health reporting and a
graceful stop on SIGTERM or SIGINT.

Start-up waits a while for PostgreSQL and S3 (a service cannot answer anything without its
database). It never waits for RabbitMQ: the gRPC server starts at once and a
:class:`BrokerLink` connects the bus and starts the consumers in the background, retrying
with growing backoff for as long as it takes, whatever the broker does meanwhile (refusing
connections, or accepting them and dropping them mid-declaration). Until it is done,
readiness (the health service's default name) is NOT_SERVING and the log says what is
missing; liveness is SERVING throughout.
"""

from visiona.kit.runtime.broker import BrokerLink, retrying, retrying_until_stopped
from visiona.kit.runtime.cli import dead_letters, migrate, run_cli
from visiona.kit.runtime.serve import serve
from visiona.kit.runtime.spec import (
    DEAD_LETTERS,
    LIVENESS,
    Runtime,
    ServiceSpec,
    Wiring,
    Worker,
    periodic,
)

__all__ = [
    "DEAD_LETTERS",
    "LIVENESS",
    "BrokerLink",
    "Runtime",
    "ServiceSpec",
    "Wiring",
    "Worker",
    "dead_letters",
    "migrate",
    "periodic",
    "retrying",
    "retrying_until_stopped",
    "run_cli",
    "serve",
]
