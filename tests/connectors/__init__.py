"""Connector-specific tests, one package per connector."""
