"""``python -m bench.chaos [--faults N] [--users N] [--seed N] [--duration S] …`` (``make chaos``).

Starts private servers and the whole platform, runs the workload and the nemesis side by
side, settles, checks the invariants, prints the counters and recovery times, writes
``bench/results/chaos.json`` (``--out``), and exits 1 when any counter is lost, duplicated or
unexpected (2 when the run itself could not be made). See ``bench/chaos/__init__.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.chaos.invariants import CATEGORIES, Tally, check, gather_facts
from bench.chaos.nemesis import Nemesis, recovery_table
from bench.chaos.platform import TERMINAL, ChaosPlatform, chaos_platform, wait_ready
from bench.chaos.servers import ServerError
from bench.chaos.workload import Journal, Workload
from bench.common import RESULTS_DIR

GOAL = ">= 1"


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Report:
    args: argparse.Namespace
    tallies: dict[str, Tally]
    nemesis: Nemesis
    journal: Journal
    settle: dict[str, Any]
    exits: Counter[str]
    fault_phase_s: float
    total_s: float
    when: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def violations(self) -> int:
        return sum(t.violations for t in self.tallies.values())

    @property
    def ratio(self) -> float:
        """The share of invariants that held (goal: all of them)."""
        held = sum(1 for t in self.tallies.values() if t.violations == 0)
        return held / len(self.tallies) if self.tallies else 0.0

    def as_json(self) -> dict[str, Any]:
        injected = self.nemesis.injected
        return {
            "name": "chaos",
            "ratio": round(self.ratio, 3),
            "goal": GOAL,
            "extra": {
                "seed": self.args.seed,
                "users": self.args.users,
                "faults": len(injected),
                "faults_asked": self.args.faults,
                "fault_injections_failed": len(self.nemesis.faults) - len(injected),
                "fault_phase_s": round(self.fault_phase_s, 1),
                "total_s": round(self.total_s, 1),
                "violations": self.violations,
                "counters": {name: t.as_json() for name, t in self.tallies.items()},
                "recovery": recovery_table(self.nemesis.faults),
                "died_on_their_own": dict(self.exits),
                "settle": self.settle,
                "workload": workload_summary(self.journal),
            },
            "rounds": 1,
            "when": self.when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def workload_summary(journal: Journal) -> dict[str, Any]:
    keys: dict[str, Counter[str]] = {}
    for record in journal.keys:
        answer = (
            "acknowledged"
            if record.acknowledged
            else "unanswered"
            if record.status is None
            else f"{record.status} {record.code or ''}".strip()
        )
        keys.setdefault(record.op, Counter())[answer] += 1
    attempts = sum(sum(r.attempts.values()) for r in journal.keys)
    observed = Counter(o.status for o in journal.observed)
    failures = Counter(o.failure for o in journal.observed if o.failure)
    return {
        "users_set_up": journal.setup_done,
        "keys": {op: dict(c) for op, c in sorted(keys.items())},
        "post_attempts": attempts,
        "post_retries": attempts - len(journal.keys),
        "replayed_answers": sum(1 for r in journal.keys if r.replayed),
        "answers": dict(journal.answers.most_common(25)),
        "generations_followed": dict(observed),
        "generation_failures": dict(failures),
        "images_delivered": sum(o.delivered for o in journal.observed),
        "checkouts_paid": len(journal.paid),
        "credits_bought": sum(p.credits for p in journal.paid),
        "notes": journal.notes[:30],
    }


# --- settling ------------------------------------------------------------------------------------


async def quiescence(
    platform: ChaosPlatform, workload: Workload, deadline: float
) -> dict[str, Any]:
    """What is still moving (empty when everything has come to rest)."""
    pending: dict[str, Any] = {}
    running = sum(1 for t in workload.tasks if not t.done())
    if running:
        pending["users_still_working"] = running
    expires_before = time.time() + max(0.0, deadline - time.monotonic())
    try:
        ((generations, models, holds, stripe),) = await platform.sql(
            "SELECT (SELECT count(*) FROM generation.generations WHERE status <> ALL(%s)), "
            "(SELECT count(*) FROM training.models WHERE status <> ALL(%s) "
            " AND deleted_at IS NULL), "
            "(SELECT count(*) FROM billing.holds WHERE status = 'open' "
            " AND expires_at < to_timestamp(%s)), "
            "(SELECT count(*) FROM billing.stripe_events WHERE processed_at IS NULL)",
            list(TERMINAL),
            list(TERMINAL),
            expires_before,
        )
        outboxes = await platform.sql(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'"
        )
        unpublished = 0
        for (schema,) in outboxes:
            ((count,),) = await platform.sql(
                f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL'
            )
            unpublished += int(count)
        queues = await asyncio.to_thread(platform.mq.queues)
        webhooks = await platform.pending_webhooks()
    except Exception as exc:  # a server still coming back
        return pending | {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    backlog = {
        q["name"]: int(q.get("messages_ready") or 0) + int(q.get("messages_unacknowledged") or 0)
        for q in queues
        if not str(q["name"]).endswith(".dlq")
    }
    for name, value in (
        ("generations_not_final", generations),
        ("trainings_not_final", models),
        ("holds_open_expiring_in_time", holds),
        ("stripe_events_unapplied", stripe),
        ("outbox_unpublished", unpublished),
        ("queue_backlog", sum(backlog.values())),
        ("webhooks_pending", sum(webhooks.values())),
    ):
        if value:
            pending[name] = int(value)
    return pending


async def settle(platform: ChaosPlatform, workload: Workload, timeout_s: float) -> dict[str, Any]:
    """Stop new work, bring every process back, and wait (bounded) until nothing moves."""
    began = time.monotonic()
    deadline = began + timeout_s
    workload.finish(deadline)
    platform.held.clear()
    platform.resume_all()
    await asyncio.to_thread(platform.supervise)
    ready = await wait_ready(platform, timeout_s)
    pending: dict[str, Any] = {}
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        pending = await quiescence(platform, workload, deadline)
        if pending:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 2.0:  # quiet twice, 2 s apart
            break
        await asyncio.sleep(1.0)
        await asyncio.to_thread(platform.supervise)
    await workload.join()
    return {
        "settled": not pending,
        "seconds": round(time.monotonic() - began, 1),
        "ready_after_s": None if ready is None else round(ready - began, 1),
        "pending": pending,
    }


async def chaos(platform: ChaosPlatform, args: argparse.Namespace, run: str) -> Report:
    started = time.monotonic()
    workload = Workload(platform, args.users, args.seed, run, think_s=args.think)
    nemesis = Nemesis(
        platform,
        random.Random(f"{args.seed}:nemesis"),
        target=args.faults,
        duration_s=args.duration,
        recover_timeout_s=args.recover_timeout,
        say=say,
        every=1 if args.verbose else max(1, args.faults // 20),
    )
    workload.start()
    say(f"{args.users} users and the nemesis ({args.faults} faults, seed {args.seed}) start")
    await nemesis.run(lambda: workload.done)
    fault_phase_s = time.monotonic() - started
    say(
        f"{len(nemesis.injected)} faults in {fault_phase_s:.0f} s; settling "
        f"(at most {args.settle_timeout:.0f} s)"
    )
    settled = await settle(platform, workload, args.settle_timeout)
    say(f"settled: {settled}")
    facts = await gather_facts(platform)
    tallies = check(facts, workload.journal)
    return Report(
        args,
        tallies,
        nemesis,
        workload.journal,
        settled,
        Counter(e.name for e in platform.exits),
        fault_phase_s,
        time.monotonic() - started,
    )


# --- the report ---------------------------------------------------------------------------------


def table(report: Report) -> str:
    lines = [f"{'invariant':<32} {'unit':<19} {'ok':>7} {'lost':>6} {'dup':>6} {'unexp':>6}"]
    for name, tally in report.tallies.items():
        c = tally.counts
        lines.append(
            f"{name:<32} {tally.unit:<19} {c['ok']:>7} {c['lost']:>6} {c['duplicated']:>6} "
            f"{c['unexpected']:>6}"
        )
    lines.append("")
    lines.append(
        f"{'fault':<22} {'count':>5} {'recovery p50':>13} {'max':>8} {'outage p50':>11} "
        f"{'not ready':>9} {'died':>5}"
    )
    for kind, row in recovery_table(report.nemesis.faults).items():
        p50, top, outage = row["recovery_p50_s"], row["recovery_max_s"], row["outage_p50_s"]
        lines.append(
            f"{kind:<22} {row['count']:>5} {_s(p50):>13} {_s(top):>8} {_s(outage):>11} "
            f"{row['not_recovered']:>9} {row['died_meanwhile']:>5}"
        )
    if report.exits:
        died = ", ".join(f"{n} x{c}" for n, c in report.exits.most_common())
        lines.append(f"\nprocesses that died on their own (restarted): {died}")
    examples = [
        f"  {name} {category}: {example}"
        for name, tally in report.tallies.items()
        for category in CATEGORIES[1:]
        for example in tally.examples.get(category, [])
    ]
    if examples:
        lines += ["", "examples (at most 5 per counter):", *examples]
    return "\n".join(lines)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def headline(report: Report) -> str:
    broken = [n for n, t in report.tallies.items() if t.violations]
    line = (
        f"chaos: ratio={report.ratio:.2f} (goal {GOAL}) faults={len(report.nemesis.injected)} "
        f"users={report.args.users} seed={report.args.seed} violations={report.violations} "
        f"time={report.total_s:.0f}s settled={'yes' if report.settle['settled'] else 'no'}"
    )
    return line + (f" goal missed: {', '.join(broken)}" if broken else "")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _think(value: str) -> tuple[float, float]:
    low, _, high = value.partition(",")
    return float(low), float(high or low)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--faults", type=int, default=500, help="faults to inject (500)")
    parser.add_argument("--users", type=int, default=10, help="concurrent users (10)")
    parser.add_argument("--seed", type=int, default=1, help="the RNG seed (1)")
    parser.add_argument(
        "--duration", type=float, default=None, help="end the fault phase after S seconds"
    )
    parser.add_argument("--settle-timeout", type=float, default=300.0, metavar="S")
    parser.add_argument("--recover-timeout", type=float, default=180.0, metavar="S")
    parser.add_argument(
        "--think", type=_think, default=(0.5, 2.0), metavar="MIN,MAX", help="pause between jobs"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "chaos.json")
    parser.add_argument("--verbose", action="store_true", help="a line per fault")
    args = parser.parse_args(argv)
    if args.faults < 1 or args.users < 1:
        parser.error("--faults and --users must be at least 1")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    run = uuid.uuid4().hex[:6]
    try:
        with chaos_platform(run, log=say) as platform:
            report = asyncio.run(chaos(platform, args, run))
            if report.violations:
                platform.keep_logs = True
                evidence = {
                    "faults": [f.as_json() for f in report.nemesis.faults],
                    "keys": [k.as_json() for k in report.journal.keys],
                    "paid": [vars(p) for p in report.journal.paid],
                    "notes": report.journal.notes,
                    "counters": {n: t.as_json() for n, t in report.tallies.items()},
                }
                (platform.state / "evidence.json").write_text(json.dumps(evidence, indent=1))
    except ServerError as exc:
        print(f"chaos: could not run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chaos: interrupted (everything it started is stopped)", file=sys.stderr)
        return 130
    print(table(report), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    print(headline(report), flush=True)
    print(f"  ({report.total_s:.0f} s, {args.out})", file=sys.stderr, flush=True)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
