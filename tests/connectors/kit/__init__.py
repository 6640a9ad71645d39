"""Tests of the connector kit (connectors/_kit): HTTP client, install locks."""
