"""`make demo`: install and start Tryton (an ERP and a CRM database) and TimeTagger, seed a
small consulting firm with two legal entities, run its whole loop through synchub on SQLite
(deals → projects → time → invoices → the CRM), and print what happened. Leaves
`.demo/synchub.yaml` for further commands.

With --keep-running the servers are detached (a session of their own) and outlive the demo;
`.demo/servers.json` records their PIDs, ports and data, and `--stop` (`make demo-stop`) stops
them by PID. A second --keep-running while they are up only says so; a plain run stops them and
starts afresh.

Usage: python -m demo [--keep-running | --stop] [--dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rich.console import Console

from connectors._kit.process import exclusive
from connectors.timetagger.localserver import TimeTaggerServer
from connectors.timetagger.localserver import ensure_installed as install_timetagger
from connectors.tryton.localserver import ADMIN_PASSWORD, TrytonServer, golden_database
from connectors.tryton.localserver import ensure_installed as install_tryton
from demo.report import MARK, run_demo
from demo.servers import Server, State

ROOT = Path(__file__).resolve().parents[1]
LOCK = ".lock"
OWN = {LOCK, "servers.json", "servers.tmp", "synchub.yaml", "mapping.yaml", "tryton", "timetagger"}
out = Console()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--keep-running", action="store_true", help="leave the servers up (stop: --stop)"
    )
    action.add_argument(
        "--stop", action="store_true", help="stop the servers a previous --keep-running left up"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=ROOT / ".demo",
        help="where the store, config, server data and state go (default: .demo/ in the checkout)",
    )
    args = parser.parse_args(argv)
    demo = args.dir.resolve()
    if not _is_demo_dir(demo):
        out.print(
            f"[red]{_shown(demo)} is not a demo directory[/]: it holds files the demo did not "
            "write, and a demo run empties its directory; give a new or empty one with --dir"
        )
        return 2
    demo.mkdir(parents=True, exist_ok=True)
    with exclusive(demo / LOCK):  # one demo (or stop) at a time in one directory
        state = State(demo / "servers.json")
        if args.stop:
            return stop(state)
        if args.keep_running and (up := already_up(state)):
            out.print("[yellow]the demo's servers are already up[/] (nothing started):")
            for server in up:
                out.print(f"  {server.describe()}")
            explore(demo / "synchub.yaml", live=True)
            return 0
        if state.path.exists():
            for line in state.stop():
                out.print(f"[dim]previous demo: {line}[/]")
        return start(demo, state, keep_running=args.keep_running)


def already_up(state: State) -> list[Server]:
    """The recorded servers if a whole demo's are recorded and every one still runs, else none
    (then a run stops what is left of them and starts afresh)."""
    servers, config = state.servers(), state.config()
    whole = {s.name for s in servers} == {"Tryton", "TimeTagger"} and config and config.exists()
    return servers if whole and all(s.is_running() for s in servers) else []


def stop(state: State) -> int:
    if not state.path.exists():
        out.print(f"no demo servers recorded in {_shown(state.path)}: nothing to stop")
        return 0
    lines = state.stop() or [f"no servers in {_shown(state.path)}: nothing to stop"]
    for line in lines:
        out.print(line)
    return 0


def start(demo: Path, state: State, *, keep_running: bool) -> int:
    with out.status("installing Tryton and TimeTagger into .services/ (first run only)…"):
        tryton_python = install_tryton(ROOT)
        tt_python = install_timetagger(ROOT)
    with out.status("baking the golden Tryton databases (first run only, a minute or two)…"):
        golden = golden_database(ROOT)
        golden_crm = golden_database(ROOT, "crm")
    _empty(demo)
    config = demo / "synchub.yaml"
    erp = TrytonServer(tryton_python, demo / "tryton", detached=keep_running)
    tt = TimeTaggerServer(tt_python, demo / "timetagger", multi_user=True, detached=keep_running)
    done = False
    try:
        with out.status("starting Tryton and TimeTagger on free 127.0.0.1 ports…"):
            erp.start()
            _record(state, config, "Tryton", erp.pid, erp.port, erp.url, erp.dbdir, erp.log)
            erp.add_database("erp", golden)
            erp.add_database("crm", golden_crm)
            tt.start()
            _record(state, config, "TimeTagger", tt.pid, tt.port, tt.url, tt.datadir, tt.log)
        out.print(f"Tryton     {erp.url}/erp and /crm   (admin / {ADMIN_PASSWORD})")
        out.print(f"TimeTagger {tt.url}")
        run_demo(erp, tt, config)
        done = True
    finally:
        if keep_running and done:
            out.print(
                f"[yellow]servers left running (PIDs {erp.pid}, {tt.pid}, recorded in "
                f"{_shown(state.path)}): `make demo-stop` stops them[/]"
            )
        else:
            tt.stop()
            erp.stop()
            state.path.unlink(missing_ok=True)
            out.print(
                f"[dim]servers stopped (the event store and config stay in {_shown(demo)}/)[/]"
            )
    explore(config, live=keep_running)
    return 0


def _record(
    state: State,
    config: Path,
    name: str,
    pid: int | None,
    port: int | None,
    url: str,
    data: Path,
    log: Path,
) -> None:
    assert pid is not None and port is not None, f"{name} is not started"
    state.record(config, Server.of(name, pid, port, url, data, log))


def explore(config: Path, *, live: bool) -> None:
    """The commands to go on with (the servers up, or only the store)."""
    synchub = _shown(Path(sys.executable).with_name("synchub"))
    cfg = f"--config {_shown(config)}"
    if live:
        out.print("\n[bold]Explore next[/] (the servers are up; `make demo-stop` stops them):")
        out.print(f"  {synchub} sync --once {cfg}     one more pass against the live servers")
        out.print(f"  {synchub} run {cfg}             sync every 5 s until Ctrl-C")
    else:
        out.print("\n[bold]Explore next[/] (the servers are stopped; the store stays):")
    out.print(f"  {synchub} status {cfg}")
    out.print(f"  {synchub} exceptions list {cfg}")
    out.print(f"  {synchub} history TimeEntry <id> {cfg}   (ids: `synchub events tail {cfg}`)")


def _is_demo_dir(path: Path) -> bool:
    """`path` is new, empty, or what a demo left (its files only, or its config)."""
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    config = path / "synchub.yaml"
    if config.is_file() and config.read_text(errors="replace").startswith(MARK):
        return True
    return all(p.name in OWN or p.name.startswith("synchub.db") for p in path.iterdir())


def _empty(demo: Path) -> None:
    """A fresh demo directory (all but the lock file we hold)."""
    for entry in demo.iterdir():
        if entry.name == LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is below it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
