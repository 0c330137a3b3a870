"""The account sagas the gateway runs itself: the Clerk profile (accounts), erasure, export,
and the audit log. Their SQL is in visiona.gateway.repository; Clerk's SDK in
visiona.gateway.providers.clerk."""

from __future__ import annotations

from typing import TypeVar

from visiona.kit.events import CATALOGUE, Event

E = TypeVar("E", bound=Event)


def answers_of(kind: type[E]) -> tuple[type[E], ...]:
    """Every participant's answer of ``kind`` (its ``AccountPurged``, its ``AccountExported``),
    as the kit's catalogue defines them: what a saga waits for."""
    return tuple(e for e in CATALOGUE.values() if issubclass(e, kind))
