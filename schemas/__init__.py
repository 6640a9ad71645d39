"""Avro schemas shipped with synchub (package data only)."""
