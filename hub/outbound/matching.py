"""Matching before a create: an entity about to be created in a target may already be there
(a customer the ERP has had for years). A target rule's `match` lists rules, each a list of
target fields; before creating, the planner looks among the target object's captured records
(the target is also a source) for records equal to the desired record on every field of a
rule, rule after rule:

- exactly one record, linked to no other entity → it is adopted: the create becomes an
  update of that record (possibly an empty one: the link is what matters);
- several records, or records that already stand for another entity → a `plan` exception
  naming them: synchub never guesses;
- none → the next rule; after the last, a create.

Values are compared normalised (`normalised`): text case-folded, accents kept, punctuation
dropped, whitespace collapsed ("ACME  Corp." = "acme corp", "Globex S.A." = "globex sa",
"DE-136.695" = "de136695"); numbers as text. A rule whose
desired value is missing or empty on one of its fields is skipped (nothing to match on).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.spi import ReadsBack
from hub.store.base import Cursor
from projections import links, source_records

__all__ = ["Match", "Matcher", "normalised"]

_PUNCTUATION = re.compile(r"[^\w\s]")


def normalised(value: Any) -> str | None:
    """A value as matching compares it (None: nothing to match on)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    text = " ".join(_PUNCTUATION.sub("", text).split())
    return text or None


@dataclass(frozen=True)
class Match:
    """What the match rules found for one desired record."""

    adopt: str | None = None
    """The key of the one record to adopt."""
    rule: tuple[str, ...] = ()
    """The rule that decided (empty: no rule matched anything)."""
    ambiguous: tuple[str, ...] = ()
    """Several records matched: their keys (nothing adopted)."""
    taken: Mapping[str, str] = field(default_factory=dict)
    """Matching records that stand for other entities: key → canonical id."""

    @property
    def problem(self) -> bool:
        return bool(self.ambiguous or self.taken)


class Matcher:
    """Indexes the captured records of target objects (once per planning pass) to find the
    records a create would duplicate."""

    def __init__(self, c: Cursor, readers: Mapping[str, ReadsBack]) -> None:
        self.c = c
        self.readers = readers
        self._records: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}

    def find(
        self,
        target: str,
        obj: str,
        rules: Sequence[Sequence[str]],
        desired: Mapping[str, Any],
        cid: str,
    ) -> Match:
        """The record of target/obj that `desired` (for entity `cid`) matches (see module)."""
        for rule in rules:
            wanted = [normalised(desired.get(f)) for f in rule]
            if any(v is None for v in wanted):
                continue
            keys = [
                key
                for key, fields in self._captured(target, obj)
                if [normalised(fields.get(f)) for f in rule] == wanted
            ]
            if not keys:
                continue
            taken = {}
            for key in keys:
                owner = links.linked(self.c, target, obj, key)
                if owner is not None and owner != cid:
                    taken[key] = owner
            free = [k for k in keys if k not in taken]
            if len(free) == 1 and not taken:
                return Match(adopt=free[0], rule=tuple(rule))
            return Match(
                rule=tuple(rule), ambiguous=tuple(free) if len(free) > 1 else (), taken=taken
            )
        return Match()

    def _captured(self, target: str, obj: str) -> list[tuple[str, dict[str, Any]]]:
        """(key, fields in the target's write terms) of every live captured record."""
        found = self._records.get((target, obj))
        if found is None:
            reader = self.readers.get(target)
            found = []
            for rec in source_records.live_of(self.c, target, obj):
                if rec.record is None:
                    continue
                fields = reader.read_back(obj, rec.record) if reader is not None else None
                found.append((rec.key, dict(fields if fields is not None else rec.record)))
            self._records[target, obj] = found
        return found


def describe(match: Match, entity: str, natural_id: str, target: str, obj: str) -> str:
    """Why a match stops a create, and what a person can do."""
    on = " and ".join(match.rule)
    parts = []
    if match.ambiguous:
        parts.append(f"records {', '.join(match.ambiguous)} all match it")
    if match.taken:
        parts.append(
            ", ".join(
                f"record {k} matches it but is {cid} already" for k, cid in match.taken.items()
            )
        )
    return (
        f"{entity} {natural_id} matches existing {target}/{obj} records on {on}: "
        f"{'; '.join(parts)}. synchub does not guess: merge the duplicates in {target}, make "
        "them differ on those fields, or add a more specific match rule before this one; it "
        "is re-checked on every pass"
    )
