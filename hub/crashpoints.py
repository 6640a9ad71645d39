"""Named points where a test can make the process die, to prove crash safety.

`crashpoint("ingest.after_append")` kills the process with SIGKILL when the environment variable
SYNCHUB_CRASH_AT names that point (optionally `NAME:N` to die on the N-th hit). Unset, it costs
one dictionary lookup. Used only for fault injection by the test suite.
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def crashpoint(name: str) -> None:
    target = os.environ.get("SYNCHUB_CRASH_AT")
    if not target:
        return
    point, _, nth = target.partition(":")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
