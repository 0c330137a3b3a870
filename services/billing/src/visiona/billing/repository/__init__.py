"""Every SQL statement of the billing service, one module per aggregate, in SQLAlchemy Core's
textual SQL (``sa.text``) on the unit of work's connection, or psycopg statements on the same
transaction where a hot path wants one round trip.

- :mod:`.ledger`: balances, entries and holds, through the ledger's database functions
- :mod:`.account`: the user's Stripe customer, and their rows in bulk (erasure, export)
- :mod:`.erasure`: erasure rounds waiting on Stripe (a row-as-job)
- :mod:`.checkout`: Checkout Sessions billing opened
- :mod:`.subscription`: plan subscriptions as Stripe last had them
- :mod:`.stripe_event`: stored Stripe events, their staging and per-object locks
- :mod:`.usage`: usage records from other services' events

Each repository is a :class:`visiona.kit.repository.Repository` bound to the unit of work's
connection.
"""
