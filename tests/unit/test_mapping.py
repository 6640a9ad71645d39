"""Mappings: pipelines, every step, document checks, ownership, rules, and their properties."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import string
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import hub.mapping as mapping_pkg
from hub.errors import MappingError, MappingSpecError, StoreError
from hub.mapping import (
    STEPS,
    Context,
    MappedRecord,
    Mapping,
    MissingLinkError,
    MissingTargetKeyError,
    compile_pipeline,
    load_mapping,
)
from hub.mapping.spec import read_document

ENTITIES = ["Account", "Invoice", "Person", "Project", "Task", "TimeEntry"]


class FakeLookup:
    """Links and target keys from two dicts."""

    def __init__(
        self,
        links: dict[tuple[str, str, str, str], str] | None = None,
        keys: dict[tuple[str, str], str] | None = None,
    ) -> None:
        self.links = links or {}
        self.keys = keys or {}
        self.entities: dict[str, dict[str, Any]] = {}

    def canonical_id(self, entity: str, system: str, object: str, key: str) -> str | None:
        return self.links.get((entity, system, object, key))

    def target_key(self, system: str, canonical_id: str) -> str | None:
        return self.keys.get((system, canonical_id))

    def canonical_field(self, canonical_id: str, field: str) -> Any:
        entity = self.entities.get(canonical_id)
        if entity is None:
            return None
        return entity if field == "*" else entity.get(field)

    def object_key(self, system: str, object: str, canonical_id: str) -> str | None:
        return self.keys.get((f"{system}/{object}", canonical_id))

    def referencing(
        self, entity: str, field: str, canonical_id: str
    ) -> list[tuple[str, dict[str, Any]]]:
        return [
            (cid, e)
            for cid, e in self.entities.items()
            if cid.startswith(entity + "/") and e.get(field) == canonical_id
        ]


LOOKUP = FakeLookup(
    links={("Person", "erp", "employees", "42"): "Person/e-42"},
    keys={("erp_out", "Person/e-42"): "EMP-42"},
)


def run(
    pipeline: str, record: dict[str, Any] | None = None, key: str = "k1", lookup: Any = None
) -> Any:
    ctx = Context(record or {}, key, "tracker", "time_entries", lookup or LOOKUP)
    return compile_pipeline(pipeline).evaluate(ctx, "f")


def fail(pipeline: str, record: dict[str, Any] | None = None) -> MappingError:
    with pytest.raises(MappingError) as info:
        run(pipeline, record)
    assert info.value.field == "f"
    assert info.value.rule == pipeline
    assert str(info.value).startswith("field f: ")
    assert str(info.value).endswith(f"(rule: {pipeline})")
    return info.value


def spec_error(pipeline: str) -> str:
    with pytest.raises(MappingSpecError) as info:
        compile_pipeline(pipeline)
    return str(info.value)


DOC: dict[str, Any] = {
    "name": "default",
    "entities": {
        "TimeEntry": {"owner": "tracker", "fields": {"project_id": "erp"}},
        "Project": {"owner": "erp"},
    },
    "sources": [
        {
            "system": "tracker",
            "object": "time_entries",
            "entity": "TimeEntry",
            "id": "$key",
            "fields": {
                "minutes": "duration | int",
                "date": "day | date",
                "person_id": "user | link Person erp employees",
                "project_id": "description | tag_path 0",
                "billable": "description | has_tag billable",
                "approved": 'state | map {"A": true, "D": false}',
                "description": "description | strip_tags | default ''",
            },
            "delete": "deleted | bool",
        },
        {
            "system": "erp",
            "object": "projects",
            "entity": "Project",
            "id": "code | required",
            "fields": {"name": "title | strip"},
        },
    ],
    "targets": [
        {
            "system": "erp_out",
            "object": "timesheet_lines",
            "entity": "TimeEntry",
            "when": "approved",
            "fields": {
                "employee": "person_id | target_key erp_out",
                "hours": "minutes | div 60 | round 2",
                "work": "task_id",
                "ref": "$key",
                "kind": "'T'",
                "label": "{person_id}:{date}",
            },
        },
        {
            "system": "crm_out",
            "object": "projects",
            "entity": "Project",
            "fields": {"title": "name | upper"},
        },
    ],
}

RECORD = {
    "duration": "90",
    "day": "2024-03-01",
    "user": 42,
    "description": "Kick-off #acme/web #Billable",
    "state": "A",
    "deleted": "no",
}


def doc(**changes: Any) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(DOC))
    copied.update(changes)
    return copied


def source(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"system": "s", "object": "o", "entity": "TimeEntry", "id": "$key"}
    base.update(changes)
    return base


def spec_problems(spec: Any, **kwargs: Any) -> str:
    with pytest.raises(MappingSpecError) as info:
        Mapping.from_dict(spec, **kwargs)
    return str(info.value)


# --- the public surface ---------------------------------------------------------------------


def test_all_names_exist() -> None:
    assert sorted(mapping_pkg.__all__) == sorted(set(mapping_pkg.__all__))
    for name in mapping_pkg.__all__:
        assert hasattr(mapping_pkg, name), name


# --- sources --------------------------------------------------------------------------------


def test_field_sources() -> None:
    record = {"a": 1, "customer": {"code": "C7"}, "lines": [{"x": 5}], "name": None}
    assert run("a", record) == 1
    assert run("customer.code", record) == "C7"
    assert run("lines.0.x", record) == 5
    assert run("lines.3.x", record) is None
    assert run("missing", record) is None
    assert run("customer.missing.deeper", record) is None
    assert run("a.b", record) is None  # walking into a scalar gives None
    assert run('"first name"', {"first name": "Ada"}) == "Ada"


def test_variable_and_literal_sources() -> None:
    assert run("$key", key="k9") == "k9"
    assert run("$system") == "tracker"
    assert run("$object") == "time_entries"
    assert run("'hello world'") == "hello world"
    assert run("''") == ""
    assert run("12") == 12
    assert run("1.5") == 1.5
    assert run("null") is None
    assert run("true") is True
    assert run("false") is False
    assert run("'42'") == "42"  # single quotes always mean text


def test_template_source() -> None:
    record = {"code": "ACME", "year": 2024, "c": {"d": "x"}}
    assert run("{code}/{year}", record) == "ACME/2024"
    assert run('"{code} - {c.d}"', record) == "ACME - x"
    assert run("{$system}:{code}", record) == "tracker:ACME"
    assert run("{{{code}}}", record) == "{ACME}"
    assert compile_pipeline("{code}/{year}").source_field is None


def test_template_with_empty_field_names_it() -> None:
    err = fail("{code}/{year}", {"code": "ACME"})
    assert "template field year is empty" in str(err)
    assert err.value is None


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        ("$nope", "unknown variable '$nope'"),
        ("a..b", "empty part"),
        ("{a}}", "unbalanced"),
        ("x{ }", "empty placeholder"),
        ("a b", "the source must be one word"),
        ("", "the pipeline is empty"),
        ("a |", "nothing after '|' number 1"),
        ("| int", "nothing before the first '|'"),
        ("a || int", "nothing after"),
        ("'abc", "unclosed '"),
        ('"abc', 'unclosed "'),
        ("a | map {", "unclosed '{'"),
    ],
)
def test_unparseable_pipelines(pipeline: str, expected: str) -> None:
    message = spec_error(pipeline)
    assert expected in message
    assert f"(rule: {pipeline})" in message


def test_quoting_and_json_arguments() -> None:
    assert run('a | map {"x y": 1, "|": 2}', {"a": "|"}) == 2
    assert run("a | map '{\"A\": 1}'", {"a": "A"}) == 1
    assert run('a|map {"A":1}', {"a": "A"}) == 1
    assert run("a | split ' ' 1", {"a": "x y"}) == "y"
    assert run("a | split \\| 1", {"a": "x|y"}) == "y"
    assert run("a | default 'n/a'") == "n/a"
    assert run("a | default '\"0\"'") == "0"  # JSON text: a string
    assert run("a | default 0") == 0


# --- conversion steps -----------------------------------------------------------------------


def test_str() -> None:
    assert run("a | str", {"a": 42}) == "42"
    assert run("a | str", {"a": True}) == "true"
    assert run("a | str", {"a": Decimal("1.50")}) == "1.50"
    assert run("a | str", {"a": dt.date(2024, 3, 1)}) == "2024-03-01"
    assert run("a | str", {"a": "x"}) == "x"
    assert "no single text form" in str(fail("a | str", {"a": [1]}))


def test_int() -> None:
    for value, expected in [("42", 42), (" -7 ", -7), ("42.0", 42), (3.0, 3), (Decimal("8"), 8)]:
        assert run("a | int", {"a": value}) == expected
    err = fail("duration | int", {"duration": "abc"})
    assert str(err).startswith("field f: step 'int' cannot convert 'abc' (str) to an integer")
    assert err.value == "abc"
    assert "round it first" in str(fail("a | int", {"a": 1.5}))
    fail("a | int", {"a": True})
    fail("a | int", {"a": "1e999999"})


def test_int_error_names_the_canonical_field() -> None:
    mapping = Mapping.from_dict(DOC)
    rule = mapping.inbound("tracker", "time_entries")
    assert rule is not None
    with pytest.raises(MappingError) as info:
        rule.apply("k1", {**RECORD, "duration": "abc"}, LOOKUP)
    assert info.value.field == "minutes"
    assert info.value.rule == "duration | int"
    assert info.value.value == "abc"
    assert str(info.value) == (
        "field minutes: step 'int' cannot convert 'abc' (str) to an integer: fix the value at "
        "the source or add 'default 0' for empty values (rule: duration | int)"
    )


def test_float() -> None:
    assert run("a | float", {"a": "1.5"}) == 1.5
    assert run("a | float", {"a": 2}) == 2.0
    assert run("a | float", {"a": Decimal("0.25")}) == 0.25
    for bad in ["nan", "1e400", "x", True, 10**400]:
        assert "finite number" in str(fail("a | float", {"a": bad}))


def test_decimal() -> None:
    assert run("a | decimal", {"a": "12.345"}) == Decimal("12.345")
    assert run("a | decimal 2", {"a": "12.345"}) == Decimal("12.35")  # half-up
    assert run("a | decimal 2", {"a": 0.1}) == Decimal("0.10")
    assert run("a | decimal 0", {"a": 7}) == Decimal("7")
    assert isinstance(run("a | decimal", {"a": 1}), Decimal)
    for bad in ["1,5", "NaN", "Infinity", True, float("inf"), [1]]:
        fail("a | decimal", {"a": bad})
    assert "too many digits" in str(fail("a | decimal 2", {"a": "1e40"}))
    assert "PLACES must be a whole number >= 0" in spec_error("a | decimal -1")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("FALSE", False),
        ("Yes", True),
        ("no", False),
        ("y", True),
        ("N", False),
        ("1", True),
        ("0", False),
        (" on ", True),
        ("Off", False),
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (7, True),
    ],
)
def test_bool(value: Any, expected: bool) -> None:
    assert run("a | bool", {"a": value}) is expected


def test_bool_rejects_other_words() -> None:
    err = fail("a | bool", {"a": "maybe"})
    assert "cannot read 'maybe' (str) as true/false" in str(err)
    fail("a | bool", {"a": 1.0})


def test_date() -> None:
    assert run("a | date", {"a": "2024-03-01"}) == dt.date(2024, 3, 1)
    assert run("a | date", {"a": "2024-03-01T23:30:00+05:00"}) == dt.date(2024, 3, 1)
    assert run("a | date", {"a": dt.datetime(2024, 3, 1, 9)}) == dt.date(2024, 3, 1)
    assert run("a | date", {"a": dt.date(2024, 3, 1)}) == dt.date(2024, 3, 1)
    assert run("a | date %d.%m.%Y", {"a": "01.03.2024"}) == dt.date(2024, 3, 1)
    assert "ISO form" in str(fail("a | date", {"a": "01.03.2024"}))
    assert "format '%d.%m.%Y'" in str(fail("a | date %d.%m.%Y", {"a": "2024-03-01"}))
    fail("a | date", {"a": 20240301})


def test_datetime() -> None:
    utc = dt.UTC
    assert run("a | datetime", {"a": "2024-03-01T10:00:00Z"}) == dt.datetime(
        2024, 3, 1, 10, tzinfo=utc
    )
    naive = run("a | datetime", {"a": "2024-03-01T10:00:00"})
    assert naive == dt.datetime(2024, 3, 1, 10, tzinfo=utc)
    shifted = run("a | datetime", {"a": "2024-03-01T10:00:00+02:00"})
    assert shifted == dt.datetime(2024, 3, 1, 8, tzinfo=utc)
    assert shifted.tzinfo is utc
    assert run("a | datetime", {"a": 0}) == dt.datetime(1970, 1, 1, tzinfo=utc)
    assert run("a | datetime", {"a": 1.5}) == dt.datetime(1970, 1, 1, 0, 0, 1, 500000, utc)
    assert run("a | datetime", {"a": dt.date(2024, 3, 1)}) == dt.datetime(2024, 3, 1, tzinfo=utc)
    assert run("a | datetime", {"a": dt.datetime(2024, 3, 1)}).tzinfo is utc
    assert run("a | datetime '%d.%m.%Y %H:%M'", {"a": "01.03.2024 10:30"}) == dt.datetime(
        2024, 3, 1, 10, 30, tzinfo=utc
    )
    for bad in ["yesterday", 1e20, True, float("nan")]:
        fail("a | datetime", {"a": bad})


# --- text steps -----------------------------------------------------------------------------


def test_case_and_strip() -> None:
    assert run("a | lower", {"a": "AbC"}) == "abc"
    assert run("a | upper", {"a": "AbC"}) == "ABC"
    assert run("a | strip", {"a": "  x \n"}) == "x"
    assert "needs text, got 5 (int): add 'str' before 'lower'" in str(fail("a | lower", {"a": 5}))


def test_regex() -> None:
    assert run("a | regex 'PRJ-(\\d+)'", {"a": "see PRJ-77 now"}) == "77"  # group 1 by default
    assert run("a | regex '\\d+'", {"a": "ab12cd"}) == "12"  # no groups: the whole match
    assert run("a | regex '(\\w)(\\d)' 2", {"a": "x9"}) == "9"
    assert run("a | regex '(\\w)(\\d)' 0", {"a": "x9"}) == "x9"
    assert run("a | regex '(?P<n>\\d+)' n", {"a": "x9"}) == "9"
    assert run("a | regex 'z(\\d)'", {"a": "abc"}) is None
    assert run("a | regex '(x)?y'", {"a": "y"}) is None  # group did not take part
    assert "not a valid regular expression" in spec_error("a | regex '('")
    assert "GROUP 3 does not exist" in spec_error("a | regex '(a)' 3")
    assert "no group named 'q'" in spec_error("a | regex '(a)' q")


def test_split() -> None:
    assert run("a | split / 1", {"a": "x/y/z"}) == "y"
    assert run("a | split / -1", {"a": "x/y/z"}) == "z"
    assert run("a | split / 5", {"a": "x/y"}) is None
    assert run("a | split , 0", {"a": "p,q"}) == "p"
    assert run("a | split 1 0", {"a": "a1b"}) == "a"  # SEP is always text
    assert "SEP must not be empty" in spec_error("a | split '' 0")
    assert "INDEX must be an integer" in spec_error("a | split / x")


TEXT = "Planning (#acme/web) with #Billable, and C# and issue#7. #ops #v1.2. #"


def test_tags() -> None:
    assert run("a | tags", {"a": TEXT}) == ["acme/web", "Billable", "ops", "v1.2"]
    assert run("a | tags", {"a": "no tags here"}) == []


def test_has_tag() -> None:
    assert run("a | has_tag billable", {"a": TEXT}) is True  # case-insensitive
    assert run("a | has_tag '#ops'", {"a": TEXT}) is True
    assert run("a | has_tag acme/web", {"a": TEXT}) is True
    assert run("a | has_tag acme", {"a": TEXT}) is False
    assert run("a | has_tag billable") is False  # None → False
    assert "NAME must be a tag" in spec_error("a | has_tag '#'")


def test_tag_path() -> None:
    assert run("a | tag_path 0", {"a": TEXT}) == "acme"
    assert run("a | tag_path 1", {"a": TEXT}) == "web"
    assert run("a | tag_path 2", {"a": TEXT}) is None
    assert run("a | tag_path 0", {"a": "#only #plain tags"}) is None
    assert run("a | tag_path 1", {"a": "done #acme/web."}) == "web"  # sentence full stop


@pytest.mark.parametrize(
    ("text", "tag", "reason"),
    [
        ("x #acme//web y", "#acme//web", "empty segment"),
        ("#acme/web/", "#acme/web/", "ends with '/'"),
        ("#/acme", "#/acme", "empty segment"),
        ("#acme/w$b", "#acme/w$b", "character '$' is not allowed"),
    ],
)
def test_tag_path_rejects_malformed_tags(text: str, tag: str, reason: str) -> None:
    err = fail("a | tag_path 0", {"a": text})
    assert f"path tag '{tag}' is malformed" in str(err)
    assert reason in str(err)
    assert err.value == text


def test_strip_tags() -> None:
    assert run("a | strip_tags", {"a": "Kick-off  #acme/web\n#billable meeting"}) == (
        "Kick-off meeting"
    )
    assert run("a | strip_tags", {"a": "Done #ops."}) == "Done ."
    assert run("a | strip_tags", {"a": "#a #b"}) == ""
    assert run("a | strip_tags", {"a": "C# code"}) == "C# code"


def test_max_len() -> None:
    assert run("a | max_len 3", {"a": "abc"}) == "abc"
    err = fail("a | max_len 3", {"a": "abcd"})
    assert "is 4 characters long, more than the 3 allowed" in str(err)


# --- value steps ----------------------------------------------------------------------------


def test_default_and_required() -> None:
    assert run("a | default 5") == 5
    assert run("a | default 5", {"a": ""}) == 5
    assert run("a | default 5", {"a": 0}) == 0
    assert run("a | default x", {"a": "y"}) == "y"
    assert run("a | default null") is None
    assert run("a | default [1]") == [1]
    assert run("a | required", {"a": "x"}) == "x"
    assert run("a | required", {"a": 0}) == 0
    err = fail("a | required", {"a": ""})
    assert "needs a value but got '' (str)" in str(err)
    fail("a | required")


def test_map() -> None:
    pipeline = 'state | map {"A": true, "D": false}'
    assert run(pipeline, {"state": "A"}) is True
    assert run(pipeline, {"state": "D"}) is False
    err = fail(pipeline, {"state": "X"})
    assert "has no entry for 'X' (str) (known: 'A', 'D')" in str(err)
    assert run(pipeline + " null", {"state": "X"}) is None
    assert run('a | map {"1": "one"} other', {"a": 1}) == "one"  # keys are text
    assert run('a | map {"true": "yes"}', {"a": True}) == "yes"
    assert run('a | map {"x": 1} other', {"a": "y"}) == "other"
    nested = compile_pipeline('a | map {"x": {"n": [1]}}')
    ctx = Context({"a": "x"}, "k", "s", "o", LOOKUP)
    first = nested.evaluate(ctx, "f")
    first["n"].append(2)
    assert nested.evaluate(ctx, "f") == {"n": [1]}  # the map's own data cannot change
    assert "OBJECT must be a JSON object" in spec_error("a | map x")


def test_arithmetic() -> None:
    assert run("a | div 60", {"a": 90}) == 1.5
    assert run("a | div 60 | round 2", {"a": 100}) == 1.67
    assert run("a | mul 3", {"a": 4}) == 12 and isinstance(run("a | mul 3", {"a": 4}), int)
    assert run("a | mul 0.5", {"a": 3}) == 1.5
    assert run("a | decimal | div 3 | round 2", {"a": "10"}) == Decimal("3.33")
    assert run("a | decimal | mul 1.1", {"a": "10"}) == Decimal("11.0")
    assert run("a | decimal | round 1", {"a": "0.25"}) == Decimal("0.3")  # half-up
    assert run("a | round 0", {"a": 2.5}) == 3.0  # half-up, as decimal (was half-to-even)
    assert run("a | round -2", {"a": 1234}) == 1200
    err = fail("a | div 60", {"a": "90"})
    assert "needs a number, got '90' (str): add 'int', 'float' or 'decimal'" in str(err)
    fail("a | mul 2", {"a": True})
    fail("a | mul 1e300", {"a": 1e300})
    assert "N must not be 0" in spec_error("a | div 0")
    assert "N must be a finite number" in spec_error("a | mul x")
    assert "PLACES must be an integer" in spec_error("a | round 1.5")


# --- identity steps -------------------------------------------------------------------------


def test_link() -> None:
    assert run("u | link Person erp employees", {"u": 42}) == "Person/e-42"
    err = fail("u | link Person erp employees", {"u": 7})
    assert (
        "step 'link' no Person is linked to erp/employees/7: capture it first or fix the link"
        in (str(err))
    )
    assert err.value == 7
    assert isinstance(err, MissingLinkError)
    assert (err.entity, err.system, err.object, err.key) == ("Person", "erp", "employees", "7")


def test_target_key_and_canonical() -> None:
    assert run("p | target_key erp_out", {"p": "Person/e-42"}) == "EMP-42"
    err = fail("p | target_key erp_out", {"p": "Person/zz"})
    assert "erp_out has no record for Person/zz yet" in str(err)
    assert isinstance(err, MissingTargetKeyError)
    assert (err.system, err.canonical_id) == ("erp_out", "Person/zz")
    assert run("p | canonical Project", {"p": "acme"}) == "Project/acme"
    assert run("p | canonical Project", {"p": 7}) == "Project/7"


def test_lookup_failures() -> None:
    class Broken:
        def canonical_id(self, *args: str) -> str | None:
            raise StoreError("database is locked")

        def target_key(self, system: str, canonical_id: str) -> str | None:
            raise RuntimeError("boom")

    ctx = Context({"u": 1}, "k", "s", "o", Broken())
    with pytest.raises(StoreError):  # the hub's own errors propagate unchanged
        compile_pipeline("u | link Person erp e").evaluate(ctx, "f")
    with pytest.raises(MappingError) as info:  # anything else becomes a MappingError
        compile_pipeline("u | target_key erp").evaluate(ctx, "f")
    assert "RuntimeError: boom" in str(info.value)


# --- step table -----------------------------------------------------------------------------

EXAMPLES = {
    "str": "str",
    "int": "int",
    "float": "float",
    "decimal": "decimal 2",
    "bool": "bool",
    "date": "date",
    "datetime": "datetime",
    "lower": "lower",
    "upper": "upper",
    "strip": "strip",
    "default": "default 1",
    "required": "required",
    "map": 'map {"a": 1}',
    "div": "div 2",
    "mul": "mul 2",
    "round": "round 1",
    "regex": "regex '(\\d+)'",
    "split": "split / 0",
    "tags": "tags",
    "has_tag": "has_tag x",
    "tag_path": "tag_path 0",
    "strip_tags": "strip_tags",
    "max_len": "max_len 5",
    "link": "link Person erp employees",
    "target_key": "target_key erp_out",
    "canonical": "canonical Project",
    "tag_prefix": "tag_prefix 2",
    "slug": "slug",
    "equals": "equals 1",
    "gt": "gt 0",
    "not_future": "not_future",
    "is_set": "is_set",
    "both_set": "both_set {b}",
    "not": "not",
    "exists": "exists",
    "field_of": "field_of status",
    "referenced_by": "referenced_by Opportunity account_id state won",
    "sum_of": "sum_of Invoice account_id total state posted",
    "le": "le 600",
    "latest_of": "latest_of Invoice account_id issue_date",
    "earliest_of": "earliest_of Invoice account_id due_date status posted",
    "sums_by": "sums_by Invoice account_id total currency status posted",
    "join": "join ', '",
    "minus": "minus 1",
    "values_of": "values_of Assignment project_id person_id",
    "id_part": "id_part",
    "in_force": "in_force RateCard labor_category senior currency EUR",
}


def test_every_step_has_an_example() -> None:
    assert set(EXAMPLES) == set(STEPS)


BOOLEAN_CHECKS = {"equals", "gt", "le", "not_future", "is_set", "not", "exists", "both_set"}


@pytest.mark.parametrize(
    "step",
    sorted(
        set(STEPS)
        - {"default", "required", "has_tag", "referenced_by", "sum_of", "latest_of", "values_of"}
        - {"earliest_of", "sums_by"}
        - BOOLEAN_CHECKS
    ),
)
def test_none_passes_through(step: str) -> None:
    assert run(f"a | {EXAMPLES[step]}") is None


def test_referenced_by_counts_nothing_for_none() -> None:
    assert run(f"a | {EXAMPLES['referenced_by']}") == 0
    assert run(f"a | {EXAMPLES['sum_of']}") == Decimal(0)
    assert run(f"a | {EXAMPLES['values_of']}") == []


def test_unknown_step_and_argument_counts() -> None:
    message = spec_error("duration | itn")
    assert "unknown step 'itn' (did you mean 'int'?)" in message
    assert "step 'round' takes 1 argument(s), got 0: write it as 'round PLACES'" in spec_error(
        "a | round"
    )
    assert "takes 0 to 1 argument(s), got 2" in spec_error("a | decimal 1 2")
    assert "takes 3 argument(s)" in spec_error("a | link Person erp")
    with pytest.raises(MappingSpecError, match="unknown entity 'Persn'"):
        compile_pipeline("a | link Persn erp e", known_entities=ENTITIES)


# --- the document ---------------------------------------------------------------------------


def test_mapping_from_dict() -> None:
    mapping = Mapping.from_dict(DOC, version=3, known_entities=ENTITIES)
    assert (mapping.name, mapping.version) == ("default", 3)
    assert len(mapping.digest) == 64
    assert mapping.spec == DOC and mapping.spec is not DOC
    assert json.loads(mapping.spec_json) == DOC
    assert mapping.entities() == ["Project", "TimeEntry"]
    assert mapping.inbound("tracker", "nope") is None
    assert [r.object for r in mapping.outbound("TimeEntry")] == ["timesheet_lines"]
    assert [r.system for r in mapping.outbound_for("crm_out")] == ["crm_out"]
    assert mapping.outbound("Account") == []


def test_ownership() -> None:
    mapping = Mapping.from_dict(DOC)
    assert mapping.owner("TimeEntry", "minutes") == "tracker"
    assert mapping.owner("TimeEntry", "project_id") == "erp"
    assert mapping.owner("Project", "name") == "erp"
    assert mapping.owner("Account", "name") is None
    only_fields = Mapping.from_dict(doc(entities={"Task": {"fields": {"rate": "erp"}}}))
    assert only_fields.owner("Task", "rate") == "erp"
    assert only_fields.owner("Task", "name") is None


def test_inbound_apply() -> None:
    rule = Mapping.from_dict(DOC).inbound("tracker", "time_entries")
    assert rule is not None and rule.entity == "TimeEntry"
    mapped = rule.apply("te-1", RECORD, LOOKUP)
    assert mapped == MappedRecord(
        "TimeEntry",
        "te-1",
        {
            "minutes": 90,
            "date": dt.date(2024, 3, 1),
            "person_id": "Person/e-42",
            "project_id": "acme",
            "billable": True,
            "approved": True,
            "description": "Kick-off",
        },
    )
    assert list(mapped.fields) == list(DOC["sources"][0]["fields"])  # document order
    assert mapped.canonical_id == "TimeEntry/te-1"
    assert rule.is_delete(RECORD, LOOKUP) is False
    assert rule.is_delete({**RECORD, "deleted": "yes"}, LOOKUP) is True


def test_inbound_first_failing_field_in_document_order() -> None:
    rule = Mapping.from_dict(DOC).inbound("tracker", "time_entries")
    assert rule is not None
    bad = {**RECORD, "day": "soon", "user": 999}
    with pytest.raises(MappingError) as info:
        rule.apply("k", bad, LOOKUP)
    assert info.value.field == "date"


def test_inbound_natural_id() -> None:
    rule = Mapping.from_dict(DOC).inbound("erp", "projects")
    assert rule is not None
    assert rule.apply("x", {"code": "P1", "title": " Web "}, LOOKUP).natural_id == "P1"
    assert rule.is_delete({"code": "P1"}, LOOKUP) is False  # no delete rule
    with pytest.raises(MappingError) as info:
        rule.apply("x", {"title": "Web"}, LOOKUP)
    assert info.value.field == "id"
    numeric = Mapping.from_dict(doc(sources=[source(id="n")])).inbound("s", "o")
    assert numeric is not None
    assert numeric.apply("x", {"n": 7}, LOOKUP).natural_id == "7"
    with pytest.raises(MappingError, match="field id: the id pipeline gave no value"):
        numeric.apply("x", {"n": ""}, LOOKUP)
    with pytest.raises(MappingError, match="no single text form"):
        numeric.apply("x", {"n": [1]}, LOOKUP)


def test_is_delete_sees_the_key() -> None:
    spec = doc(sources=[source(delete='$key | map {"gone": true} false')])
    rule = Mapping.from_dict(spec).inbound("s", "o")
    assert rule is not None
    assert rule.is_delete({}, LOOKUP, key="gone") is True
    assert rule.is_delete({}, LOOKUP, key="here") is False


def test_outbound_rules() -> None:
    mapping = Mapping.from_dict(DOC)
    rule = mapping.outbound("TimeEntry")[0]
    canonical = {"approved": True, "person_id": "Person/e-42", "minutes": 100, "date": "2024-03-01"}
    assert rule.wants(canonical, LOOKUP) is True
    assert rule.wants({**canonical, "approved": False}, LOOKUP) is False
    assert rule.wants({}, LOOKUP) is False
    assert rule.apply(canonical, "te-1", LOOKUP) == {
        "employee": "EMP-42",
        "hours": 1.67,
        "work": None,
        "ref": "te-1",
        "kind": "T",
        "label": "Person/e-42:2024-03-01",
    }
    assert rule.source_fields() == {
        "employee": "person_id",
        "hours": "minutes",
        "work": "task_id",
        "ref": None,
        "kind": None,
        "label": None,
    }
    always = mapping.outbound("Project")[0]
    assert always.wants({}, LOOKUP) is True
    with pytest.raises(MappingError) as info:
        rule.apply({**canonical, "person_id": "Person/unknown"}, "te-1", LOOKUP)
    assert info.value.field == "employee"


def test_digest_follows_content() -> None:
    first = Mapping.from_dict(DOC)
    assert Mapping.from_dict(json.loads(json.dumps(DOC))).digest == first.digest
    changed = doc()
    changed["sources"][0]["fields"]["minutes"] = "duration | int | mul 1"
    assert Mapping.from_dict(changed).digest != first.digest


# --- document errors ------------------------------------------------------------------------


def test_spec_shape_errors_name_the_path() -> None:
    broken = doc()
    del broken["sources"][0]["id"]
    broken["sources"][1]["feilds"] = {}
    broken["sources"][1]["fields"]["n"] = 5
    broken["targets"][0]["fields"] = {}
    message = spec_problems(broken)
    assert message.startswith("mapping 'default' is invalid (4 problems):")
    assert "sources[0].id: is required: add it" in message
    assert "sources[1].feilds: unknown key: remove it or fix its spelling" in message
    assert "allowed here: system, object, entity, id, fields, delete" in message
    assert "sources[1].fields.n: must be text (a pipeline like" in message
    assert "targets[0].fields: must not be empty" in message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ([], "must be a mapping with the keys name, entities, sources and targets"),
        ({"sources": []}, "name: is required"),
        ({"name": ""}, "name: must not be empty"),
        ({"name": "m", "sources": {}}, "sources: must be a list"),
        ({"name": "m", "entities": {"Task": "erp"}}, "entities.Task: must be a mapping"),
        ({"name": "m", "entities": {"Task": {"owner": 1}}}, "entities.Task.owner: must be text"),
        ({"name": "m", "sources": [source(fields={1: "a"})]}, "sources[0].fields.1: names must"),
    ],
)
def test_spec_shape_errors(spec: Any, expected: str) -> None:
    assert expected in spec_problems(spec)


def test_spec_meaning_errors_name_the_path() -> None:
    broken = doc()
    broken["sources"][0]["fields"]["minutes"] = "duration | itn"
    broken["sources"][1]["fields"]["name"] = "title | round"
    broken["sources"].append(dict(broken["sources"][1], fields={}))
    broken["targets"][1]["when"] = "'open"
    message = spec_problems(broken)
    assert "(4 problems)" in message
    assert "sources[0].fields.minutes: unknown step 'itn' (did you mean 'int'?)" in message
    assert "sources[1].fields.name: step 'round' takes 1 argument(s)" in message
    assert "sources[2]: erp/projects is already mapped by sources[1]: merge" in message
    assert "targets[1].when: unclosed '" in message


def test_unknown_entities_only_with_known_entities() -> None:
    spec = doc(entities={"Timeentry": {"owner": "tracker"}})
    spec["targets"][1]["entity"] = "Projekt"
    spec["sources"][1]["fields"]["lead"] = "lead | link Persn crm users"
    assert Mapping.from_dict(spec).entities() == ["Project", "Projekt", "TimeEntry", "Timeentry"]
    message = spec_problems(spec, known_entities=ENTITIES)
    assert "entities.Timeentry: unknown entity 'Timeentry' (did you mean 'TimeEntry'?)" in message
    assert "targets[1].entity: unknown entity 'Projekt' (did you mean 'Project'?)" in message
    assert "sources[1].fields.lead: step 'link': unknown entity 'Persn'" in message


def test_duplicate_targets() -> None:
    spec = doc()
    spec["targets"].append(spec["targets"][1])
    assert "targets[2]: Project → crm_out/projects is already mapped by targets[1]" in (
        spec_problems(spec)
    )


def test_load_mapping_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "mapping.yaml"
    yaml_file.write_text(
        """
