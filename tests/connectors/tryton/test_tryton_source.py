"""Tryton source specifics: record shapes, late commits, hard deletes, keyset paging, errors."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.validation import validate

from connectors.tryton import TrytonConnector, TrytonSource
from connectors.tryton.sink import marker
from hub.spi import Batch, Change, ConnectorError
from tests.connectors.tryton.conftest import Erp, TrytonDB

TODAY = dt.date.today()


def source(db: TrytonDB, tmp_path: Path, **options: Any) -> TrytonSource:
    return TrytonConnector("erp", db.options(**options), tmp_path).source()


def changes(batches: list[Batch], obj: str | None = None) -> list[Change]:
    return [c for b in batches for c in b.changes if obj is None or c.object == obj]


def read(
    src: TrytonSource, checkpoint: Any = None, batch_size: int = 100
) -> tuple[list[Change], Any]:
    batches = list(src.read(checkpoint, batch_size))
    return changes(batches), (batches[-1].checkpoint if batches else checkpoint)


def test_every_object_is_read_with_its_documented_shape(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    src = source(tryton_db, tmp_path)
    erp = Erp(src.client)
    employee = erp.employee("Jane Consultant")
    customer = erp.customer("Globex")
    project, (design, build) = erp.project(customer)
    line = erp.line(employee, erp.timesheet_work(design), 1.5, "Wireframes " + marker("key-1"))
    erp.line(employee, erp.timesheet_work(build), 2)
    (invoice,) = erp.invoice(project)

    found, _ = read(src)
    schemas = {s.object: fastavro.parse_schema(s.schema) for s in src.discover()}
    for change in found:
        assert change.error is None
        validate(dict(change.record or {}), schemas[change.object], raise_errors=True)
        assert change.source_time is not None and change.source_time.tzinfo is dt.UTC
        assert change.position == change.source_time.replace(tzinfo=None).isoformat()
    records = {(c.object, c.key): c.record for c in found}

    emp_party = erp.c.read("company.employee", [employee], ["party"])[0]["party"]
    assert records["employees", str(employee)] == {
        "id": str(employee),
        "party": str(emp_party),
        "name": "Jane Consultant",
        "code": erp.c.read("party.party", [emp_party], ["code"])[0]["code"],
        "company": "1",
        "active": True,
        "start_date": None,
        "end_date": None,
    }
    assert records["parties", str(customer)] == {
        "id": str(customer),
        "name": "Globex",
        "code": str(customer),
        "active": True,
        "tax_identifier": None,
        "tax_identifier_type": None,
        "email": None,
        "phone": None,
        "country": None,
    }
    project_tsw, design_tsw = erp.timesheet_work(project), erp.timesheet_work(design)
    assert records["projects", str(project)] == {
        "id": str(project),
        "name": "Web",
        "number": str(project),
        "parent": None,
        "party": str(customer),
        "customer_code": str(customer),
        "company": "1",
        "status": "Open",
        "project_invoice_method": "timesheet",
        "list_price": "150",
        "effort_duration": None,
        "timesheet_work": str(project_tsw),
    }
    assert records["tasks", str(design)] == {
        "id": str(design),
        "name": "Design",
        "number": str(design),
        "parent": str(project),
        "project": str(project),
        "project_name": "Web",
        "customer_code": str(customer),
        "company": "1",
        "status": "Open",
        "list_price": "120",
        "effort_duration": 28800.0,
        "timesheet_work": str(design_tsw),
        "product_code": "CONSULT-H",  # its labor category
    }
    line_record = records["timesheet_lines", str(line)]
    assert line_record is not None and line_record["invoice_line"] is not None
    assert line_record == {
        "id": str(line),
        "employee": str(employee),
        "date": TODAY.isoformat(),
        "duration": 5400.0,
        "work": str(design_tsw),
        "description": "Wireframes",
        "synchub_marker": marker("key-1")[9:-1],
        "company": "1",
        "invoice_line": line_record["invoice_line"],
        "invoiced": True,
        "task": str(design),  # the project.work the line's timesheet work is for
    }
    assert records["invoices", str(invoice)] == {
        "id": str(invoice),
        "type": "out",
        "number": None,
        "party": str(customer),
        "company": "1",
        "state": "draft",
        "invoice_date": None,
        "currency": "USD",
        "untaxed_amount": "420.00",
        "tax_amount": "0.00",
        "total_amount": "420.00",
        "amount_to_pay": "0",
        "due_date": None,  # a draft has no lines to pay yet
        "project": str(project),  # its time was invoiced from this project
    }
    assert {o for o, _ in records} == {
        "parties",
        "employees",
        "projects",
        "tasks",
        "timesheet_lines",
        "invoices",
    }


def test_rates_are_the_price_list_lines_of_service_products(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    """A rate card line: company and currency from its price list, labor category from its
    product, in force from start to end date, and who last wrote it; a formula that is not a
    plain number gives no rate (the mapping then quarantines it)."""
    src = source(tryton_db, tmp_path, objects=["rates"])
    erp = Erp(src.client)
    (price_list,) = src.client.create(
        "product.price_list", [{"name": "Rates", "company": erp.company, "price": "list_price"}]
    )
    line = {"price_list": price_list, "product": erp.product}
    first, second, derived = src.client.create(
        "product.price_list.line",
        [
            {**line, "formula": "150", "start_date": dt.date(2026, 1, 1)},
            {**line, "formula": "160.50", "start_date": dt.date(2026, 7, 1)},
            {**line, "formula": "unit_price * 1.1"},
        ],
    )
    src.client.write("product.price_list.line", [first], {"end_date": dt.date(2026, 6, 30)})

    found, checkpoint = read(src)
    records = {c.key: c.record for c in found if c.object == "rates"}
    common = {"price_list": "Rates", "company": str(erp.company), "currency": "USD"}
    common |= {"product": str(erp.product), "product_code": "CONSULT-H"}
    common |= {"changed_by": "admin"}
    assert records[str(first)] == {
        **common,
        "id": str(first),
        "formula": "150",
        "rate": "150",
        "start_date": "2026-01-01",
        "end_date": "2026-06-30",
    }
    assert records[str(second)] == {
        **common,
        "id": str(second),
        "formula": "160.50",
        "rate": "160.50",
        "start_date": "2026-07-01",
        "end_date": None,
    }
    assert records[str(derived)]["rate"] is None
    assert records[str(derived)]["formula"] == "unit_price * 1.1"

    src.client.write("product.price_list.line", [second], {"formula": "165"})
    again, _ = read(src, checkpoint)
    assert [(c.key, (c.record or {})["rate"]) for c in again] == [(str(second), "165")]


def _set_stamp(db: TrytonDB, table: str, row_id: int, stamp: dt.datetime) -> None:
    """Give a committed row an older stamp: what a transaction that started at `stamp` and
    committed late leaves behind (Tryton stamps rows with the transaction's start time)."""
    with sqlite3.connect(db.dbfile, timeout=30) as con:
        con.execute(
            f"UPDATE {table} SET create_date = ?, write_date = ? WHERE id = ?",
            (str(stamp), str(stamp), row_id),
        )
    con.close()


def test_a_late_commit_inside_the_lag_is_read_exactly_once(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    src = source(tryton_db, tmp_path, lag=60, objects=["timesheet_lines"])
    erp = Erp(src.client)
    employee = erp.employee()
    _, tasks = erp.project(erp.customer())
    tsw = erp.timesheet_work(tasks[0])
    first = [erp.line(employee, tsw, h) for h in (1, 2, 3)]
    before, checkpoint = read(src)
    assert sorted(int(c.key) for c in before) == first
    high = max(c.source_time for c in before if c.source_time).replace(tzinfo=None)

    late = erp.line(employee, tsw, 4)  # started 5 s before the last poll's newest row
    _set_stamp(tryton_db, "timesheet_line", late, high - dt.timedelta(seconds=5))
    too_late = erp.line(employee, tsw, 5)  # started longer ago than the lag
    _set_stamp(tryton_db, "timesheet_line", too_late, high - dt.timedelta(seconds=65))

    strict = source(tryton_db, tmp_path, lag=0, objects=["timesheet_lines"])
    assert read(strict, checkpoint)[0] == [], "a strict cursor loses late commits"

    after, checkpoint2 = read(src, checkpoint)
    assert [c.key for c in after] == [str(late)]
    assert after[0].record is not None and after[0].record["duration"] == 4 * 3600.0
    assert read(src, checkpoint2)[0] == []  # nothing emitted twice
    assert read(src, json.loads(json.dumps(checkpoint2)))[0] == []
    keys = src.current_keys("timesheet_lines")
    assert keys == {str(i) for i in [*first, late, too_late]}  # reconciliation sees both


def test_an_update_is_a_new_version_and_read_again(tryton_db: TrytonDB, tmp_path: Path) -> None:
    src = source(tryton_db, tmp_path, objects=["parties"])
    erp = Erp(src.client)
    (acme,) = erp.c.search("party.party", [("name", "=", "Acme Consulting")])
    globex = erp.customer("Globex")
    _, checkpoint = read(src)
    erp.c.write("party.party", [globex], {"name": "Globex Corp"})
    again, checkpoint = read(src, checkpoint)
    assert [(c.key, (c.record or {}).get("name")) for c in again] == [(str(globex), "Globex Corp")]
    assert str(acme) not in {c.key for c in again}
    assert read(src, checkpoint)[0] == []


def test_hard_deletes_show_in_current_keys_and_archived_records_do_not_vanish(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    src = source(tryton_db, tmp_path, objects=["parties"])
    erp = Erp(src.client)
    golden = set(erp.c.search("party.party", []))
    kept, archived, deleted = (erp.customer(n) for n in ("Kept", "Archived", "Deleted"))
    _, checkpoint = read(src)
    erp.c.write("party.party", [archived], {"active": False})
    erp.c.delete("party.party", [deleted])

    assert src.current_keys("parties") == {str(i) for i in golden | {kept, archived}}
    later, _ = read(src, checkpoint)
    assert [(c.key, c.op, (c.record or {}).get("active")) for c in later] == [
        (str(archived), "upsert", False)
    ]


def test_rows_of_one_transaction_share_a_stamp_and_are_paged_by_id(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    src = source(tryton_db, tmp_path, page_size=2, objects=["timesheet_lines"])
    erp = Erp(src.client)
    employee = erp.employee()
    _, tasks = erp.project(erp.customer())
    tsw = erp.timesheet_work(tasks[0])
    lines = erp.c.create(
        "timesheet.line",
        [
            {
                "employee": employee,
                "work": tsw,
                "date": TODAY,
                "duration": dt.timedelta(minutes=15 * (i + 1)),
            }
            for i in range(7)
        ],
    )
    batches = list(src.read(None, 3))
    found = changes(batches)
    assert len({c.position for c in found}) == 1  # one transaction, one stamp
    assert [c.key for c in found] == [str(i) for i in lines]
    assert [len(b.changes) for b in batches] == [3, 3, 1]
    for k, batch in enumerate(batches):
        seen = {c.key for c in changes(batches[: k + 1])}
        rest, final = read(src, json.loads(json.dumps(batch.checkpoint)), 2)
        assert seen | {c.key for c in rest} == {str(i) for i in lines}
        assert not seen & {c.key for c in rest}, "a resumed read repeats nothing"
        assert read(src, final)[0] == []


def test_a_foreign_checkpoint_is_a_clear_error(tryton_db: TrytonDB, tmp_path: Path) -> None:
    src = source(tryton_db, tmp_path)
    with pytest.raises(ConnectorError, match="not a tryton checkpoint"):
        list(src.read({"version": 9, "objects": {}}, 10))


def test_an_unreachable_server_is_a_connector_error(tmp_path: Path) -> None:
    options = {"url": "http://127.0.0.1:9", "database": "erp", "password": "s3cret-pw"}
    src = TrytonConnector("erp", options, tmp_path).source()
    with pytest.raises(ConnectorError, match="cannot reach Tryton") as caught:
        list(src.read(None, 10))
    assert "s3cret-pw" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"database": "erp", "password": "x"}, "url: required option is missing"),
        ({"url": "127.0.0.1:8000", "database": "erp", "password": "x"}, "base URL"),
        ({"url": "http://h", "database": "erp", "password": "x", "lagg": 1}, "lagg: unknown"),
        (
            {"url": "http://h", "database": "erp", "password": "x", "lag": -1},
            "greater than or equal to 0",
        ),
        (
            {"url": "http://h", "database": "erp", "password": "x", "objects": ["nope"]},
            "no objects ['nope']",
        ),
    ],
)
def test_bad_options_are_named_with_the_fix(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConnectorError, match="connector 'erp' \\(tryton\\)") as caught:
        TrytonConnector("erp", options, tmp_path).source()
    assert message in str(caught.value)


