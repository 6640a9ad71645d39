"""Write-behind: a rebuild's writes to its fresh tables run in a thread, on a connection of
their own, while the fold goes on with the next events.

The fold is Python (it holds the GIL); most of a write is the database's C code, which
sqlite3 and psycopg run without the GIL, so on a machine with two cores the writes cost the
fold little more than building their rows. Statements are sent in large batches (thousands of
rows each), because the writer thread waits for the GIL after every statement (up to the
interpreter's switch interval while the fold runs).

`cursor()` is the cursor the fold uses: `executemany`, and `execute` of anything but a
SELECT, are queued and run in order by the thread, what is queued together in one
transaction; a SELECT first waits until every queued statement is committed, then runs on a
second connection in the calling thread, so a read sees every write before it.
`read_after(mark, …)` waits only for the statements queued before `mark()` was taken (a row
cache reading back a row it handed over long ago need not wait for the latest writes). An
error of a queued statement is raised by the next call (and by `close`), and nothing after it
runs.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from hub.store.base import Cursor, ScratchSession

_READS = frozenset(("SELECT", "WITH"))
"""Statements that return rows (their first word): run at once, after the queued writes."""
_Job = tuple[str, Any, bool]
"""(statement, parameters, many)."""


class WriteBehind:
    """Runs queued writes on `writer` in a thread, reads on `reader` (module docstring)."""

    def __init__(self, writer: ScratchSession, reader: ScratchSession, depth: int = 64) -> None:
        self.session = writer
        self._reader = reader.cursor()
        self._isolated = reader.isolated_reads
        self._aborted = False
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=depth)
        self._submitted = 0
        self._done = 0
        self._changed = threading.Condition()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="synchub-write-behind", daemon=True)
        self._thread.start()

    def cursor(self) -> Cursor:
        return _Cursor(self)

    def submit(self, statement: str, parameters: Any, many: bool) -> None:
        self._raise()
        self._submitted += 1
        self._jobs.put((statement, parameters, many))

    def mark(self) -> int:
        """A mark of the statements queued so far (see `wait`)."""
        return self._submitted

    def wait(self, mark: int | None = None) -> None:
        """Return once every statement queued before `mark` (default: all) is committed;
        raise the error of a failed one."""
        upto = self._submitted if mark is None else mark
        with self._changed:
            while self._done < upto and self._error is None:
                self._changed.wait()
        self._raise()

    def read(self, statement: str, parameters: Sequence[Any], mark: int | None = None) -> Rows:
        """The rows of a SELECT run once the statements queued before `mark` (default: all)
        are committed. They are fetched at once, so the read ends there: an open read would
        keep SQLite from checkpointing the writes after it, and the swap's commit would copy
        them all."""
        self.wait(mark if self._isolated else None)
        self._reader.execute(statement, parameters)
        return Rows(self._reader.fetchall())

    def close(self) -> None:
        """Wait for the queued statements, then stop the thread (raise a statement's error,
        unless it was aborted)."""
        self._stop()
        if not self._aborted:
            self._raise()

    def abort(self) -> None:
        """Stop the thread without running what is still queued, and raise nothing (the
        caller is failing already: its error is the one to see)."""
        self._aborted = True
        self._stop()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        jobs = self._jobs
        stop = False
        while not stop:
            job = jobs.get()
            if job is None:
                return
            batch = [job]
            while True:  # what else is queued goes into the same transaction
                try:
                    more = jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            try:
                if self._error is None and not self._aborted:
                    with self.session.transaction() as c:
                        for statement, parameters, many in batch:
                            if many:
                                c.executemany(statement, parameters)
                            else:
                                c.execute(statement, parameters)
            except BaseException as e:  # raised in the fold's thread by its next call
                self._error = e
            with self._changed:
                self._done += len(batch)
                self._changed.notify_all()


class Rows:
    """The rows a SELECT returned, read like a cursor."""

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows
        self._next = 0

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rest = self._rows[self._next :]
        self._next = len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class _Cursor:
    """The fold's cursor over a WriteBehind."""

    def __init__(self, writer: WriteBehind) -> None:
        self.writer = writer
        self._last: Rows | None = None

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> Any:
        if statement.split(None, 1)[0].upper() in _READS:
            self._last = self.writer.read(statement, parameters)
        else:
            self._last = None  # nothing to fetch after a write
            self.writer.submit(statement, parameters, False)
        return self

    def executemany(self, statement: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        rows = parameters if isinstance(parameters, list) else list(parameters)
        self._last = None
        self.writer.submit(statement, rows, True)
        return self

    def mark(self) -> int:
        return self.writer.mark()

    def read_after(self, mark: int, statement: str, parameters: Sequence[Any]) -> Any:
        """Run a SELECT once the statements queued before `mark` are committed."""
        self._last = self.writer.read(statement, parameters, mark)
        return self

    def fetchone(self) -> Any:
        assert self._last is not None, "fetchone() without a SELECT before it"
        return self._last.fetchone()

    def fetchall(self) -> list[Any]:
        assert self._last is not None, "fetchall() before a SELECT"
        return self._last.fetchall()

    def __iter__(self) -> Iterator[Any]:
        assert self._last is not None, "iteration before a SELECT"
        return iter(self._last)
