"""Request and response bodies of the REST API, one module per route area (routes/<area>.py)."""
