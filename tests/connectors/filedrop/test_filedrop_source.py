"""Filedrop specifics: options, discovery, byte-exact resumption, coercion, broken input."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import fastavro
import pytest

from connectors.filedrop import FiledropConnector, files
from connectors.filedrop.source import FiledropSource
from hub.spi import JSON, Change, ConnectorError

TIME_FIELDS = {"id": "string", "minutes": "long", "rate": "double?", "approved": "boolean"}


def make(tmp_path: Path, **obj: Any) -> FiledropSource:
    """A source over tmp_path/inbox with one object `time_entries` (options in `obj`)."""
    (tmp_path / "inbox").mkdir(exist_ok=True)
    spec = {"pattern": "time_*.csv", "key": "id", **obj}
    source = FiledropConnector(
        "erp", {"directory": "inbox", "objects": {"time_entries": spec}}, tmp_path
    ).source()
    assert isinstance(source, FiledropSource)
    return source


def drop(tmp_path: Path, name: str, content: str | bytes, mode: str = "w") -> Path:
    path = tmp_path / "inbox" / name
    data = content.encode() if isinstance(content, str) else content
    with path.open(mode + "b") as f:
        f.write(data)
    return path


def read(
    source: FiledropSource, checkpoint: JSON = None, batch_size: int = 100
) -> tuple[list[Change], JSON]:
    batches = list(source.read(checkpoint, batch_size))
    changes = [c for b in batches for c in b.changes]
    return changes, (batches[-1].checkpoint if batches else checkpoint)


# -- options ---------------------------------------------------------------------------------


def test_relative_paths_resolve_against_base_dir(tmp_path: Path) -> None:
    c = FiledropConnector(
        "erp",
        {
            "directory": "in",
            "outbox": "../out",
            "objects": {"t": {"pattern": "*.csv", "key": "id"}},
        },
        tmp_path / "conf",
    )
    assert c.options.directory == (tmp_path / "conf" / "in").resolve()
    assert c.options.outbox == (tmp_path / "out").resolve()
    assert c.options.objects["t"].format == "csv"


def test_only_the_configured_sides_exist(tmp_path: Path) -> None:
    sink_only = FiledropConnector("erp", {"outbox": "out"}, tmp_path)
    assert sink_only.source() is None and sink_only.sink() is not None
    source_only = FiledropConnector(
        "erp", {"directory": "in", "objects": {"t": {"pattern": "*.jsonl", "key": "id"}}}, tmp_path
    )
    assert source_only.sink() is None and source_only.source() is not None
    assert source_only.options.objects["t"].format == "jsonl"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ["set `directory`", "`outbox`"]),
        (
            {"outbox": "o", "outbox_fromat": "csv"},
            ["outbox_fromat", "unknown option", "outbox_format"],
        ),
        ({"outbox": "o", "outbox_format": "xml"}, ["outbox_format", "'csv' or 'jsonl'", "xml"]),
        ({"directory": "in"}, ["`objects` is empty"]),
        (
            {"directory": "in", "objects": {"t": {"key": "id"}}},
            ["objects.t.pattern", "required option is missing"],
        ),
        (
            {"directory": "in", "objects": {"t": {"pattern": "t_*.txt", "key": "id"}}},
            ["objects.t", "cannot tell the file format", "format: csv"],
        ),
        (
            {
                "directory": "in",
                "objects": {"t": {"pattern": "*.csv", "key": "id", "fields": {"id": "integer"}}},
            },
            ["objects.t.fields.id", "unknown field type 'integer'", "double?"],
        ),
        (
            {
                "directory": "in",
                "objects": {"t": {"pattern": "*.csv", "key": "id", "fields": {"code": "string"}}},
            },
            ["key 'id' is not among the declared fields"],
        ),
        (
            {
                "directory": "in",
                "objects": {
                    "t": {
                        "pattern": "*.csv",
                        "key": "id",
                        "fields": {"id": "string", "my field": "long"},
                    }
                },
            },
            ["not valid Avro names", "my field"],
        ),
        (
            {"directory": "in", "objects": {"t": {"pattern": "/etc/*.csv", "key": "id"}}},
            ["must be a glob inside `directory`"],
        ),
        (
            {"directory": "in", "objects": {"t": {"pattern": "*.csv", "key": "id", "snapshto": 1}}},
            ["objects.t.snapshto", "unknown option", "snapshot"],
        ),
    ],
)
def test_bad_options_say_which_connector_option_and_fix(
    tmp_path: Path, options: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(ConnectorError) as info:
        FiledropConnector("legacy_erp", options, tmp_path)
    message = str(info.value)
    assert "legacy_erp" in message
    for part in expected:
        assert part in message


def test_a_missing_directory_is_a_clear_connector_error(tmp_path: Path) -> None:
    source = make(tmp_path)
    (tmp_path / "inbox").rmdir()
    for call in (source.discover, lambda: list(source.read(None, 10))):
        with pytest.raises(ConnectorError, match=r"directory .* does not exist"):
            call()


# -- discovery -------------------------------------------------------------------------------


def test_declared_fields_become_an_avro_record_with_nullable_unions(tmp_path: Path) -> None:
    (schema,) = make(tmp_path, fields=TIME_FIELDS).discover()
    assert schema.key_field == "id"
    assert schema.schema == {
        "type": "record",
        "name": "time_entries",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "minutes", "type": "long"},
            {"name": "rate", "type": ["null", "double"], "default": None},
            {"name": "approved", "type": "boolean"},
        ],
    }
    fastavro.parse_schema(schema.schema)


def test_without_a_file_the_schema_is_just_the_key(tmp_path: Path) -> None:
    (schema,) = make(tmp_path).discover()
    assert schema.schema["fields"] == [{"name": "id", "type": "string"}]


def test_csv_columns_of_the_newest_file_become_nullable_strings(tmp_path: Path) -> None:
    source = make(tmp_path)
    drop(tmp_path, "time_1.csv", "id,old\n1,x\n")
    drop(tmp_path, "time_2.csv", "\ufeffid,Project Name,2nd,Project-Name\n")
    (schema,) = source.discover()
    names = [f["name"] for f in schema.schema["fields"]]
    assert names == ["id", "Project_Name", "_2nd", "Project_Name_2"]
    assert all(
        f["type"] == ["null", "string"] and f["default"] is None for f in schema.schema["fields"]
    )
    fastavro.parse_schema(schema.schema)
    drop(tmp_path, "time_2.csv", "1,Alpha,x,y\n", "a")
    (change,) = read(source)[0][1:]
    assert change.record == {"id": "1", "Project_Name": "Alpha", "_2nd": "x", "Project_Name_2": "y"}


def test_jsonl_types_are_inferred_from_the_first_record_of_the_newest_file(
    tmp_path: Path,
) -> None:
    source = make(tmp_path, pattern="t_*.jsonl", delete_field="gone")
    drop(tmp_path, "t_1.jsonl", '{"id": "x"}\n')
    drop(
        tmp_path,
        "t_2.jsonl",
        'not json\n{"id": 3, "gone": true}\n'
        '{"id": 1, "n": 2, "r": 1.5, "ok": false, "s": "a", "tags": [1], "z": null}\n',
    )
    (schema,) = source.discover()
    types = {f["name"]: f["type"] for f in schema.schema["fields"]}
    assert types == {
        "id": ["null", "long"],
        "n": ["null", "long"],
        "r": ["null", "double"],
        "ok": ["null", "boolean"],
        "s": ["null", "string"],
        "tags": ["null", "string"],
        "z": ["null", "string"],
    }
    records = [c.record for c in read(source)[0] if c.record is not None]
    assert records[-1] == {
        "id": 1,
        "n": 2,
        "r": 1.5,
        "ok": False,
        "s": "a",
        "tags": "[1]",
        "z": None,
    }


def test_jsonl_types_come_from_all_sampled_records_and_unknown_fields_are_not_dropped(
    tmp_path: Path,
) -> None:
    """Exporters omit null fields and write nulls: a first record without `note` or with a
    null `minutes` must not drop every `note` nor type `minutes` as a string (which the store
    then refuses as an incompatible change, quarantining every record)."""
    source = make(tmp_path, pattern="t_*.jsonl")
    drop(tmp_path, "t_1.jsonl", '{"id": "1", "minutes": null}\n{"id": "2", "minutes": 5}\n')
    more = "".join(f'{{"id": "{i}", "minutes": 1, "rate": {i}}}\n' for i in range(3, 1003))
    drop(
        tmp_path,
        "t_2.jsonl",
        '{"id": "a", "minutes": null}\n{"id": "b", "minutes": 30, "note": "hi", "rate": 1.5}\n'
        + more
        + '{"id": "late", "minutes": 1, "extra": "x"}\n',
    )
    (schema,) = source.discover()
    types = {f["name"]: f["type"] for f in schema.schema["fields"]}
    assert types == {
        "id": ["null", "string"],
        "minutes": ["null", "long"],
        "note": ["null", "string"],
        "rate": ["null", "double"],
    }
    changes = read(source)[0]
    assert {c.key: c.record for c in changes}["b"] == {
        "id": "b",
        "minutes": 30,
        "note": "hi",
        "rate": 1.5,
    }
    (late,) = [c for c in changes if c.error is not None]
    assert late.key == "late" and late.raw == '{"id": "late", "minutes": 1, "extra": "x"}'
    assert "field 'extra' is not in the schema" in late.error
    assert "objects.time_entries.fields" in late.error


# -- reading ---------------------------------------------------------------------------------


def test_coercion_to_declared_types_and_raw_passthrough(tmp_path: Path) -> None:
    source = make(tmp_path, fields=TIME_FIELDS)
    drop(
        tmp_path,
        "time_1.csv",
        "id,minutes,rate,approved,extra\n"
        "1,42,1.5,true,dropped\n"
        "2,-7,,No,\n"
        "3, 8 ,2,1,\n"
        "4,forty,x,maybe,\n"
        "5,1_000,,YES,\n",
    )
    records = [c.record for c in read(source)[0]]
    assert records == [
        {"id": "1", "minutes": 42, "rate": 1.5, "approved": True},
        {"id": "2", "minutes": -7, "rate": None, "approved": False},
        {"id": "3", "minutes": 8, "rate": 2.0, "approved": True},
        {"id": "4", "minutes": "forty", "rate": "x", "approved": "maybe"},
        {"id": "5", "minutes": "1_000", "rate": None, "approved": True},
    ]


def test_changes_carry_position_and_file_time(tmp_path: Path) -> None:
    source = make(tmp_path)
    path = drop(tmp_path, "time_1.csv", "id,v\na,1\nb,2\n")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    changes, _ = read(source)
    assert [(c.key, c.op, c.position) for c in changes] == [
        ("a", "upsert", "time_1.csv:2"),
        ("b", "upsert", "time_1.csv:3"),
    ]
    assert changes[0].source_time == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)


def test_files_are_read_in_name_order(tmp_path: Path) -> None:
    source = make(tmp_path)
    drop(tmp_path, "time_b.csv", "id\n2\n")
    drop(tmp_path, "time_a.csv", "id\n1\n")
    drop(tmp_path, ".time_c.csv", "id\n3\n")  # a hidden temp file of the exporter
    drop(tmp_path, "other.csv", "id\n4\n")
    assert [c.key for c in read(source)[0]] == ["1", "2"]


def test_a_delete_marker_makes_a_delete(tmp_path: Path) -> None:
    source = make(tmp_path, delete_field="deleted")
    drop(tmp_path, "time_1.csv", "id,deleted\n1,\n2,true\n3,0\n4,yes\n")
    changes, _ = read(source)
    assert [(c.key, c.op, c.record) for c in changes] == [
        ("1", "upsert", {"id": "1", "deleted": None}),
        ("2", "delete", None),
        ("3", "upsert", {"id": "3", "deleted": "0"}),
        ("4", "delete", None),
    ]


def test_a_partial_last_line_waits_until_it_is_complete(tmp_path: Path) -> None:
    source = make(tmp_path, pattern="time_*.jsonl")
    drop(tmp_path, "time_1.jsonl", '{"id": 1}\n{"id": 2, "v": "hal')
    changes, checkpoint = read(source)
    assert [c.key for c in changes] == ["1"]
    assert read(source, checkpoint)[0] == []
    drop(tmp_path, "time_1.jsonl", 'f"}\n', "a")
    changes, checkpoint = read(source, checkpoint)
    assert [(c.key, c.record, c.position) for c in changes] == [
        ("2", {"id": 2, "v": "half"}, "time_1.jsonl:2")
    ]


def test_quoted_line_breaks_and_pending_quoted_rows(tmp_path: Path) -> None:
    source = make(tmp_path)
    drop(tmp_path, "time_1.csv", 'id,note\r\n1,"two\nlines, ""quoted"""\r\n2,"still\nopen\n')
    changes, checkpoint = read(source)
    assert [(c.key, c.record, c.position) for c in changes] == [
        ("1", {"id": "1", "note": 'two\nlines, "quoted"'}, "time_1.csv:2")
    ]
    drop(tmp_path, "time_1.csv", 'closed"\n3,x\n', "a")
    changes, _ = read(source, checkpoint)
    assert [(c.key, c.record, c.position) for c in changes] == [
        ("2", {"id": "2", "note": "still\nopen\nclosed"}, "time_1.csv:4"),
        ("3", {"id": "3", "note": "x"}, "time_1.csv:7"),
    ]


