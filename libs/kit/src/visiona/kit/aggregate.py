"""Aggregates as plain dataclasses that record what their transitions change, free of I/O.

:class:`Aggregate` is the bookkeeping every aggregate shares: a transition sets fields with
:meth:`Aggregate._set` and raises events with :meth:`Aggregate._raise`; the repository's save
writes :meth:`Aggregate.pull_changes` in one UPDATE and emits :meth:`Aggregate.pull_events`
in the same unit of work (the outbox).

:class:`ProviderJob` is a job paid for with billing's held credits and run at a provider
(training's ``Model``, generation's ``Generation``): the transitions that are the same for
both (billing's rejection, asking for credits again, failing, canceling, the launch attempt,
the provider's word heard, the cancel step and the poll's end). The service's class names its
states, its events and what its own transitions add. Nothing here reads a clock: ``now`` is
passed in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from visiona.kit.errors import NotYet
from visiona.kit.events import Event

# The states every provider job shares (the services' status enums spell them the same).
AWAITING_CREDITS = "awaiting_credits"
FAILED = "failed"
CANCELED = "canceled"


class Aggregate:
    """The columns changed and the events raised since the load (or the last save).

    A subclass is a ``@dataclass`` whose fields are the row's columns; the pending changes
    and events are no fields (nor part of its equality).
    """

    def __post_init__(self) -> None:
        self._changes: dict[str, Any] = {}
        self._events: list[Event] = []

    def pull_changes(self) -> dict[str, Any]:
        """The columns changed since the load (or the last pull), with their new values."""
        changes, self._changes = self._changes, {}
        return changes

    def pull_events(self) -> list[Event]:
        """The events raised since the load (or the last pull), in order."""
        events, self._events = self._events, []
        return events

    def _set(self, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self, name, value)
        self._changes |= changes

    def _raise(self, event: Event) -> None:
        self._events.append(event)


class JobState(Protocol):
    @property
    def terminal(self) -> bool: ...


@dataclass
class ProviderJob(Aggregate):
    """A paid job run at a provider: ``awaiting_credits`` until billing answers, then
    ``launch_status`` (the launch is due), then the provider's states, and an end.

    Its fields are the columns every such job's row has; the service's dataclass adds its
    own. The background work's columns are visiona.kit.jobs'.
    """

    # The state in which billing's hold is placed and the launch is due.
    launch_status: ClassVar[str]

    id: uuid.UUID
    user_id: str
    status: str
    hold_id: uuid.UUID | None
    provider_status: str | None
    launch_attempted_at: datetime | None
    provider_seen_at: datetime | None
    failure_reason: str | None
    failure_message: str | None
    work: str | None
    work_after: datetime | None
    work_attempts: int
    lease_until: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    # -- what the service's class provides -------------------------------------------------------

    @property
    def state(self) -> JobState:
        raise NotImplementedError

    @property
    def provider_running(self) -> bool:
        """The provider may still run the job (or be about to): a stop must reach it."""
        raise NotImplementedError

    def credits_request(self) -> Event:
        """The job's request to billing (asked again: a new event, the same job; billing holds
        once per job and answers a repeated request the same)."""
        raise NotImplementedError

    def _launch_due(self) -> None:
        """What the service adds when billing's hold makes the launch due (nothing here)."""

    def _failed(self, reason: str) -> Event:
        raise NotImplementedError

    def _canceled(self, reason: str) -> Event:
        raise NotImplementedError

    # -- billing's answers -----------------------------------------------------------------------

    def credits_reserved(self, hold_id: uuid.UUID, now: datetime) -> bool:
        """Billing holds the credits: the job's launch is due (True). A job canceled or failed
        meanwhile answers with its outcome again, so billing releases the hold at once
        instead of at its expiry (no change then)."""
        if self.status == AWAITING_CREDITS:
            self._set(
                status=self.launch_status,
                hold_id=hold_id,
                work="launch",
                work_after=now,
                work_attempts=0,
            )
            self._launch_due()
            return True
        if self.status == CANCELED:
            self._raise(self._canceled(self.failure_reason or "canceled"))
        elif self.status == FAILED:
            self._raise(self._failed(self.failure_reason or "failed"))
        return False

    def credits_rejected(self, reason: str, message: str, now: datetime) -> bool:
        """Billing held nothing: a job still waiting for its answer fails."""
        if self.status != AWAITING_CREDITS:
            return False
        return self.fail(reason, message, now)

    def ask_credits_again(self, after_s: float, now: datetime) -> bool:
        """Still no answer from billing: the request goes out again, and again ``after_s``
        later unless an answer comes."""
        if self.status != AWAITING_CREDITS or self.work != "ask_credits":
            return False
        self._raise(self.credits_request())
        self._set(work_after=now + timedelta(seconds=after_s))
        return True

    # -- the outcomes ----------------------------------------------------------------------------

    def _stop_work(self, now: datetime) -> dict[str, Any]:
        """An ended job's next step: cancel it at the provider if it may run there, else
        nothing."""
        if self.provider_running:
            return {"work": "cancel", "work_after": now, "work_attempts": 0}
        return {"work": None, "work_after": None}

    def fail(self, reason: str, message: str, now: datetime) -> bool:
        """End the job without its result; billing releases the hold."""
        if self.state.terminal:
            return False
        self._set(
            status=FAILED,
            failure_reason=reason,
            failure_message=message[:500],
            finished_at=now,
            **self._stop_work(now),
        )
        self._raise(self._failed(reason))
        return True

    def cancel(self, now: datetime, reason: str = "canceled_by_user") -> bool:
        """Cancel the job; the provider is told by the background work (``cancel``), billing
        releases."""
        if self.state.terminal:
            return False
        self._set(
            status=CANCELED,
            failure_reason=reason,
            failure_message=None,
            finished_at=now,
            **self._stop_work(now),
        )
        self._raise(self._canceled(reason))
        return True

    # -- the provider ----------------------------------------------------------------------------

    def launch_attempted(self, now: datetime, *, seen: datetime | None) -> bool:
        """Recorded before the (non-idempotent) create call, so a lost answer is adopted
        later; False when the job left ``launch_status`` meanwhile (nothing to launch).

        ``seen`` is the attempt the caller's decision to launch was based on (None: none). If
        another attempt was recorded since (a second worker took the row over while this one
        was still preparing: a lease that ran out), launching too would create the job twice
        at the provider, so :class:`NotYet` is raised instead: the step comes back later and
        adopts what that attempt created."""
        if self.status != self.launch_status:
            return False
        if self.launch_attempted_at != seen:
            raise NotYet("another launch attempt was recorded meanwhile")
        self._set(launch_attempted_at=now)
        return True

    def _heard(self, provider_status: str, quiet_s: float, now: datetime) -> None:
        """The provider's status and when it was heard, always recorded; a due poll waits
        ``quiet_s`` again."""
        self._set(provider_seen_at=now, provider_status=provider_status)
        if self.work == "poll":
            self._set(work_after=now + timedelta(seconds=quiet_s))

    def stop_polling(self) -> bool:
        """A poll that found the job ended: nothing more to ask the provider."""
        if self.work != "poll" or not self.state.terminal:
            return False
        self._set(work=None, work_after=None)
        return True

    def canceled_at_provider(self) -> bool:
        """The cancel step told the provider (or there was nothing to tell)."""
        if self.work != "cancel":
            return False
        self._set(work=None, work_after=None, provider_status="canceled")
        return True
