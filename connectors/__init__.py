"""Connector packages: one per external system, each built only on `hub.spi`."""
