"""Tests of the TimeTagger connector, against a real TimeTagger server."""
