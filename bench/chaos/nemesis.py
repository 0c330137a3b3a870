"""The nemesis: one fault at a time, each healed, then timed until the platform is ready again.

Fault kinds (picked uniformly, from the run's seeded RNG):

- ``kill:<service>`` — SIGKILL of the gateway, training, generation, billing or prompts, which
  is started again after a pause of 0-2 s;
- ``stop:<service>`` — SIGSTOP, 1-3 s, SIGCONT (a process that hangs: connections open,
  nothing answered, leases lapse);
- ``postgres:immediate`` — ``pg_ctl stop -m immediate`` (every backend quits, no checkpoint),
  a pause of 0-2 s, start (recovery from the WAL);
- ``postgres:kill`` — ``kill -9`` of the postmaster (its backends notice and quit), a pause of
  0-2 s, start;
- ``rabbitmq:close`` — ``rabbitmqctl close_all_connections`` (every client connection
  dropped at once; the broker stays up);
- ``rabbitmq:stop_app`` — ``rabbitmqctl stop_app``, a pause of 0-2 s, ``start_app`` (the node
  stays, the broker goes away and comes back with its queues);
- ``rabbitmq:kill`` — ``kill -9`` of the node's Erlang VM, a pause of 0-2 s, start (quorum
  queues recover from their logs).

A fault is *healed* when the nemesis has undone what it did (the process restarted or
resumed, the server started). Its recovery time is from then until the gateway's ``/readyz``
first answers ready (every service SERVING: database and broker reachable) — how long the
platform needs once the cause is gone. ``outage_s`` is from the injection instead. Between
faults the platform gets a quiet 0.5-2 s. Whatever dies on its own meanwhile is restarted (as
an orchestrator would) and recorded with the fault during which it died.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.chaos.platform import TARGETS, ChaosPlatform, wait_ready
from bench.chaos.servers import ServerError

KINDS = (
    *(f"kill:{s}" for s in TARGETS),
    *(f"stop:{s}" for s in TARGETS),
    "postgres:immediate",
    "postgres:kill",
    "rabbitmq:close",
    "rabbitmq:stop_app",
    "rabbitmq:kill",
)
RESTART_PAUSE_S = (0.0, 2.0)
STOP_S = (1.0, 3.0)
GAP_S = (0.5, 2.0)


@dataclass
class Fault:
    n: int
    kind: str
    started: float  # seconds since the run's start
    injected_at: float  # time.monotonic()
    wall: str = field(  # when, as the services' logs say it (UTC)
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds")
    )
    healed_at: float = 0.0
    ready_at: float | None = None
    held_s: float = 0.0  # the pause or stop the RNG chose
    error: str | None = None  # the injection failed (counted apart, not as a fault)
    died: list[str] = field(default_factory=list)  # processes that died on their own meanwhile

    @property
    def recovery_s(self) -> float | None:
        return None if self.ready_at is None else self.ready_at - self.healed_at

    @property
    def outage_s(self) -> float | None:
        return None if self.ready_at is None else self.ready_at - self.injected_at

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "kind": self.kind,
            "at_s": round(self.started, 2),
            "at": self.wall,
            "held_s": round(self.held_s, 2),
            "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 3),
            "outage_s": None if self.outage_s is None else round(self.outage_s, 3),
            "error": self.error,
            "died": self.died,
        }


@dataclass(eq=False)
class Nemesis:
    """Injects ``target`` faults (or as many as ``duration_s`` allows), one at a time, and
    reports every ``every``-th."""

    platform: ChaosPlatform
    rng: random.Random
    _: KW_ONLY
    target: int
    duration_s: float | None
    recover_timeout_s: float
    say: Callable[[str], None]
    every: int = 10
    faults: list[Fault] = field(default_factory=list, init=False)
    origin: float = field(default_factory=time.monotonic, init=False)

    @property
    def injected(self) -> list[Fault]:
        return [f for f in self.faults if f.error is None]

    def _more(self) -> bool:
        if len(self.injected) >= self.target:
            return False
        return self.duration_s is None or time.monotonic() - self.origin < self.duration_s

    async def run(self, workload_done: Callable[[], bool]) -> None:
        while self._more():
            if workload_done():
                self.say("every user has stopped: the nemesis stops early")
                return
            await asyncio.sleep(self.rng.uniform(*GAP_S))
            kind = self.rng.choice(KINDS)
            fault = Fault(
                len(self.faults) + 1, kind, time.monotonic() - self.origin, time.monotonic()
            )
            self.faults.append(fault)
            exits_before = len(self.platform.exits)
            try:
                await self._inject(fault)
            except (ServerError, OSError) as exc:
                fault.error = f"{type(exc).__name__}: {str(exc)[:300]}"
                self.say(f"fault {fault.n} {kind}: injection failed: {fault.error}")
            finally:
                self.platform.held.clear()
            fault.healed_at = time.monotonic()
            fault.ready_at = await wait_ready(self.platform, self.recover_timeout_s)
            fault.died = [e.name for e in self.platform.exits[exits_before:]]
            n = len(self.injected)
            if fault.ready_at is None or fault.died or n % self.every == 0 or n == self.target:
                recovery = (
                    f"NOT ready after {self.recover_timeout_s:.0f} s"
                    if fault.recovery_s is None
                    else f"ready {fault.recovery_s:.1f} s after healing"
                )
                died = f"; died meanwhile: {', '.join(fault.died)}" if fault.died else ""
                self.say(
                    f"fault {n}/{self.target} {kind} (held {fault.held_s:.1f} s): {recovery}{died}"
                )

    async def _pause(self, fault: Fault, bounds: tuple[float, float]) -> None:
        fault.held_s = self.rng.uniform(*bounds)
        await asyncio.sleep(fault.held_s)

    async def _restart(
        self, fault: Fault, held: str, stop: Callable[[], object], start: Callable[[], object]
    ) -> None:
        """``stop`` a server, pause, ``start`` it again; ``held`` (not expected to answer)
        meanwhile."""
        self.platform.held.add(held)
        await asyncio.to_thread(stop)
        await self._pause(fault, RESTART_PAUSE_S)
        await asyncio.to_thread(start)

    async def _inject(self, fault: Fault) -> None:
        p = self.platform
        what, _, name = fault.kind.partition(":")
        if what == "kill":
            await self._restart(
                fault, name, lambda: p.stack.kill(name), lambda: p.stack.start(name)
            )
        elif what == "stop":
            pid = p.pid(name)
            if pid is None:
                raise ServerError(f"{name} is not running")
            os.kill(pid, signal.SIGSTOP)
            try:
                await self._pause(fault, STOP_S)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        elif fault.kind == "postgres:immediate":
            await self._restart(fault, "postgres", p.pg.stop_immediate, p.pg.start)
        elif fault.kind == "postgres:kill":
            await self._restart(fault, "postgres", p.pg.kill_postmaster, p.pg.start)
        elif fault.kind == "rabbitmq:close":
            await asyncio.to_thread(p.mq.close_all_connections)
        elif fault.kind == "rabbitmq:stop_app":
            await self._restart(fault, "rabbitmq", p.mq.stop_app, p.mq.start_app)
        elif fault.kind == "rabbitmq:kill":
            await self._restart(fault, "rabbitmq", p.mq.kill, p.mq.start)
        else:
            raise ValueError(f"unknown fault {fault.kind}")


def recovery_table(faults: list[Fault]) -> dict[str, dict[str, Any]]:
    """Per fault kind: how many, recovery p50 and max (s), and how many never got ready."""
    from bench.common import percentile

    table: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        of_kind = [f for f in faults if f.kind == kind and f.error is None]
        if not of_kind:
            continue
        times = [f.recovery_s for f in of_kind if f.recovery_s is not None]
        outages = [f.outage_s for f in of_kind if f.outage_s is not None]
        table[kind] = {
            "count": len(of_kind),
            "recovery_p50_s": round(percentile(times, 50), 3) if times else None,
            "recovery_max_s": round(max(times), 3) if times else None,
            "outage_p50_s": round(percentile(outages, 50), 3) if outages else None,
            "not_recovered": len(of_kind) - len(times),
            "died_meanwhile": sum(len(f.died) for f in of_kind),
        }
    return table
