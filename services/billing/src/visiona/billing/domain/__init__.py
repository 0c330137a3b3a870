"""Billing's rules, free of I/O: what a hold may become, what the ledger guarantees, what a
plan entitles to, what is kept of a Stripe event.

The ledger's own rules are enforced in PostgreSQL (the functions of migration 0002), because
every credit movement must be one atomic statement; :mod:`.ledger` and :mod:`.hold` state them,
and ``repository/ledger.py`` is the one place that calls those functions.

- :mod:`.catalog`: packs, plans, job prices, plan limits (the price list, from TOML)
- :mod:`.ledger`: entry kinds, keys, balances, and the events a movement raises
- :mod:`.hold`: the hold state machine and the answers to a job's request for credits
- :mod:`.subscription`: entitlements of a subscription
- :mod:`.checkout`: what a checkout sells, and recovering a session billing never recorded
- :mod:`.stripe_event`: which Stripe events billing acts on, and what it keeps of them
- :mod:`.usage`: usage recorded from other services' events
"""
