"""synchub test suite."""
