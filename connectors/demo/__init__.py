"""`make demo`: a small consulting firm on real Tryton and TimeTagger servers, synced by synchub.

It composes connectors (it starts their local servers and seeds them), so it lives beside them
and imports them; the hub knows nothing about it.
"""