def test_an_unclosed_quote_is_reported_once_it_is_clearly_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MAX_PENDING_ROW", 20)
    source = make(tmp_path)
    drop(tmp_path, "time_1.csv", 'id,note\n1,"oops\n2,fine\n3,fine\n4,fine\n5,fine\n')
    changes, _ = read(source)
    assert changes[0].error is not None and "not closed" in changes[0].error
    assert changes[0].position == "time_1.csv:2" and changes[0].raw == '1,"oops'
    assert [c.key for c in changes[1:]] == ["2", "3", "4", "5"]


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    source = make(tmp_path, pattern="time_*.jsonl")
    drop(tmp_path, "time_1.jsonl", b'\xef\xbb\xbf{"id": 1}\n')
    assert [c.key for c in read(source)[0]] == ["1"]
    csv_source = make(tmp_path)
    drop(tmp_path, "time_1.csv", b"\xef\xbb\xbfid,v\n1,a\n")
    assert [c.record for c in read(csv_source)[0]] == [{"id": "1", "v": "a"}]


def test_broken_input_is_yielded_with_an_error_and_reading_goes_on(tmp_path: Path) -> None:
    source = make(tmp_path, pattern="time_*.jsonl")
    drop(
        tmp_path,
        "time_1.jsonl",
        b'{"id": 1}\n{"id": 2, "v": "caf\xe9"}\n{"id": 3,\n[1, 2]\n{"v": 1}\n\n{"id": 4}\n',
    )
    changes, _ = read(source)
    good = [c.key for c in changes if c.error is None]
    bad = {c.position: c for c in changes if c.error is not None}
    assert good == ["1", "4"]
    assert set(bad) == {"time_1.jsonl:2", "time_1.jsonl:3", "time_1.jsonl:4", "time_1.jsonl:5"}
    assert all(c.record is None and c.op == "upsert" for c in bad.values())
    utf8 = bad["time_1.jsonl:2"]
    assert "not valid UTF-8" in (utf8.error or "") and utf8.raw == '{"id": 2, "v": "caf\\xe9"}'
    assert "invalid JSON" in (bad["time_1.jsonl:3"].error or "")
    assert "expected a JSON object" in (bad["time_1.jsonl:4"].error or "")
    assert "no value for the key field 'id'" in (bad["time_1.jsonl:5"].error or "")


