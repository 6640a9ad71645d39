"""What deploying a candidate mapping would change: canonical fields, and target records.

Both compare the live tables with scratch tables that a replay under the candidate filled (see
runner.Projector.dry_run). Rows are read in canonical-id order, so the output is deterministic.
"""

from __future__ import annotations

from typing import Any

from hub.errors import MappingError
from hub.mapping import Lookup, Mapping
from hub.store.base import Cursor
from hub.values import to_json
from projections.canonical_queries import State, live_states


def canonical_diff(c: Cursor, live: str, scratch: str) -> list[dict[str, Any]]:
    """Field-level differences between two canonical tables, in canonical-id order."""
    before, after = live_states(c, table=live), live_states(c, table=scratch)
    out = []
    for cid in sorted(before.keys() | after.keys()):
        old_fields = before[cid][2] if cid in before else None
        new_fields = after[cid][2] if cid in after else None
        if old_fields == new_fields:
            continue
        change = "added" if old_fields is None else "removed" if new_fields is None else "changed"
        for field in sorted(set(old_fields or {}) | set(new_fields or {})):
            old = (old_fields or {}).get(field)
            new = (new_fields or {}).get(field)
            if change != "changed" or old != new:
                out.append(
                    {"canonical_id": cid, "field": field, "old": old, "new": new, "change": change}
                )
    return out


class _Refused:
    """A target record the rule would not write: its checks fail, or it cannot be computed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Refused)

    __hash__ = None  # type: ignore[assignment]


def _desired(
    mapping: Mapping | None, system: str, obj: str, state: State | None, lookup: Lookup
) -> dict[str, Any] | _Refused | None:
    """What `mapping` has target system/obj hold for one entity: its fields, None (no record),
    or _Refused (the entity goes there but may not be written yet)."""
    if mapping is None or state is None:
        return None
    entity, natural_id, fields = state
    rule = next(
        (r for r in mapping.outbound(entity) if (r.system, r.object) == (system, obj)), None
    )
    if rule is None:
        return None
    try:
        fields = dict(rule.extended(fields, natural_id, lookup))
        if not rule.wants(fields, lookup, natural_id):
            return None
        refusals = rule.refusals(fields, natural_id, lookup)
        if refusals:
            return _Refused("not satisfied: " + "; ".join(refusals))
        return dict(to_json(rule.apply(fields, natural_id, lookup)))
    except MappingError as e:
        return _Refused(str(e))


def target_writes(
    c: Cursor,
    live: tuple[str, Mapping | None, Lookup],
    scratch: tuple[str, Mapping | None, Lookup],
) -> list[dict[str, Any]]:
    """The target records whose desired state differs between the live canonical table under
    the deployed mapping and the scratch one under the candidate: `op` create, update, delete
    or refused (the candidate's checks or rule would keep it from being written), with the
    fields that differ as [now, would be]. Each (table, mapping, lookup) gives a side; `lookup`
    answers the mapping's link and field lookups over that side's tables."""
    (live_table, current, live_lookup), (scratch_table, candidate, scratch_lookup) = live, scratch
    before, after = live_states(c, table=live_table), live_states(c, table=scratch_table)
    out = []
    for cid in sorted(before.keys() | after.keys()):
        entity = (before.get(cid) or after[cid])[0]
        targets = sorted(
            {(r.system, r.object) for m in (current, candidate) if m for r in m.outbound(entity)}
        )
        for system, obj in targets:
            now = _desired(current, system, obj, before.get(cid), live_lookup)
            then = _desired(candidate, system, obj, after.get(cid), scratch_lookup)
            if now == then or (then is None and isinstance(now, _Refused)):
                continue
            entry: dict[str, Any] = {"target": system, "object": obj, "canonical_id": cid}
            if isinstance(then, _Refused):
                entry.update(op="refused", fields={}, reason=then.reason)
            else:
                old = now if isinstance(now, dict) else {}
                new = then or {}
                entry["op"] = "delete" if then is None else "create" if not old else "update"
                entry["fields"] = {
                    f: [old.get(f), new.get(f)]
                    for f in sorted(old.keys() | new.keys())
                    if old.get(f) != new.get(f)
                }
            out.append(entry)
    return out
