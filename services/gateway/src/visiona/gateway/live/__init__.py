"""The gateway on the event bus: the live SSE feed (feed) and the backplane that runs the
gateway's database, outbox relay, consumers and background workers (backplane)."""
