"""REST routes, one module per area; each module is a router whose handlers call a back
service (or the gateway's own account records) and map the answer to schemas/<area>.py."""