def test_the_password_never_shows(tmp_path: Path) -> None:
    options = {"url": "http://h", "database": "erp", "password": 12345678, "user": ""}
    with pytest.raises(ConnectorError) as caught:
        TrytonConnector("erp", options, tmp_path)
    assert "12345678" not in str(caught.value)
    ok = TrytonConnector(
        "erp", {"url": "http://h", "database": "erp", "password": "pw-42"}, tmp_path
    )
    assert "pw-42" not in repr(ok.options) and "pw-42" not in repr(ok.client())


def test_a_change_of_a_related_record_reads_the_rows_that_show_it_again(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    """An employee's name is its party's, a task's project name its parent's: renaming the party
    or the project does not touch the employee's or the task's own stamp."""
    src = source(tryton_db, tmp_path, page_size=2, objects=["employees", "projects", "tasks"])
    erp = Erp(src.client)
    employee = erp.employee("Alice")
    customer = erp.customer("Globex")
    project, tasks = erp.project(customer, name="Web")
    first, checkpoint = read(src)
    assert {c.key for c in first if c.object == "tasks"} == {str(t) for t in tasks}
    assert read(src, checkpoint)[0] == []  # nothing new: nothing read twice

    (party,) = (r["party"] for r in erp.c.read("company.employee", [employee], ["party"]))
    erp.c.write("party.party", [party], {"name": "Alice Smith"})
    erp.c.write("project.work", [project], {"name": "Website"})
    later, checkpoint = read(src, json.loads(json.dumps(checkpoint)))
    last = {(c.object, c.key): c.record or {} for c in later}
    assert last["employees", str(employee)]["name"] == "Alice Smith"
    assert last["projects", str(project)]["name"] == "Website"
    for task in tasks:
        assert last["tasks", str(task)]["project_name"] == "Website"
    assert read(src, checkpoint)[0] == []


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"password": "not-the-pw-123"}, "wrong user or password: check `user` and `password`"),
        ({"user": "nobody"}, "wrong user or password: check `user` and `password`"),
        ({"database": "nodb"}, "no database 'nodb' on this server: check `database`"),
        ({"url_suffix": "/{db}"}, "is `url` the server's base URL"),
    ],
)
def test_a_refused_login_says_which_option_to_fix(
    tryton_db: TrytonDB, tmp_path: Path, change: dict[str, str], says: str
) -> None:
    options = tryton_db.options()
    suffix = change.pop("url_suffix", None)
    if suffix:
        options["url"] += suffix.format(db=tryton_db.database)
    options.update(change)
    src = TrytonConnector("erp", options, tmp_path).source()
    with pytest.raises(ConnectorError) as caught:
        list(src.read(None, 10))
    message = str(caught.value)
    assert says in message
    assert "<" not in message, "an HTML page in the message"
    assert "not-the-pw-123" not in message


