"""The read side for BI tools: SQL views over the projections, on PostgreSQL, that a BI tool or
a psql user queries without decoding JSON (docs/postgresql.md lists them).

- `canonical_<entity>` (snake case: `canonical_time_entry`): one row per live record, one
  column per canonical field in its SQL type (text, boolean, bigint, double precision,
  numeric(p, s), date, timestamptz; nested values as jsonb), then `canonical_id`,
  `mapping_version` and `last_position`.
- `audit`: every field-level change (old/new as jsonb, times as timestamptz).
- `exceptions`: every exception (details as jsonb, `open` as a boolean).
- `indicators`: what SQL can tell at once: open exceptions per kind and approved time waiting
  to be posted per project (`synchub indicators` has them all, valued in currency).

The views are made (and remade, when the canonical schemas change) by `refresh`, each with
the comment `synchub …` so that a rebuild keeps them (Database.views_kept) and a refresh
drops only its own. Read roles (`synchub migrate --grant-read ROLE`) are granted SELECT on
every view each time.
"""

from __future__ import annotations

import re
from typing import Any

from hub.canonical_schemas import CanonicalSchemas
from hub.store.base import Database

__all__ = ["ENTITY_VIEW_PREFIX", "refresh", "statements", "view_name"]

ENTITY_VIEW_PREFIX = "canonical_"


def view_name(entity: str) -> str:
    """`TimeEntry` → `canonical_time_entry`."""
    return ENTITY_VIEW_PREFIX + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", entity).lower()


def _sql_type(avro: Any) -> str | None:
    """The SQL type a canonical field's Avro type reads as (None: keep it as jsonb)."""
    if isinstance(avro, list):  # a union with null: the other branch
        others = [t for t in avro if t != "null"]
        return _sql_type(others[0]) if len(others) == 1 else None
    if isinstance(avro, dict):
        logical = avro.get("logicalType")
        if logical == "decimal":
            return f"numeric({avro.get('precision', 38)}, {avro.get('scale', 0)})"
        if logical == "date":
            return "date"
        if logical in ("timestamp-micros", "timestamp-millis"):
            return "timestamptz"
        if avro.get("type") == "enum":
            return "text"
        return None if avro.get("type") in ("array", "map", "record") else _sql_type(avro["type"])
    return {
        "string": "text",
        "boolean": "boolean",
        "int": "bigint",
        "long": "bigint",
        "float": "double precision",
        "double": "double precision",
    }.get(str(avro))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def statements(schemas: CanonicalSchemas) -> dict[str, str]:
    """View name → its SELECT, for the canonical entities of `schemas` and the fixed views."""
    views: dict[str, str] = {}
    for entity in schemas.entities():
        columns = []
        for field in schemas.schema(entity).parsed["fields"]:
            if field["name"] == "id":  # the record's own id: its natural id
                columns.append('c.natural_id AS "id"')
                continue
            value = f"(c.fields::jsonb -> {_literal(field['name'])})"
            kind = _sql_type(field["type"])
            text = f"(c.fields::jsonb ->> {_literal(field['name'])})"
            columns.append(
                f"{value if kind is None else f'{text}::{kind}'} AS {_quote(field['name'])}"
            )
        columns += [
            "c.canonical_id",
            "c.mapping_version",
            "c.position AS last_position",
        ]
        views[view_name(entity)] = (
            f"SELECT {', '.join(columns)} FROM p_canonical c"
            f" WHERE c.entity = {_literal(entity)} AND c.deleted = 0"
        )
    views["audit"] = (
        "SELECT a.position, a.seq, a.canonical_id, a.entity, a.op, a.old::jsonb AS old,"
        " a.new::jsonb AS new, a.system, a.object, a.source_key, a.mapping_version,"
        " to_timestamp(a.source_time / 1e6) AS source_time,"
        " to_timestamp(a.captured_at / 1e6) AS captured_at FROM p_audit a"
    )
    views["exceptions"] = (
        "SELECT e.id, e.kind, e.status, e.status = 'open' AS open, e.subject, e.entity,"
        " e.canonical_id, e.system, e.object, e.key, e.field, e.rule, e.mapping_version,"
        " e.message, e.fix, e.details::jsonb AS details, e.first_position, e.position,"
        " e.occurrences, e.resolution FROM p_exceptions e"
    )
    views["indicators"] = (
        "SELECT 'open_exceptions'::text AS indicator, e.kind AS subject,"
        " count(*)::numeric AS value, 'exceptions'::text AS unit"
        " FROM p_exceptions e WHERE e.status = 'open' GROUP BY e.kind"
        " UNION ALL SELECT 'approved_time_not_posted', coalesce(c.fields::jsonb ->> 'project_id',"
        " '(no project)'), round(sum((c.fields::jsonb ->> 'minutes')::numeric) / 60, 2), 'hours'"
        " FROM p_backlog_open b JOIN p_canonical c ON c.canonical_id = b.canonical_id"
        " GROUP BY 2"
    )
    return views


def refresh(db: Database, schemas: CanonicalSchemas) -> list[str]:
    """(Re)make every view for `schemas` in one transaction and grant SELECT on them to the
    database's read roles; returns the views' names. Nothing on a database without views
    (SQLite)."""
    if db.dialect.name != "postgresql":
        return []
    views = statements(schemas)
    roles = db.read_roles()
    with db.transaction(commit=True) as c:
        c.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'v'"
            " AND pg_table_is_visible(c.oid) AND obj_description(c.oid, 'pg_class') LIKE 'synchub%'"
        )
        for (old,) in c.fetchall():
            c.execute(f"DROP VIEW IF EXISTS {_quote(old)}")
        for name, select in views.items():
            c.execute(f"CREATE VIEW {_quote(name)} AS {select}")
            c.execute(f"COMMENT ON VIEW {_quote(name)} IS 'synchub read side (docs/postgresql.md)'")
            for role in roles:
                c.execute(f"GRANT SELECT ON {_quote(name)} TO {_quote(role)}")
    return list(views)
