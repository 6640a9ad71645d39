"""Tests of the Tryton connector, against a real Tryton server."""
