"""The kit's install lock (`exclusive`, on filelock) excludes other processes, and processes of
an older checkout that lock the same file with a bare fcntl.flock (they share `.services/`)."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from connectors._kit.process import exclusive

HOLDER = """
import sys, time
from pathlib import Path
from connectors._kit.process import exclusive
with exclusive(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    print(f"releasing {time.time()!r}", flush=True)
"""


def test_a_second_process_waits_for_the_first(tmp_path: Path) -> None:
    lock = tmp_path / "services" / "install.lock"  # the folder is made on first use
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), "0.5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with lock.open("a") as f, pytest.raises(BlockingIOError):  # an older checkout's flock
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with exclusive(lock):
            acquired = time.time()
        releasing = float(holder.stdout.readline().split()[1])
        assert releasing <= acquired
        assert holder.wait(10) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
    assert lock.exists()  # left in place: later lockers share the same file


def test_a_bare_flock_holder_is_waited_for(tmp_path: Path) -> None:
    lock = tmp_path / "install.lock"
    inside = threading.Event()

    def take() -> None:
        with exclusive(lock):
            inside.set()

    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        waiter = threading.Thread(target=take)
        waiter.start()
        assert not inside.wait(0.3)
        fcntl.flock(f, fcntl.LOCK_UN)
    assert inside.wait(10)
    waiter.join(10)
