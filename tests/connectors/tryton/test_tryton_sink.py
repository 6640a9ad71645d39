"""Tryton sink specifics: refusals, idempotency across restarts, verification, faults.

Faults are injected with an httpx transport in front of the real server (the only stand-in
here): it can drop a call while answering success, fail to connect, or answer 503.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.tryton import TrytonConnector, TrytonSink
from connectors.tryton.client import TrytonClient
from connectors.tryton.localserver import ADMIN_PASSWORD, ADMIN_USER
from connectors.tryton.sink import create_marker, marker, split_marker, with_marker
from hub.spi import Delta, Outcome
from hub.types import DeltaOp
from tests.connectors.tryton.conftest import Erp, TrytonDB

TODAY = dt.date.today()
Fault = Callable[[str], "httpx.Response | Exception | None"]


class FaultyTransport(httpx.BaseTransport):
    """Forwards to the real server unless `fault(rpc_method)` answers or raises instead."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        method = json.loads(request.content)["method"]
        injected = self.fault(method)
        if isinstance(injected, Exception):
            raise injected
        if injected is not None:
            return injected
        return self.real.handle_request(request)


def rpc_result(result: Any) -> httpx.Response:
    return httpx.Response(200, json={"id": 1, "result": result})


class World:
    """An employee and a timesheet-invoiced project with two tasks, and a sink on them."""

    def __init__(self, db: TrytonDB, tmp_path: Path, fault: Fault | None = None) -> None:
        self.db = db
        self.sink = self.make_sink(fault)
        self.erp = Erp(db.client())
        self.employee = self.erp.employee()
        self.project, self.tasks = self.erp.project(self.erp.customer())
        self.works = [self.erp.timesheet_work(t) for t in self.tasks]

    def make_sink(self, fault: Fault | None = None) -> TrytonSink:
        transport = None if fault is None else FaultyTransport(fault)
        client = TrytonClient(
            self.db.url, self.db.database, ADMIN_USER, ADMIN_PASSWORD, transport=transport
        )
        return TrytonSink("erp", client)

    def fields(self, hours: float = 2.0, description: str | None = "Build") -> dict[str, Any]:
        return {
            "employee": self.employee,
            "work": self.works[0],
            "date": TODAY.isoformat(),
            "hours": hours,
            "description": description,
        }

    def line(self, line_id: str) -> dict[str, Any] | None:
        rows = self.erp.c.search_read(
            "timesheet.line",
            [("id", "=", int(line_id))],
            ["duration", "description", "invoice_line"],
        )
        return rows[0] if rows else None

    def count(self) -> int:
        return self.erp.count("timesheet.line")


def delta(op: DeltaOp, fields: dict[str, Any], key: str, target: str | None = None) -> Delta:
    return Delta("erp", "timesheet_lines", "TimeEntry/1", target, op, fields, key)


def entry(cid: str, fields: dict[str, Any]) -> Delta:
    """A create of a line of its own time entry."""
    return Delta("erp", "timesheet_lines", f"TimeEntry/{cid}", None, "create", fields, cid)


def apply1(sink: TrytonSink, d: Delta) -> Outcome:
    (outcome,) = sink.apply([d])
    return outcome


