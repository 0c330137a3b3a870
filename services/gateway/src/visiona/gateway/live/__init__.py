"""The live feed: ``/v1/events`` (SSE), each user's events from the bus as they happen (feed),
and the stream a request reads them from (stream)."""