def test_broken_csv_rows_keep_a_best_effort_key(tmp_path: Path) -> None:
    source = make(tmp_path)
    drop(tmp_path, "time_1.csv", b"id,v\n1,a\n2,b,extra\n3,caf\xe9\n,x\n4,d\n")
    changes, _ = read(source)
    assert [(c.key, c.error is None) for c in changes] == [
        ("1", True),
        ("2", False),
        ("3", False),
        ("", False),
        ("4", True),
    ]
    assert "3 fields but the header has 2" in (changes[1].error or "")
    assert changes[1].raw == "2,b,extra"
    assert changes[2].raw == "3,caf\\xe9"


def test_a_header_without_the_key_column_is_reported_per_row(tmp_path: Path) -> None:
    source = make(tmp_path)
    drop(tmp_path, "time_1.csv", "code,v\n1,a\n")
    (change,) = read(source)[0]
    assert change.error is not None and "no column 'id'" in change.error


def test_a_header_only_file_moves_the_checkpoint_once(tmp_path: Path) -> None:
    source = make(tmp_path)
    drop(tmp_path, "time_1.csv", "id,v\n")
    batches = list(source.read(None, 10))
    assert [b.changes for b in batches] == [()]
    assert list(source.read(batches[0].checkpoint, 10)) == []
    drop(tmp_path, "time_1.csv", "1,a\n", "a")
    assert [c.record for c in read(source, batches[0].checkpoint)[0]] == [{"id": "1", "v": "a"}]


