"""Contract suites: one abstract test suite per SPI interface, run by every connector."""
