"""hub.ingest is ground layer (docs/architecture.md): importing it, with everything it imports in
turn, loads no module of the layers above it."""

from __future__ import annotations

import json
import subprocess
import sys

ABOVE = ("projections", "hub.outbound", "hub.engine", "hub.cli", "demo", "connectors")


def test_hub_ingest_imports_nothing_above_the_ground_layer() -> None:
    code = (
        "import json, sys\n"
        "import hub.ingest, hub.ingest.envelope, hub.ingest.heads, hub.ingest.ingestor\n"
        "import hub.ingest.quarantine, hub.ingest.reconcile\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    above = [m for m in loaded if any(m == a or m.startswith(a + ".") for a in ABOVE)]
    assert above == []
    assert "hub.ingest.ingestor" in loaded  # the check ran on the package