def test_resuming_mid_file_uses_the_header_and_line_numbers(tmp_path: Path) -> None:
    source = make(tmp_path)
    drop(tmp_path, "time_1.csv", "id,v\n1,a\n2,b\n3,c\n")
    first = next(iter(source.read(None, 1)))
    changes, _ = read(source, json.loads(json.dumps(first.checkpoint)))
    assert [(c.record, c.position) for c in changes] == [
        ({"id": "2", "v": "b"}, "time_1.csv:3"),
        ({"id": "3", "v": "c"}, "time_1.csv:4"),
    ]


def test_a_replaced_or_truncated_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    source = make(tmp_path)
    drop(tmp_path, "time_1.csv", "id,v\n1,a\n2,b\n")
    _, checkpoint = read(source)
    drop(tmp_path, "time_1.csv", "id,v\n1,A\n2,B\n3,C\n")  # rewritten: the head differs
    changes, checkpoint = read(source, checkpoint)
    assert [c.record for c in changes] == [
        {"id": "1", "v": "A"},
        {"id": "2", "v": "B"},
        {"id": "3", "v": "C"},
    ]
    drop(tmp_path, "time_1.csv", "id,v\n9,z\n")
    changes, _ = read(source, checkpoint)
    assert [c.key for c in changes] == ["9"]


