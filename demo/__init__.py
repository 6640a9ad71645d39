"""`make demo`: a small consulting firm on real Tryton and TimeTagger servers, synced by synchub.

An application, not a connector: it starts the connectors' local servers, seeds them and drives
the hub, so it sits above `hub` and `connectors` and imports both; nothing below imports it.
"""
