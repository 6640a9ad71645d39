"""Helpers shared by connectors (not part of the hub's SPI): local server processes."""