def test_a_rewrite_that_keeps_the_head_and_grows_is_read_again(tmp_path: Path) -> None:
    """A nightly snapshot rewritten in place: the first 4 KiB are the same unchanged records,
    one record before the old offset changed (same length), and the file grew. Resuming at the
    old offset would lose that change (and could start mid-row)."""
    source = make(tmp_path)
    rows = "".join(f"{i},{'x' * 50}\n" for i in range(100))  # well past HEAD_BYTES
    drop(tmp_path, "time_1.csv", "id,v\n" + rows + "100,draft\n101,y\n")
    batches = list(source.read(None, 60))
    mid, checkpoint = batches[0].checkpoint, batches[-1].checkpoint
    assert [c.key for c in read(source, mid)[0]] == [str(i) for i in range(60, 102)]
    drop(tmp_path, "time_1.csv", "id,v\n" + rows + "100,final\n101,y\n102,new\n")
    changes, checkpoint = read(source, checkpoint)
    assert {c.key: c.record for c in changes if c.error is None}["100"] == {
        "id": "100",
        "v": "final",
    }
    assert len(changes) == 103 and all(c.error is None for c in changes)
    drop(tmp_path, "time_1.csv", "103,z\n", "a")  # a plain append still resumes exactly
    assert [c.key for c in read(source, checkpoint)[0]] == ["103"]
    del checkpoint["objects"]["time_entries"]["time_1.csv"]["prefix"]  # an older synchub's
    assert [c.key for c in read(source, checkpoint)[0]] == ["103"]


def test_appending_to_a_file_longer_than_the_head_resumes_exactly(tmp_path: Path) -> None:
    source = make(tmp_path)
    rows = "".join(f"{i},{'x' * 50}\n" for i in range(200))  # well past HEAD_BYTES
    drop(tmp_path, "time_1.csv", "id,v\n" + rows)
    changes, checkpoint = read(source)
    assert len(changes) == 200
    drop(tmp_path, "time_1.csv", "200,y\n", "a")
    assert [c.key for c in read(source, checkpoint)[0]] == ["200"]


def test_files_that_disappear_drop_out_of_the_checkpoint(tmp_path: Path) -> None:
    source = make(tmp_path)
    drop(tmp_path, "time_1.csv", "id\n1\n")
    drop(tmp_path, "time_2.csv", "id\n2\n")
    _, checkpoint = read(source)
    assert set(checkpoint["objects"]["time_entries"]) == {"time_1.csv", "time_2.csv"}
    (tmp_path / "inbox" / "time_1.csv").unlink()
    batches = list(source.read(checkpoint, 10))
    assert [b.changes for b in batches] == [()]
    assert set(batches[0].checkpoint["objects"]["time_entries"]) == {"time_2.csv"}


