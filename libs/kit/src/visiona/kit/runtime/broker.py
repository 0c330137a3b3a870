"""Reaching dependencies at start-up: retried calls, and the bus with its consumers attached
in the background (:class:`BrokerLink`) for as long as the broker takes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from tenacity import AsyncRetrying, stop_after_delay, stop_when_event_set, wait_exponential

from visiona.kit.aio import sleep_or_stop
from visiona.kit.bus import EventBus
from visiona.kit.consumer import EventConsumer
from visiona.kit.logging import get_logger

log = get_logger(__name__)


# Back-off between attempts to reach the broker: 0.2 s, doubling, at most this.
BROKER_RETRY_MAX_S = 5.0
# One attempt (a connect, or declaring and consuming one group) that takes longer is given up
# and tried again: a broker that accepts connections and never answers must not stall us.
BROKER_ATTEMPT_TIMEOUT_S = 15.0


async def retrying(what: str, attempt: Callable[[], Awaitable[None]], within_s: float) -> None:
    """Call ``attempt`` until it succeeds; after ``within_s`` its error is raised."""
    async for attempt_ctx in AsyncRetrying(
        stop=stop_after_delay(within_s),
        wait=wait_exponential(multiplier=0.2, max=3),
        reraise=True,
    ):
        with attempt_ctx:
            try:
                await attempt()
            except Exception as exc:
                log.warning("startup.waiting", dependency=what, error=repr(exc))
                raise


async def retrying_until_stopped(
    what: str,
    attempt: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    max_wait_s: float = BROKER_RETRY_MAX_S,
    attempt_timeout_s: float = BROKER_ATTEMPT_TIMEOUT_S,
) -> bool:
    """Call ``attempt`` until it succeeds (True) or ``stop`` is set (False), with exponential
    backoff between failures, capped at ``max_wait_s``: for as long as it takes."""

    async def pause(seconds: float) -> None:
        await sleep_or_stop(stop, seconds)

    try:
        async for attempt_ctx in AsyncRetrying(
            stop=stop_when_event_set(stop),  # type: ignore[arg-type]
            wait=wait_exponential(multiplier=0.2, max=max_wait_s),
            sleep=pause,
            reraise=True,
        ):
            with attempt_ctx:
                try:
                    await asyncio.wait_for(attempt(), attempt_timeout_s)
                except Exception as exc:
                    log.warning("startup.waiting", dependency=what, error=repr(exc)[:300])
                    raise
    except Exception:
        return False  # stopped while still failing
    return True


class BrokerLink:
    """The bus and the consumers on it, attached in the background.

    :meth:`run` connects the bus, then starts each consumer (declares its queues, binds them,
    consumes), each step retried by :func:`retrying_until_stopped` until it succeeds. After
    that aio-pika's robust connection reconnects and declares everything again by itself.
    :meth:`missing` says what readiness still waits for.
    """

    def __init__(
        self,
        bus: EventBus,
        consumers: Sequence[EventConsumer],
        *,
        max_wait_s: float = BROKER_RETRY_MAX_S,
    ) -> None:
        self.bus = bus
        # Read when run() gets to them: consumers added before then are started too.
        self.consumers = consumers
        self.max_wait_s = max_wait_s
        self.attached = asyncio.Event()
        self._started = 0

    def missing(self) -> list[str]:
        """``rabbitmq`` while the bus is not connected, else each consumer not consuming."""
        if not self.bus.connected:
            return ["rabbitmq"]
        return [f"consumer {c.name}" for c in self.consumers[self._started :]]

    async def run(self, stop: asyncio.Event) -> bool:
        """Attach; True once the bus is connected and every consumer consumes, False when
        ``stop`` came first."""
        if not await retrying_until_stopped(
            "rabbitmq", self.bus.connect, stop, max_wait_s=self.max_wait_s
        ):
            return False
        while self._started < len(self.consumers):
            consumer = self.consumers[self._started]
            if not await retrying_until_stopped(
                f"rabbitmq (consumer {consumer.name})",
                consumer.start,
                stop,
                max_wait_s=self.max_wait_s,
            ):
                return False
            self._started += 1
        self.attached.set()
        log.info("broker.attached", consumers=self._started)
        return True
