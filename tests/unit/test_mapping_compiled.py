"""Compiled inbound rules (hub.mapping.compiled) give exactly the interpreter's results and errors.

For every inbound rule of the mappings the suite uses (tests' DOC and MAPPINGs, demo/mapping.yaml,
bench/_common.MAPPING_SPEC, the variants tests derive from them) and of a mapping that uses every
step, hypothesis draws records of mixed values (text with well- and ill-formed tags, numbers as
text, None, bools, ints, floats, Decimals, dates, lists, dicts, a str subclass) and compares
`apply`, `natural_id` and `is_delete` with their `*_interpreted` twins: the same value (types
kept, floats bit for bit) or the same error (class, message, field, rule, value, missing).
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import demo
from bench._common import MAPPING_SPEC, time_entry_batches
from hub.mapping import InboundRule, MappedRecord, Mapping, load_mapping
from hub.mapping.compiled import compile_inbound
from hub.schemas import canonical_entities
from tests.integration.conftest import MAPPING as INTEGRATION_MAPPING
from tests.unit.test_flow import MAPPING as FLOW_MAPPING
from tests.unit.test_mapping import DOC, EXAMPLES

# -- the mappings ----------------------------------------------------------------------------


def every_step_mapping() -> dict[str, Any]:
    """One rule per way of starting a pipeline, and a field per step (and some chains)."""
    fields = {f"s_{name}": f"a | {example}" for name, example in EXAMPLES.items()}
    fields.update(
        {
            "from_b": "b | str | lower | strip | upper",
            "dotted": "c.d | default 'none'",
            "indexed": "c.items.1 | str",
            "template": "{a}-{b}/{$key}:{$system}.{$object}",
            "braces": "'{{x}}' | upper",
            "const_dict": '{"k": [1, 2]}',
            "const_text": "'text' | lower",
            "const_null": 'null | default {"k": 1}',
            "number": "3.5 | round 0",
            "key": "$key | canonical Task",
            "negative_path": "a | tag_path -1",
            "map_default": 'a | map {"x": [1], "y": {"z": 2}} {"other": true}',
            "map_plain": 'b | map {"1": "one", "true": "yes"} null',
            "date_format": "a | date %d.%m.%Y",
            "chain": "a | strip_tags | slug | canonical Project",
            "money": "b | decimal 2 | mul 3 | div 7 | round 2",
            "checks": "b | int | gt 10 | not",
            "bounds": "b | decimal | le {a} | not",
            "minus_field": "b | minus {a}",
            "has": "c | has_tag Billable",
            "link_b": "b | link Person erp employees",
            "target": "b | canonical Person | target_key erp",
            "prefix": "a | tag_prefix 2 | canonical Project",
            "regex_named": "a | regex '#(?P<t>[a-z]+)' t",
        }
    )
    return {
        "name": "all-steps",
        "sources": [
            {
                "system": "s",
                "object": "o",
                "entity": "TimeEntry",
                "id": "$key",
                "fields": fields,
                "delete": "b | equals 'gone'",
            },
            {"system": "s", "object": "template_id", "entity": "Task", "id": "{a}/{b}"},
            {"system": "s", "object": "field_id", "entity": "Task", "id": "b", "delete": "c"},
            {
                "system": "s",
                "object": "link_id",
                "entity": "Person",
                "id": "a | link Person erp employees",
                "fields": {"name": "b | required"},
            },
        ],
    }


def variants_of_tests() -> list[dict[str, Any]]:
    """The changes tests make to the flow mapping."""
    out = []
    for change in (
        ("id", "te-{$key}"),
        ("person_id", "user | upper | canonical Person"),
        ("project_id", "text | regex '#([a-z]+)/' 1"),
        ("task_id", "text | regex '#[a-z]+/+([a-z]+)' 1"),
        ("description", "text | strip_tags | upper"),
    ):
        spec = copy.deepcopy(FLOW_MAPPING)
        if change[0] == "id":
            spec["sources"][0]["id"] = change[1]
        else:
            spec["sources"][0]["fields"][change[0]] = change[1]
        spec["sources"][0]["delete"] = "$key | equals t2"
        out.append(spec)
    return out


def mappings() -> list[tuple[str, Mapping]]:
    specs = [
        ("test_mapping.DOC", DOC),
        ("test_flow.MAPPING", FLOW_MAPPING),
        ("integration.MAPPING", INTEGRATION_MAPPING),
        ("bench.MAPPING_SPEC", MAPPING_SPEC),
        ("every_step", every_step_mapping()),
    ]
    specs += [(f"test variant {i}", spec) for i, spec in enumerate(variants_of_tests())]
    built = [(name, Mapping.from_dict(spec)) for name, spec in specs]
    demo_file = Path(demo.__file__).parent / "mapping.yaml"
    built.append(
        ("demo/mapping.yaml", load_mapping(demo_file, known_entities=canonical_entities()))
    )
    return built


RULES = [
    (f"{name}:{rule.system}/{rule.object}", rule)
    for name, mapping in mappings()
    for rule in mapping._inbound.values()
]


# -- records ---------------------------------------------------------------------------------


class Shouty(str):
    """A str subclass with its own str() and lower(): the compiled code must leave it to the
    interpreter."""

    def __str__(self) -> str:
        return "SHOUT"

    def lower(self) -> str:  # type: ignore[override]
        return "whisper"


TAGS = ["#acme/web/build", "#Billable", "#approved", "#bad//tag", "#x/", "C#", "#a/b/c/d", "#é/ü"]
WORDS = ["Kick-off", "planning", "  ", "", "42", "4.50", "2024-03-01", "01.02.2024", "yes", "gone"]


def texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(st.sampled_from(TAGS + WORDS), max_size=5).map(" ".join),
        st.text(max_size=20),
        st.sampled_from(WORDS),
    )


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        texts(),
        st.booleans(),
        st.integers(-1000, 1000),
        st.integers(),
        st.floats(),
        st.decimals(allow_nan=False, places=3),
        st.dates(),
        st.datetimes(timezones=st.sampled_from([None, dt.UTC])),
        texts().map(lambda t: ("shouty", t)),  # made a Shouty in records()
    )


def values() -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.sampled_from(["d", "items", "x", "0"]), inner, max_size=3),
        ),
        max_leaves=6,
    )


FIELDS = sorted(
    {
        name.split(".")[0]
        for _, rule in RULES
        for _, pipeline in [("id", rule.id), *rule.fields, ("delete", rule.delete)]
        if pipeline is not None
        for name in (pipeline.source_field, *pipeline.template_fields)
        if name is not None
    }
)


def records() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(FIELDS), values(), max_size=len(FIELDS)).map(shouty)


def shouty(value: Any) -> Any:
    """("shouty", text) markers as Shouty (hypothesis cannot hold str subclasses itself)."""
    if isinstance(value, tuple) and value[:1] == ("shouty",):
        return Shouty(value[1])
    if isinstance(value, dict):
        return {k: shouty(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shouty(v) for v in value]
    return value


class Lookup:
    """Deterministic answers: some keys are linked, some are not."""

    def canonical_id(self, entity: str, system: str, object: str, key: str) -> str | None:
        return f"{entity}/{key}" if len(key) % 2 == 0 else None

    def target_key(self, system: str, canonical_id: str) -> str | None:
        return f"{system}:{canonical_id}" if len(canonical_id) % 3 else None

    def canonical_field(self, canonical_id: str, field: str) -> Any:
        if len(canonical_id) % 2:
            return None
        fields = {"status": "open", "name": canonical_id}
        return fields if field == "*" else fields.get(field)

    def object_key(self, system: str, object: str, canonical_id: str) -> str | None:
        return f"{object}:{canonical_id}" if len(canonical_id) % 2 else None

    def referencing(
        self, entity: str, field: str, canonical_id: str
    ) -> list[tuple[str, dict[str, Any]]]:
        return [(f"{entity}/1", {field: canonical_id, "state": "won"})] * (len(canonical_id) % 3)


# -- comparing -------------------------------------------------------------------------------


def exact(value: Any) -> Any:
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, MappedRecord):
        return ("MappedRecord", value.entity, value.natural_id, exact(value.fields))
    if isinstance(value, dict):
        return ("dict", [(exact(k), exact(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, [exact(v) for v in value])
    if isinstance(value, decimal.Decimal):
        return ("Decimal", value.as_tuple())
    return (type(value).__name__, repr(value))


def outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", exact(fn(*args)))
    except Exception as exc:
        attrs = {k: exact(v) for k, v in sorted(vars(exc).items())}
        return ("error", type(exc).__name__, str(exc), attrs)


def same(rule: InboundRule, key: str, record: dict[str, Any]) -> None:
    lookup = Lookup()
    assert outcome(rule.apply, key, record, lookup) == outcome(
        rule.apply_interpreted, key, record, lookup
    )
    assert outcome(rule.natural_id, key, record, lookup) == outcome(
        rule.natural_id_interpreted, key, record, lookup
    )
    assert outcome(rule.is_delete, record, lookup, key) == outcome(
        rule.is_delete_interpreted, record, lookup, key
    )


# -- the properties --------------------------------------------------------------------------


@pytest.mark.parametrize("rule", [r for _, r in RULES], ids=[n for n, _ in RULES])
def test_every_rule_of_the_suites_mappings_compiles(rule: InboundRule) -> None:
    compiled = compile_inbound(rule)
    assert compiled is not None
    assert rule.compiled() is not None


@pytest.mark.parametrize("rule", [r for _, r in RULES], ids=[n for n, _ in RULES])
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.one_of(st.sampled_from(["te-1", "", "42", "t2"]), st.text(max_size=6)), data=st.data()
)
def test_compiled_equals_interpreted(rule: InboundRule, key: str, data: Any) -> None:
    record = data.draw(records())
    same(rule, key, record)


def test_the_bench_records_take_the_compiled_path() -> None:
    """Records like the benchmark's never need the interpreter (it would be slow, not wrong)."""
    rule = Mapping.from_dict(MAPPING_SPEC).inbound("tracker", "time_entries")
    assert rule is not None
    compiled = compile_inbound(rule)
    assert compiled is not None

    def interpreter_called(*args: Any) -> Any:
        raise AssertionError("fell back to the interpreter")

    compiled.apply.__globals__["_apply"] = interpreter_called
    for batch in time_entry_batches(500, 100):
        for change in batch.changes:
            record = dict(change.record or {})
            assert compiled.apply(change.key, record, Lookup()) == rule.apply_interpreted(
                change.key, record, Lookup()
            )