def test_a_foreign_checkpoint_is_refused_with_a_fix(tmp_path: Path) -> None:
    source = make(tmp_path)
    with pytest.raises(ConnectorError, match="reset this connector's checkpoint"):
        list(source.read({"lag": 2.0, "high": 5}, 10))
    with pytest.raises(ValueError, match="batch_size"):
        list(source.read(None, 0))


def test_a_hundred_thousand_lines_are_all_read(tmp_path: Path) -> None:
    """Every line of a large file, typed; speed belongs to bench/, not to a timed test."""
    source = make(tmp_path, fields=TIME_FIELDS)
    lines = ["id,minutes,rate,approved"]
    lines += [f"{i},{i % 480},{i / 7:.2f},{'true' if i % 2 else 'false'}" for i in range(100_000)]
    drop(tmp_path, "time_1.csv", "\n".join(lines) + "\n")
    batches = list(source.read(None, 5000))
    assert sum(len(b.changes) for b in batches) == 100_000
    assert batches[-1].changes[-1].record == {
        "id": "99999",
        "minutes": 99999 % 480,
        "rate": 14285.57,
        "approved": True,
    }


# -- current_keys ----------------------------------------------------------------------------


def test_current_keys_only_for_snapshots(tmp_path: Path) -> None:
    drop_dir = make(tmp_path)
    drop(tmp_path, "time_1.csv", "id\n1\n")
    assert drop_dir.current_keys("time_entries") is None
    with pytest.raises(ConnectorError, match="no object 'nope'"):
        drop_dir.current_keys("nope")


def test_current_keys_of_a_snapshot_are_the_newest_files_live_keys(tmp_path: Path) -> None:
    source = make(tmp_path, snapshot=True, delete_field="deleted")
    assert source.current_keys("time_entries") is None  # no export yet: cannot tell
    drop(tmp_path, "time_1.csv", "id,deleted\n1,\n2,\n3,\n")
    drop(tmp_path, "time_2.csv", "id,deleted\n1,\n3,true\n4,\n")
    assert source.current_keys("time_entries") == {"1", "4"}
    drop(tmp_path, "time_2.csv", "5,", "a")  # an export still being written
    assert source.current_keys("time_entries") is None
    drop(tmp_path, "time_3.csv", "id,deleted\n1,\n2,x,y\n")
    assert source.current_keys("time_entries") == {"1", "2"}  # a broken row is kept alive
    drop(tmp_path, "time_4.csv", "id,deleted\n1,\n,\n")
    assert source.current_keys("time_entries") is None  # a row without a key: cannot tell
    drop(tmp_path, "time_5.csv", "id,deleted\n")
    assert source.current_keys("time_entries") == set()


def test_a_latin1_key_or_file_name_is_quarantined_not_fatal(tmp_path: Path) -> None:
    """Ingested end to end: a Latin-1 byte in a key and a Latin-1 file name must not stop the
    hub (the same rows would stop every later pass too)."""
    from hub.ingest import Ingestor
    from hub.store.sqlite import SQLiteEventStore

    source = make(tmp_path)
    drop(tmp_path, "time_1.csv", b"id,v\nM\xfcller,a\n2,b\n")
    latin1_name = b"time_2_M\xe4rz.csv".decode("utf-8", "surrogateescape")
    drop(tmp_path, latin1_name, "id,v\n3,c\n")
    store = SQLiteEventStore(str(tmp_path / "hub.db"))
    try:
        report = Ingestor(store, "erp", source).run_once()
        assert (report.appended, report.quarantined) == (2, 1)
        facts: list[Any] = [store.decode(e) for e in store.read(types=["SourceChanged"])]
        assert [(f["key"], f["position"]) for f in facts] == [
            ("2", "time_1.csv:3"),
            ("3", "time_2_M\\xe4rz.csv:2"),
        ]
        (q,) = [store.decode(e) for e in store.read(types=["RecordQuarantined"])]
        assert (q["key"], q["position"]) == ("M\\xfcller", "time_1.csv:2")  # type: ignore[index]
        assert "not valid UTF-8, at time_1.csv:2" in q["reason"]  # type: ignore[index]
    finally:
        store.close()