def test_an_object_polled_on_a_schedule_is_read_when_its_time_comes(
    tryton_db: TrytonDB, tmp_path: Path
) -> None:
    """`every: {rates: 3600}`: rate cards are read at the first read, then once an hour; the
    other objects every read. A rate written meanwhile is not lost, only seen at the next."""
    src = source(tryton_db, tmp_path, objects=["rates", "parties"], every={"rates": 3600})
    now = [1000.0]
    src.clock = lambda: now[0]
    erp = Erp(src.client)
    values = {"name": "Rates", "company": erp.company, "price": "list_price"}
    (price_list,) = src.client.create("product.price_list", [values])
    line = {"price_list": price_list, "product": erp.product, "formula": "150"}
    (first,) = src.client.create("product.price_list.line", [line])
    found, checkpoint = read(src)
    assert [c.key for c in found if c.object == "rates"] == [str(first)]

    (second,) = src.client.create("product.price_list.line", [{**line, "formula": "160"}])
    party = erp.customer("Meanwhile Ltd")
    now[0] += 1800  # half an hour later: parties are read, rates are not due
    found, checkpoint = read(src, checkpoint)
    assert [c.key for c in found if c.object == "rates"] == []
    assert str(party) in [c.key for c in found if c.object == "parties"]

    now[0] += 1800  # the hour is up
    found, checkpoint = read(src, checkpoint)
    assert [c.key for c in found if c.object == "rates"] == [str(second)]


def test_a_schedule_for_an_object_not_read_is_refused(tryton_db: TrytonDB, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match=r"`every` names \['rates'\], which it does not read"):
        source(tryton_db, tmp_path, objects=["parties"], every={"rates": 60})
    with pytest.raises(ConnectorError, match="seconds must be more than 0"):
        source(tryton_db, tmp_path, every={"rates": 0})
