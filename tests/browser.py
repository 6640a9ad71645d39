"""Debian's headless Chromium for the tests of what a person looks at: installed by the harness
when missing (apt-get, once per machine, under a file lock shared by the xdist workers)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from filelock import FileLock

BINARY = "chromium"


def chromium() -> str:
    """The path of the chromium binary, installing the Debian package first when missing."""
    found = shutil.which(BINARY)
    if found:
        return found
    with FileLock(Path(tempfile.gettempdir()) / "synchub-chromium.lock", timeout=900):
        found = shutil.which(BINARY)
        if found:
            return found
        if os.geteuid() != 0:
            raise RuntimeError("chromium is missing: `sudo apt-get install chromium`, then rerun")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
            check=True,
            env=env,
            timeout=900,
        )
    found = shutil.which(BINARY)
    assert found, "apt-get installed chromium but it is not on the PATH"
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def dump_dom(page: Path) -> str:
    """The DOM of `page` as Chromium rendered it (offline: a file URL)."""
    done = _run("--dump-dom", page.resolve().as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(page: Path, png: Path) -> Path:
    done = _run(f"--screenshot={png}", "--window-size=1200,900", page.resolve().as_uri())
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    return png
