"""The cross-cutting HTTP edge: what every request passes through before (and after) a route.

Token verification (auth), the request id (request_context), security headers, CORS and the
cross-site guard (security), allowed methods (methods), rate limits and the erasure block
(ratelimit), Idempotency-Key (idempotency), problem+json errors (problems), strict request
bodies (inputs), the OpenAPI document's rules (openapi), and the keyed hashes that stand in for
user ids and addresses (pseudonyms).
"""
