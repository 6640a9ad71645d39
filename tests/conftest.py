"""Suite-wide settings: hypothesis runs derandomized in CI (CI=true), so a run is repeatable;
locally it explores new examples every run."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