def test_a_step_the_compiler_does_not_know_keeps_the_rule_interpreted() -> None:
    from hub.mapping import steps

    rule = Mapping.from_dict(MAPPING_SPEC).inbound("tracker", "time_entries")
    assert rule is not None
    original = steps.STEPS["int"]
    try:
        steps.STEPS["int"] = steps.StepDef("int", lambda v, a, c: v, (), "patched")
        assert compile_inbound(rule) is None
    finally:
        steps.STEPS["int"] = original
    record = {"id": "1", "person": "p", "day": "2024-01-02", "minutes": "5", "description": None}
    same(rule, "k", record)


def test_errors_are_the_interpreters() -> None:
    (_, rule) = next((n, r) for n, r in RULES if n.startswith("test_mapping.DOC:tracker"))
    bad = {"duration": "1.5", "day": "2024-03-01", "user": 42, "description": "#a//b"}
    lookup = Lookup()
    with pytest.raises(Exception) as compiled_error:
        rule.apply("k", bad, lookup)
    with pytest.raises(Exception) as interpreted_error:
        rule.apply_interpreted("k", bad, lookup)
    assert type(compiled_error.value) is type(interpreted_error.value)
    assert str(compiled_error.value) == str(interpreted_error.value)
    assert "field minutes: step 'int'" in str(compiled_error.value)
