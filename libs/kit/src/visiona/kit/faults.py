"""Telling an unavailable dependency from a failing handler.

A database, broker or object store that does not answer says nothing about the work being
done: retrying it later will succeed. Anything else (a bug, a message the handler refuses) is
the work's own failure.
"""

from __future__ import annotations

import psycopg
import sqlalchemy.exc
import urllib3.exceptions
from aiormq.exceptions import AMQPConnectionError, ChannelInvalidStateError

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection came back in time
    psycopg.OperationalError,
    AMQPConnectionError,
    ChannelInvalidStateError,
    urllib3.exceptions.MaxRetryError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ProtocolError,
    ConnectionError,
    OSError,  # TimeoutError too
)


def dependency_unavailable(exc: BaseException) -> bool:
    """True when ``exc``, or the error it was raised from, says a dependency could not be
    reached. (Only explicit causes count: an error raised while handling an outage is the
    handler's own.)"""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _UNAVAILABLE):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        seen.add(id(current))
        current = current.__cause__
    return False