name: default
entities:
  TimeEntry: {owner: tracker, fields: {project_id: erp}}
sources:
  - system: tracker
    object: time_entries
    entity: TimeEntry
    id: "$key"
    fields:
      approved: 'state | map {"A": true, "D": false}'
      minutes: duration | int
""",
        encoding="utf-8",
    )
    loaded = load_mapping(yaml_file, version=2, known_entities=ENTITIES)
    assert loaded.version == 2 and loaded.owner("TimeEntry", "project_id") == "erp"
    json_file = tmp_path / "mapping.json"
    json_file.write_text(json.dumps(loaded.spec), encoding="utf-8")
    assert load_mapping(json_file).digest == loaded.digest


def test_load_mapping_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MappingSpecError, match=r"must end in \.yaml, \.yml or \.json"):
        load_mapping(tmp_path / "m.txt")
    with pytest.raises(MappingSpecError, match="cannot read the mapping file"):
        load_mapping(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(MappingSpecError, match="not valid YAML"):
        load_mapping(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"name": "m", "sources": [source(id="a | nope")]}))
    with pytest.raises(MappingSpecError) as info:
        load_mapping(wrong)
    assert str(info.value).startswith(f"{wrong}: mapping 'm' is invalid")
    assert "sources[0].id: unknown step 'nope'" in str(info.value)


# --- properties -----------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
finite_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
WORDS = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8)
SEGMENT = st.text(alphabet=string.ascii_letters + string.digits + "_.-", min_size=1, max_size=6)


@given(st.integers())
def test_int_str_round_trip(n: int) -> None:
    assert run("a | int", {"a": str(n)}) == n
    assert run("a | str | int | str", {"a": n}) == str(n)


@given(st.dictionaries(st.text(max_size=10), finite_json, min_size=1), st.data())
def test_map_with_a_total_dict_is_the_lookup(table: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(table)))
    pipeline = "a | map " + json.dumps(table, ensure_ascii=False)
    assert run(pipeline, {"a": key}) == table[key]


@given(json_values, st.integers() | st.text(st.characters(blacklist_characters="'"), max_size=5))
def test_default_removes_none(value: Any, fallback: int | str) -> None:
    # text arguments are written as quoted JSON strings so they stay text ('"0"' is "0")
    argument = str(fallback) if isinstance(fallback, int) else f"'{json.dumps(fallback)}'"
    result = run(f"a | default {argument}", {"a": value})
    assert result is not None
    if value is None or value == "":
        assert result == fallback and type(result) is type(fallback)
    else:
        assert result is value


def _text_with_tags(parts: list[tuple[bool, str]]) -> str:
    return " ".join(f"#{word}" if is_tag else word for is_tag, word in parts)


@given(st.lists(st.tuples(st.booleans(), WORDS), max_size=10), WORDS)
def test_tags_and_has_tag_agree(parts: list[tuple[bool, str]], probe: str) -> None:
    text = _text_with_tags(parts)
    found = run("a | tags", {"a": text})
    assert found == [word for is_tag, word in parts if is_tag]
    for name in [probe, *found]:
        expected = name.casefold() in {tag.casefold() for tag in found}
        assert run(f"a | has_tag {name}", {"a": text}) is expected


@given(
    st.lists(WORDS, max_size=3),
    st.lists(SEGMENT, min_size=2, max_size=4),
    st.lists(WORDS, max_size=3),
    st.integers(0, 5),
)
def test_tag_path_on_well_formed_tags(
    before: list[str], segments: list[str], after: list[str], index: int
) -> None:
    assume(not segments[-1].endswith("."))  # a trailing '.' is read as a full stop
    text = " ".join([*before, "#" + "/".join(segments), *after])
    expected = segments[index] if index < len(segments) else None
    assert run(f"a | tag_path {index}", {"a": text}) == expected


@given(
    st.lists(SEGMENT, min_size=2, max_size=4),
    st.sampled_from(["empty", "trailing", "leading", "char"]),
    st.sampled_from(list("$%@*+=&~^é\\")),
    st.randoms(use_true_random=False),
)
def test_tag_path_on_malformed_tags(
    segments: list[str], defect: str, char: str, rnd: random.Random
) -> None:
    assume(not segments[-1].endswith("."))  # a trailing '.' is read as a full stop
    if defect == "empty":
        segments.insert(rnd.randrange(1, len(segments)), "")
    elif defect == "trailing":
        segments.append("")
    elif defect == "leading":
        segments.insert(0, "")
    else:
        i = rnd.randrange(len(segments))
        segments[i] = segments[i][:1] + char + segments[i][1:]
    tag = "#" + "/".join(segments)
    with pytest.raises(MappingError) as info:
        run("a | tag_path 0", {"a": f"work on {tag} today"})
    assert f"path tag '{tag}' is malformed" in str(info.value)


class HashLookup:
    """Finds a link or a key for half of the values."""

    def canonical_id(self, entity: str, system: str, object: str, key: str) -> str | None:
        return f"{entity}/{key}" if hash(key) % 2 else None

    def target_key(self, system: str, canonical_id: str) -> str | None:
        return f"T-{canonical_id}" if hash(canonical_id) % 2 else None

    def canonical_field(self, canonical_id: str, field: str) -> Any:
        return {"status": "open"} if hash(canonical_id) % 2 else None

    def referencing(
        self, entity: str, field: str, canonical_id: str
    ) -> list[tuple[str, dict[str, Any]]]:
        return (
            [(f"{entity}/1", {field: canonical_id, "state": "won"})]
            if hash(canonical_id) % 2
            else []
        )

    def object_key(self, system: str, object: str, canonical_id: str) -> str | None:
        return f"{object}-{canonical_id}" if hash(canonical_id) % 2 else None


SOURCES = ["v", "v.a", "v.0", "w", "'lit'", "{v}-{w}", "$key", "3"]


VARIANTS = [
    "decimal",
    "date %d.%m.%Y",
    "datetime '%Y-%m-%d %H:%M'",
    "round -1",
    "regex '(?P<n>[a-z]+)' n",
    'map {"1": [1], "true": {"a": null}} 0',
    "default null",
    "default '\"\"'",
    "mul 0.5",
    "div -3",
    "max_len 0",
    "has_tag a/b",
    "tag_path -1",
]
STEP_POOL = sorted({*EXAMPLES.values(), *VARIANTS})


@st.composite
def pipelines(draw: st.DrawFn) -> str:
    steps = draw(st.lists(st.sampled_from(STEP_POOL), max_size=4))
    return " | ".join([draw(st.sampled_from(SOURCES)), *steps])


rich_values = json_values | st.decimals() | st.dates() | st.datetimes(timezones=st.timezones())


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(pipelines(), rich_values, rich_values)
def test_any_pipeline_returns_or_raises_mapping_error(pipeline: str, v: Any, w: Any) -> None:
    compiled = compile_pipeline(pipeline)
    ctx = Context({"v": v, "w": w}, "key", "s", "o", HashLookup())
    try:
        compiled.evaluate(ctx, "f")
    except MappingError as exc:
        assert exc.field == "f" and exc.rule == pipeline
        assert exc.__cause__ is None, f"a step crashed instead of failing cleanly: {exc}"


@settings(max_examples=150)
@given(json_values)
def test_any_document_loads_or_raises_mapping_spec_error(spec: Any) -> None:
    with contextlib.suppress(MappingSpecError):
        Mapping.from_dict(spec)


def _shuffled(value: Any, rnd: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: _shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    return value


@given(st.randoms(use_true_random=False), st.sampled_from(sorted(EXAMPLES.values())))
def test_digest_is_stable_under_key_order_and_follows_rules(rnd: random.Random, step: str) -> None:
    base = Mapping.from_dict(DOC)
    assert Mapping.from_dict(_shuffled(DOC, rnd)).digest == base.digest
    changed = doc()
    field = rnd.choice(sorted(changed["sources"][0]["fields"]))
    changed["sources"][0]["fields"][field] += f" | {step}"
    assert Mapping.from_dict(_shuffled(changed, rnd)).digest != base.digest


@given(st.text(alphabet=st.characters(blacklist_characters="'"), max_size=30))
def test_single_quoted_source_is_literal_text(text: str) -> None:
    assert run(f"'{text}'") == text


def test_validation_steps_and_canonical_lookups() -> None:
    lookup = FakeLookup()
    lookup.entities["Task/acme/web/design"] = {"status": "open", "name": "Design"}
    lookup.entities["Task/acme/web/old"] = {"status": "closed"}
    assert run("t | tag_prefix 3", {"t": "x #acme/web/design #approved"}) == "acme/web/design"
    assert run("t | tag_prefix 2", {"t": "x #acme/web/design"}) == "acme/web"
    assert run("t | tag_prefix 4", {"t": "x #acme/web/design"}) is None
    assert run("t | slug", {"t": "ACME Corp/Web Site (2026)"}) == "acme-corp/web-site-2026"
    ok = "t | tag_prefix 3 | canonical Task | field_of status | equals open"
    assert run(ok, {"t": "#acme/web/design"}, lookup=lookup) is True
    assert run(ok, {"t": "#acme/web/old"}, lookup=lookup) is False
    assert (
        run("t | tag_prefix 3 | canonical Task | exists", {"t": "#acme/web/nope"}, lookup=lookup)
        is False
    )
    assert (
        run("t | tag_prefix 3 | canonical Task | exists", {"t": "#acme/web/old"}, lookup=lookup)
        is True
    )
    assert run("m | gt 0", {"m": 5}) is True and run("m | gt 0", {"m": 0}) is False
    assert run("m | gt 0", {}) is False
    assert run("d | date | not_future", {"d": "2000-01-01"}) is True
    assert run("d | date | not_future", {"d": "2999-01-01"}) is False
    assert run("v | is_set | not", {"v": ""}) is True
    with pytest.raises(MappingError, match="needs a number"):
        run("m | gt 0", {"m": "five"})


def test_targets_with_require_and_feedback() -> None:
    spec = {
        "name": "m",
        "targets": [
            {
                "system": "erp",
                "object": "lines",
                "entity": "TimeEntry",
                "when": "approved",
                "require": {
                    "the duration is positive": "minutes | gt 0",
                    "the task exists": "task_id | exists",
                },
                "feedback": {"system": "tracker", "object": "records", "tag": "#sync-error"},
                "fields": {"hours": "minutes | div 60"},
            }
        ],
    }
    (rule,) = Mapping.from_dict(spec).outbound("TimeEntry")
    assert rule.feedback == ("tracker", "records", "sync-error")
    lookup = FakeLookup()
    lookup.entities["Task/x"] = {"status": "open"}
    assert rule.refusals({"minutes": 30, "task_id": "Task/x"}, "1", lookup) == []
    assert rule.refusals({"minutes": 0, "task_id": "Task/y"}, "1", lookup) == [
        "the duration is positive",
        "the task exists",
    ]
    bad = {**spec, "targets": [{**spec["targets"][0], "require": {"x": "a | nosuchstep"}}]}
    with pytest.raises(MappingSpecError, match=r"targets\[0\]\.require\.x"):
        Mapping.from_dict(bad)


def test_checks_treat_nan_cleanly() -> None:
    assert run("v | equals 1", {"v": Decimal("sNaN")}) is False
    assert run("v | equals 1", {"v": float("nan")}) is False
    with pytest.raises(MappingError, match="needs a number"):
        run("v | gt 0", {"v": Decimal("NaN")})


def test_canonical_field_names_are_checked_when_the_fields_are_known() -> None:
    from hub.schemas import canonical_fields

    demo = Path(__file__).parents[2] / "demo" / "mapping.yaml"
    spec = read_document(demo)
    Mapping.from_dict(spec, known_entities=canonical_fields())  # the real mapping is valid
    spec["sources"][3]["fields"]["minuts"] = spec["sources"][3]["fields"].pop("minutes")
    spec["entities"]["TimeEntry"]["fields"] = {"minuts": "erp"}
    spec["targets"][2]["fields"]["hours"] = "minuts | div 60"
    spec["targets"][2]["require"]["the duration is positive"] = "minuts | gt 0"
    Mapping.from_dict(spec, known_entities=ENTITIES)  # names only: the fields are not checked
    message = spec_problems(spec, known_entities=canonical_fields())
    assert "(4 problems)" in message
    hint = "TimeEntry has no field 'minuts' (did you mean 'minutes'?): use one of "
    assert f"sources[3].fields.minuts: {hint}" in message
    assert f"entities.TimeEntry.fields.minuts: {hint}" in message
    assert f"targets[2].fields.hours: {hint}" in message
    assert f"targets[2].require.the duration is positive: {hint}" in message


# --- review: money, rounding, checks, documents ---------------------------------------------


@pytest.mark.parametrize(
    ("pipeline", "value", "expected"),
    [
        ("a | decimal | div 0.5", "10", "20"),  # Decimal('2E+1') before the fix
        ("a | decimal | div 0.01", "100", "10000"),
        ("a | decimal | round -2", "1250", "1300"),  # Decimal('1.3E+3')
        ("a | decimal", "1e5", "100000"),
        ("a | decimal", 1e16, "10000000000000000"),
        ("a | decimal 2", "-0.004", "0.00"),  # never a negative zero amount
        ("a | decimal | round 2", "-0.001", "0.00"),
        ("a | decimal | mul -1", "0", "0"),
        ("a | decimal", "-0", "0"),
        ("a | decimal 2", "-12.345", "-12.35"),  # halves away from zero
    ],
)
def test_decimal_results_are_plain_amounts(pipeline: str, value: Any, expected: str) -> None:
    """Canonical Decimals are stored with str(): an amount must never read 2E+1 or -0.00."""
    result = run(pipeline, {"a": value})
    assert isinstance(result, Decimal)
    assert str(result) == expected


def test_decimal_refuses_absurd_magnitudes() -> None:
    assert "too large" in str(fail("a | decimal", {"a": "1e999999"}))
    assert "too large" in str(fail("a | decimal", {"a": Decimal("1e61")}))
    assert str(run("a | decimal", {"a": "1e60"})) == "1" + "0" * 60
    assert str(run("a | decimal", {"a": "0e100"})) == "0"
    assert "out of range" in str(fail("a | decimal | mul 1e30", {"a": "1e40"}))


@pytest.mark.parametrize(
    ("minutes", "hours"),
    [(3, 0.1), (9, 0.2), (15, 0.3), (21, 0.4), (27, 0.5), (33, 0.6), (45, 0.8)],
)
def test_round_of_hours_rounds_halves_up(minutes: int, hours: float) -> None:
    """`minutes | div 60 | round 1`: 9 and 15 minutes gave 0.1 and 0.2 hours (binary floats and
    Python's half-to-even), 27 gave 0.5: every quarter-hour-ish value must round the same way."""
    assert run("m | div 60 | round 1", {"m": minutes}) == hours


def test_round_agrees_with_decimal_for_floats_and_ints() -> None:
    for value, places in [(2.675, 2), (0.125, 2), (2.5, 0), (-2.5, 0), (1.005, 2), (0.15, 1)]:
        expected = float(run(f"a | decimal {places}", {"a": value}))
        assert run(f"a | round {places}", {"a": value}) == expected, (value, places)
    assert run("a | round -2", {"a": 1250}) == 1300  # Python's round gave 1200
    assert run("a | round -2", {"a": -1250}) == -1300
    assert run("a | round -2", {"a": 1249}) == 1200
    assert run("a | round -1", {"a": 10**40 + 5}) == 10**40 + 10  # exact for big ints
    assert isinstance(run("a | round -2", {"a": 1250}), int)
    assert run("a | round 2", {"a": 1e300}) == 1e300
    assert run("a | round -2", {"a": 1250.0}) == 1300.0
    negative_zero = run("a | round 2", {"a": -0.001})
    assert negative_zero == 0 and str(negative_zero) == "0.0"


def test_duplicate_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    """YAML and JSON silently keep the last of two equal keys: a second `minutes:` rule (or a
    second `fields:`) would drop the first without a word."""
    path = tmp_path / "m.yaml"
    path.write_text(
        "name: m\n"
        "sources:\n"
        "  - system: s\n"
        "    object: o\n"
        "    entity: TimeEntry\n"
        "    id: $key\n"
        "    fields:\n"
        "      minutes: duration | int\n"
        "      minutes: duration | int | div 60\n",
        encoding="utf-8",
    )
    with pytest.raises(MappingSpecError) as info:
        load_mapping(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line 9: key 'minutes' is given twice")
    assert "first at line 8" in message
    json_path = tmp_path / "m.json"
    json_path.write_text('{"name": "m", "name": "n"}', encoding="utf-8")
    with pytest.raises(MappingSpecError, match="key 'name' is given twice"):
        load_mapping(json_path)
    merged = tmp_path / "merge.yaml"  # YAML merge keys may still override what they bring
    merged.write_text(
        "base: &b {system: s, object: o, entity: TimeEntry, id: $key}\n"
        "name: m\n"
        "sources:\n"
        "  - <<: *b\n"
        "    id: code\n",
        encoding="utf-8",
    )
    assert read_document(merged)["sources"][0]["id"] == "code"
    merged.write_text("name: m\nentities: {Task: {owner: a, owner: b}}\n", encoding="utf-8")
    with pytest.raises(MappingSpecError, match="line 2: key 'owner' is given twice"):
        read_document(merged)


def test_equals_keeps_true_apart_from_1_and_compares_lists() -> None:
    assert run("a | equals 1", {"a": True}) is False  # was True: True == 1 in Python
    assert run("a | equals true", {"a": 1}) is False
    assert run("a | equals 0", {"a": False}) is False
    assert run("a | equals true", {"a": True}) is True
    assert run("a | equals true", {"a": "true"}) is True  # text forms still compare
    assert run("a | equals 1", {"a": Decimal("1.0")}) is True
    assert run("a | equals 1", {"a": "1"}) is True
    # a list or object VALUE (or value) used to fail the check with "no single text form"
    assert run("a | tags | equals []", {"a": "x #t"}) is False
    assert run('a | tags | equals ["t"]', {"a": "x #t"}) is True
    assert run("a | equals [1]", {"a": "x"}) is False
    assert run("a | equals null") is True
    assert run("a | equals 0") is False


def test_not_future_accepts_today_in_every_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 23:30 UTC on 1 March it is already 2 March from UTC+1 to UTC+14 (Berlin, Sydney): an
    entry dated 2 March logged there was refused and flagged as 'in the future'."""
    import hub.mapping.checks as checks_module

    now = dt.datetime(2024, 3, 1, 23, 30, tzinfo=dt.UTC)
    monkeypatch.setattr(checks_module, "_now", lambda: now)
    assert run("d | date | not_future", {"d": "2024-03-02"}) is True
    assert run("d | not_future", {"d": "2024-03-02"}) is True
    assert run("d | date | not_future", {"d": "2024-03-03"}) is False  # tomorrow everywhere
    now = dt.datetime(2024, 3, 1, 9, 59, tzinfo=dt.UTC)  # 23:59 on 1 March in UTC+14
    assert run("d | date | not_future", {"d": "2024-03-02"}) is False
    # instants stay exact: 2 March 09:00 in Sydney is 1 March 22:00 UTC
    now = dt.datetime(2024, 3, 1, 21, 0, tzinfo=dt.UTC)
    assert run("d | not_future", {"d": "2024-03-02T09:00:00+11:00"}) is False
    assert run("d | datetime | not_future", {"d": "2024-03-02T09:00:00+11:00"}) is False
    now = dt.datetime(2024, 3, 1, 22, 0, tzinfo=dt.UTC)
    assert run("d | not_future", {"d": "2024-03-02T09:00:00+11:00"}) is True
    assert run("d | not_future", {"d": dt.datetime(2024, 3, 1, 22, 0)}) is True  # naive: UTC


def test_conversion_errors_say_the_fix_that_works() -> None:
    # '12.5' has a fraction: 'default 0' (the old hint) does not help, rounding does
    assert "'decimal | round 0 | int'" in str(fail("a | int", {"a": "12.5"}))
    # whitespace only: 'default 0' acts on "" alone, so the fix needs 'strip' first
    assert "'strip | default 0'" in str(fail("a | int", {"a": "  "}))
    assert "'default 0'" in str(fail("a | int", {"a": ""}))
    # epoch milliseconds (what JavaScript and many APIs send) are out of range as seconds
    assert "'div 1000'" in str(fail("a | datetime", {"a": 1709280000000}))
    # epoch seconds as text are not ISO text
    assert "'int | datetime'" in str(fail("a | datetime", {"a": "1709280000"}))
    assert "fix the value at the source" in str(fail("a | div 2", {"a": float("inf")}))
    for bad in [Decimal("sNaN"), Decimal("-Infinity"), float("nan"), -5e12]:
        assert "step 'datetime' cannot read" in str(fail("a | datetime", {"a": bad}))


def test_template_fields_of_target_rules_are_checked_at_load() -> None:
    """A typo in an outbound template (`{dat}`) loaded fine and then failed every record with
    'template field dat is empty'; a source field typo is caught, so must this be."""
    spec = doc()
    spec["targets"][0]["fields"]["label"] = "{person_id}:{dat}"
    spec["targets"][0]["when"] = '"{approved} {$key}"'
    fields = {"TimeEntry": ["person_id", "date", "approved", "minutes", "task_id"], "Project": []}
    problems = [
        p for p in spec_problems(spec, known_entities=fields).splitlines() if "targets[0]" in p
    ]
    assert len(problems) == 1
    assert problems[0].startswith(
        "  targets[0].fields.label: TimeEntry has no field 'dat' (did you mean 'date'?)"
    )
    spec["targets"][0]["fields"]["label"] = "{person_id}:{date.year}"
    assert "targets[0]" not in spec_problems(spec, known_entities=fields)


def test_feedback_tag_must_be_a_tag() -> None:
    """`tag: "#"` loaded as the empty tag, `tag: sync error` as a tag no tracker can show."""
    for tag in ["#", "sync error", "##"]:
        spec = {
            "name": "m",
            "targets": [
                {
                    "system": "erp",
                    "object": "lines",
                    "entity": "TimeEntry",
                    "feedback": {"system": "tracker", "object": "records", "tag": tag},
                    "fields": {"hours": "minutes"},
                }
            ],
        }
        assert f"targets[0].feedback.tag: {tag!r} is not a tag" in spec_problems(spec), tag


def test_referenced_by_counts_the_entities_that_name_it() -> None:
    lookup = FakeLookup()
    lookup.entities = {
        "Opportunity/1": {"account_id": "Account/acme", "state": "won"},
        "Opportunity/2": {"account_id": "Account/acme", "state": "lost"},
        "Opportunity/3": {"account_id": "Account/hooli", "state": "won"},
        "Invoice/9": {"account_id": "Account/acme", "state": "won"},
    }
    count = "a | referenced_by Opportunity account_id"
    won = "a | referenced_by Opportunity account_id state won"
    assert run(count, {"a": "Account/acme"}, lookup=lookup) == 2
    assert run(won, {"a": "Account/acme"}, lookup=lookup) == 1
    assert run(won, {"a": "Account/initech"}, lookup=lookup) == 0


def test_sum_of_adds_a_field_of_the_entities_that_name_it_exactly() -> None:
    lookup = FakeLookup()
    lookup.entities = {
        "Invoice/1": {"account_id": "Account/acme", "total": "1000.10", "state": "posted"},
        "Invoice/2": {"account_id": "Account/acme", "total": 250.2, "state": "paid"},
        "Invoice/3": {"account_id": "Account/acme", "total": None, "state": "posted"},
        "Invoice/4": {"account_id": "Account/hooli", "total": "9", "state": "posted"},
    }
    assert run("a | sum_of Invoice account_id total", {"a": "Account/acme"}, lookup=lookup) == (
        Decimal("1250.30")
    )
    posted = "a | sum_of Invoice account_id total state posted"
    assert run(posted, {"a": "Account/acme"}, lookup=lookup) == Decimal("1000.10")
    either = 'a | sum_of Invoice account_id total state ["posted", "paid"]'
    assert run(either, {"a": "Account/acme"}, lookup=lookup) == Decimal("1250.30")
    lookup.entities["Invoice/6"] = {"account_id": "Account/acme", "total": True}
    with pytest.raises(
        MappingError,
        match=r"Invoice\.total of a referencing entity: cannot convert True \(bool\) to a decimal",
    ):
        run("a | sum_of Invoice account_id total", {"a": "Account/acme"}, lookup=lookup)
    del lookup.entities["Invoice/6"]
    lookup.entities["Invoice/5"] = {"account_id": "Account/acme", "total": "n/a"}
    with pytest.raises(
        MappingError,
        match=r"Invoice\.total of a referencing entity: cannot convert 'n/a' \(str\) to a decimal",
    ):
        run("a | sum_of Invoice account_id total", {"a": "Account/acme"}, lookup=lookup)


def test_target_key_of_one_object_when_a_system_holds_several_records_of_the_entity() -> None:
    lookup = FakeLookup(keys={("crm", "Account/5"): "1", ("crm/parties", "Account/5"): "5"})
    assert run("a | target_key crm", {"a": "Account/5"}, lookup=lookup) == "1"
    assert run("a | target_key crm parties", {"a": "Account/5"}, lookup=lookup) == "5"
    with pytest.raises(MappingError, match="crm/notes has no record for Account/5 yet"):
        run("a | target_key crm notes", {"a": "Account/5"}, lookup=lookup)


def test_every_step_is_documented_in_the_mapping_guide() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "mappings.md").read_text()
    named = set()
    for line in guide.splitlines():
        if line.startswith("| `"):  # a row of a steps table: `name ARGS`, `name2 ARGS` | ...
            named |= {cell.split()[0] for cell in line.split("|")[1].split("`")[1::2]}
    assert set(STEPS) - named == set()


def test_both_set_is_two_conditions_in_one() -> None:
    assert run("a | both_set {b}", {"a": "x", "b": 1}) is True
    assert run("a | both_set {b}", {"a": "x", "b": None}) is False
    assert run("a | both_set {b}", {"a": "", "b": "y"}) is False
    assert run("a | both_set {b}", {"a": None, "b": "y"}) is False