def test_changing_an_invoiced_line_is_rejected_with_trytons_reason(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    w = World(tryton_db, tmp_path)
    create = delta("create", w.fields(2.0, "Build"), "c1")
    created = apply1(w.sink, create)
    assert created.status == "applied" and created.target_key
    line = created.target_key
    w.erp.invoice(w.project)
    before = w.line(line)
    assert before is not None and before["invoice_line"] is not None

    outcomes = w.sink.apply(
        [
            delta("update", {"hours": 3.0, "description": "Build v2"}, "u1", line),
            delta("delete", {}, "d1", line),
            delta("update", {"description": "Build, reviewed"}, "u2", line),
        ]
    )
    assert [o.status for o in outcomes] == ["rejected", "rejected", "applied"]
    for refused in outcomes[:2]:
        assert refused.reason is not None and "Tryton refused" in refused.reason
        assert "because it has been invoiced" in refused.reason
        assert "credit note" in refused.reason
        assert refused.target_key == line
    after = w.line(line)
    assert after is not None and after["duration"] == dt.timedelta(hours=2)
    assert after["description"] == "Build, reviewed " + create_marker(create)  # marker kept


def test_a_batch_reads_its_tasks_and_works_once_and_a_missing_task_fails_alone(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    w = World(tryton_db, tmp_path)
    reads: list[tuple[str, list[int]]] = []
    read = w.sink.client.read

    def counted(model: str, ids: Any, fields: Any, **kw: Any) -> Any:
        if model in ("project.work", "timesheet.work"):
            reads.append((model, list(ids)))
        return read(model, ids, fields, **kw)

    w.sink.client.read = counted  # type: ignore[method-assign]
    on_task = [{**w.fields(1.0, f"on {t}"), "task": t} for t in (*w.tasks, w.tasks[0])]
    for f in on_task:
        del f["work"]
    on_work = [w.fields(0.5, f"on work {i}") for i in range(3)]  # no company: the work's
    outcomes = w.sink.apply([entry(f"e{i}", f) for i, f in enumerate(on_task + on_work)])
    assert [o.status for o in outcomes] == ["applied"] * 6
    # one read of the batch's tasks and one of its works, not one a line
    assert reads == [("project.work", sorted(set(w.tasks))), ("timesheet.work", [w.works[0]])]
    ids = [int(o.target_key or 0) for o in outcomes]
    rows = {r["id"]: r for r in w.erp.c.read("timesheet.line", ids, ["work", "company"])}
    assert [rows[i]["work"] for i in ids] == [w.works[0], w.works[1], *[w.works[0]] * 4]
    assert len({rows[i]["company"] for i in ids}) == 1

    reads.clear()
    missing = {**on_task[0], "task": 987654, "description": "on a task Tryton lacks"}
    outcomes = w.sink.apply(
        [entry("e9", {**on_task[1], "description": "b2"}), entry("ex", missing)]
    )
    assert [o.status for o in outcomes] == ["applied", "rejected"]
    assert len(reads) == 3  # the batch's read failed: each line read its own task
    assert w.count() == 7


def test_a_create_applied_twice_even_after_a_restart_makes_one_line(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    w = World(tryton_db, tmp_path)
    create = delta("create", w.fields(1.25, None), "same-key")
    first = apply1(w.sink, create)
    again = apply1(w.sink, create)
    restarted = apply1(w.make_sink(), create)  # a new process: nothing in memory
    assert [o.status for o in (first, again, restarted)] == ["applied"] * 3
    assert first.target_key == again.target_key == restarted.target_key
    assert w.count() == 1
    assert w.erp.count("timesheet.line", [("description", "=", create_marker(create))]) == 1
    assert w.sink.client.calls["model.timesheet.line.create"] == 1
    assert w.sink.client.calls["model.timesheet.line.write"] == 0


def test_a_line_marked_with_the_idempotency_key_by_an_earlier_version_is_found(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    w = World(tryton_db, tmp_path)
    old = w.erp.line(w.employee, w.works[0], 1.25, marker("old-key"))
    create = Delta(
        "erp", "timesheet_lines", "TimeEntry/7", None, "create", w.fields(1.25, None), "old-key"
    )
    outcome = apply1(w.sink, create)
    assert (outcome.status, outcome.target_key) == ("applied", str(old))
    assert w.count() == 1


class LostAnswers(httpx.BaseTransport):
    """Forwards every call to the real server; for the methods in `lose`, Tryton does the work
    and the answer is lost on the way back (a read timeout)."""

    def __init__(self, lose: set[str]) -> None:
        self.lose = lose
        self.real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.real.handle_request(request)
        if json.loads(request.content)["method"] in self.lose:
            response.read()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


def test_a_create_planned_again_after_a_lost_answer_does_not_make_a_second_line(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    """The create reached Tryton but its answer was lost, so the hub does not know the line;
    the time entry is edited before the retry, so the create is planned again with the new
    fields and a new idempotency key. It must bring the first line to the new fields."""
    w = World(tryton_db, tmp_path)
    client = TrytonClient(
        w.db.url,
        w.db.database,
        ADMIN_USER,
        ADMIN_PASSWORD,
        transport=LostAnswers({"model.timesheet.line.create"}),
    )
    lost = apply1(TrytonSink("erp", client), delta("create", w.fields(2.0, "Build"), "k1"))
    assert lost.status == "retryable" and "timed out" in (lost.reason or "")
    assert w.count() == 1  # Tryton did create it

    replanned = delta("create", w.fields(3.0, "Build and test"), "k2")
    outcome = apply1(w.make_sink(), replanned)
    assert outcome.status == "applied" and outcome.target_key is not None
    assert w.count() == 1, "a second timesheet line for the same time entry"
    line = w.line(outcome.target_key)
    assert line is not None and line["duration"] == dt.timedelta(hours=3)
    assert split_marker(line["description"])[0] == "Build and test"


def test_a_write_tryton_acknowledged_but_did_not_keep_is_retryable(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    lost = {"model.timesheet.line.write"}

    def drop(method: str) -> httpx.Response | None:
        return rpc_result(None) if method in lost else None

    w = World(tryton_db, tmp_path, fault=drop)
    created = apply1(w.sink, delta("create", w.fields(2.0), "c1"))
    assert created.status == "applied" and created.target_key
    update = delta("update", {"hours": 4.0}, "u1", created.target_key)
    failed = apply1(w.sink, update)
    assert failed.status == "retryable"
    assert failed.reason is not None and "reads back with different duration" in failed.reason
    lost.clear()
    assert apply1(w.sink, update).status == "applied"
    line = w.line(created.target_key)
    assert line is not None and line["duration"] == dt.timedelta(hours=4)


def test_a_create_answered_with_an_id_that_does_not_exist_is_retryable(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    fake = {"on": True}

    def phantom(method: str) -> httpx.Response | None:
        on = fake["on"] and method == "model.timesheet.line.create"
        return rpc_result([987654]) if on else None

    w = World(tryton_db, tmp_path, fault=phantom)
    create = delta("create", w.fields(), "c1")
    failed = apply1(w.sink, create)
    assert failed.status == "retryable" and "cannot be read back" in (failed.reason or "")
    fake["on"] = False
    assert apply1(w.sink, create).status == "applied"
    assert w.count() == 1


def test_transport_faults_are_retryable_and_write_nothing(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    faults: list[httpx.Response | Exception] = [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.Response(503, headers={"Retry-After": "7"}, text="maintenance"),
        httpx.Response(
            200,
            json={"id": 1, "error": ["'NoneType' object is not subscriptable", "Traceback ..."]},
        ),
    ]

    def fail(method: str) -> httpx.Response | Exception | None:
        if method == "model.timesheet.line.create" and faults:
            return faults.pop(0)
        return None

    w = World(tryton_db, tmp_path, fault=fail)
    create = delta("create", w.fields(), "c1")
    outcomes = [apply1(w.sink, create) for _ in range(4)]
    assert [o.status for o in outcomes] == ["retryable"] * 4
    assert "cannot reach Tryton" in (outcomes[0].reason or "")
    assert "timed out" in (outcomes[1].reason or "")
    assert outcomes[2].retry_after == 7.0 and "HTTP 503" in (outcomes[2].reason or "")
    assert "Tryton raised an error" in (outcomes[3].reason or "")
    assert w.count() == 0
    assert apply1(w.sink, create).status == "applied"
    assert w.count() == 1


def test_a_retry_after_given_as_an_http_date_is_honoured(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    """A proxy in front of Tryton (nginx, a load balancer) may say when as an HTTP date."""
    when = email.utils.format_datetime(
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120), usegmt=True
    )
    busy = [httpx.Response(429, headers={"Retry-After": when}, text="slow down")]

    def fail(method: str) -> httpx.Response | None:
        return busy.pop() if method == "model.timesheet.line.create" and busy else None

    w = World(tryton_db, tmp_path, fault=fail)
    outcome = apply1(w.sink, delta("create", w.fields(), "c1"))
    assert outcome.status == "retryable" and "HTTP 429" in (outcome.reason or "")
    assert outcome.retry_after is not None and 100 <= outcome.retry_after <= 120
    assert w.count() == 0


def test_booking_on_a_closed_work_is_rejected_with_what_to_do(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    w = World(tryton_db, tmp_path)
    yesterday = TODAY - dt.timedelta(days=1)
    w.erp.c.write("timesheet.work", [w.works[0]], {"timesheet_end_date": yesterday})
    outcome = apply1(w.sink, delta("create", w.fields(), "c1"))
    assert outcome.status == "rejected"
    assert 'for field "Work"' in (outcome.reason or "")
    assert "book the time on an open work" in (outcome.reason or "")
    assert w.count() == 0


def test_a_refused_login_is_retryable_and_keeps_the_password_secret(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    options = tryton_db.options(password="wrong-password-xyz")
    sink = TrytonConnector("erp", options, tmp_path).sink()
    (outcome,) = sink.apply([delta("create", {"hours": 1}, "c1")])
    assert outcome.status == "rejected"  # the fields are checked before any call
    fields = {"employee": 1, "work": 1, "date": TODAY.isoformat(), "hours": 1}
    (outcome,) = sink.apply([delta("create", fields, "c2")])
    assert outcome.status == "retryable"
    assert "refused the login of user 'admin'" in (outcome.reason or "")
    assert "wrong-password-xyz" not in (outcome.reason or "")


@pytest.mark.parametrize(
    ("d", "reason"),
    [
        (delta("create", {"employee": 1, "work": 1, "hours": 1}, "k"), "needs ['date']"),
        (
            delta(
                "create",
                {"employee": 1, "work": 1, "date": "2024-05-01", "hours": 1, "duration": 3600},
                "k",
            ),
            "either `hours` or `duration`",
        ),
        (delta("update", {"hours": "two"}, "k", "5"), "hours must be a number"),
        (delta("update", {"hours": -1}, "k", "5"), "finite number >= 0"),
        (delta("update", {"date": "01/05/2024"}, "k", "5"), "ISO date"),
        (delta("update", {"project": "X"}, "k", "5"), "unknown timesheet_lines fields"),
        (delta("update", {"employee": "abc"}, "k", "5"), "employee must be a Tryton id"),
        (delta("update", {"hours": 1}, "k", "TE-5"), "target_key must be a Tryton id"),
        (delta("delete", {}, "k"), "target_key is missing"),
        (
            delta("update", {"description": "x [synchub:0123456789abcdef]"}, "k", "5"),
            "must not end with a [synchub:...] marker",
        ),
        (Delta("erp", "invoices", "Invoice/1", None, "create", {}, "k"), "cannot be written"),
    ],
)
def test_deltas_that_cannot_be_written_are_rejected_before_any_call(d: Delta, reason: str) -> None:
    client = TrytonClient("http://127.0.0.1:9", "erp", ADMIN_USER, ADMIN_PASSWORD)
    (outcome,) = TrytonSink("erp", client).apply([d])
    assert outcome.status == "rejected" and reason in (outcome.reason or "")
    assert outcome.idempotency_key == "k"
    assert sum(client.calls.values()) == 0


def test_the_marker_round_trips_through_the_description() -> None:
    mark = marker("k")
    assert len(mark) == len("[synchub:]") + 16
    assert split_marker(with_marker("Design", mark)) == ("Design", mark[9:-1])
    assert split_marker(with_marker(None, mark)) == (None, mark[9:-1])
    assert split_marker("Design [synchub:not-hex]") == ("Design [synchub:not-hex]", None)
    assert split_marker(None) == (None, None)


def test_an_expired_session_is_renewed_once(tryton_db: TrytonDB, tmp_path: Path) -> None:
    expired = ["model.timesheet.line.search_read"]

    def once(method: str) -> httpx.Response | None:
        if method in expired:
            expired.remove(method)
            return httpx.Response(401, text="session expired")
        return None

    w = World(tryton_db, tmp_path, fault=once)
    assert apply1(w.sink, delta("create", w.fields(), "c1")).status == "applied"
    assert w.sink.client.calls["common.db.login"] == 2
    assert w.count() == 1
