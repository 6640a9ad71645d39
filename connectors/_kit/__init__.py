"""Helpers shared by connectors (not part of the hub's SPI): `http` (an httpx client with
retries, Retry-After, a rate limit, timeouts and secret redaction), `options` (validating a
config section with pydantic) and `process` (local server processes, install locks)."""
