"""The chaos test (issue 13): the whole platform under faults, then its invariants counted.

``make chaos`` (``python -m bench.chaos``; ``CHAOS_ARGS`` for ``--faults``, ``--users``,
``--seed``, ``--duration``, ``--settle-timeout``, ``--think``, ``--verbose``, ``--out``). A
program, like the benchmarks, not a test: it takes as long as its faults do. A short bounded
run of it is a test (``tests/e2e/test_chaos.py``).

One run:

1. **Private servers** (``servers.py``): a PostgreSQL cluster (``initdb``) and a RabbitMQ node
   of its own, in a temporary folder on free ports, so that stopping and killing them harms
   nobody; the shared servers on 5432 and 5672 are never touched.
2. **The platform** (``platform.py``): ``LocalStack`` on those servers, with its own SeaweedFS
   and every emulator, fast provider timings, rate limits far above the load, pools as the
   benchmarks size them, and the safety nets' periods (reconcilers, Stripe event restaging,
   hold expiry, Stripe's webhook retries) fitted to a run's length.
3. **The workload** (``workload.py``) and **the nemesis** (``nemesis.py``) run side by side:
   several users buy credits, upload photos, train and generate through the gateway with
   ``Idempotency-Key`` on every POST and retries until a definitive answer, while one fault
   at a time hits a service, PostgreSQL or RabbitMQ, is healed, and is timed until the
   gateway's ``/readyz`` is ready again. Anything that dies on its own is restarted (as an
   orchestrator would) and reported.
4. **Settling**: the nemesis stops, the users start nothing new, every process is made to
   run, and the run waits (bounded by ``--settle-timeout``) until nothing moves: every user
   done, every generation and training final, every outbox drained, no message left in a
   consumer queue, no webhook pending at the emulators, every Stripe event applied, and no
   hold open that would expire before the deadline.
5. **Invariants** (``invariants.py``): read from the sources of truth (the databases as
   superuser, the bucket, the broker, Stripe's sessions) against the workload's journal,
   each counted ok / lost / duplicated / unexpected.

It prints the counters and the recovery times per fault kind, writes ``bench/results/
chaos.json`` (``name``, ``ratio`` = the share of invariants that held, ``goal`` ``>= 1``,
``extra`` with the counters, examples, recovery times, processes that died on their own,
the settling and the workload's figures, ``when``), and exits 1 when any lost, duplicated or
unexpected counter is not 0. A failed run keeps its logs (services, PostgreSQL, RabbitMQ) and
an ``evidence.json`` (every fault, every key with its answer, every payment) and names their
folder; a clean run removes everything.

Determinism: the nemesis's choices (fault kinds, pauses) and each user's (packs, payment
outcomes, image counts, pauses, backoff jitter) come from RNGs derived from ``--seed``; the
same seed gives the same fault sequence and the same choices per user. Which request a
fault cuts through depends on timing, so two runs with one seed differ in what they find.
"""
