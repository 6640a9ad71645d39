"""The invoice cut-off: the moment by which a month's approved time must be in the ERP.

A cut-off is `days` working days (Monday to Friday) before the last working day of the month, at
a local time of day, in the legal entity's time zone: with the default (2 days, 17:00) the
cut-off of a month whose last working day is Friday the 28th is Wednesday the 26th at 17:00 in
the entity's zone. Public holidays are not known (a firm's calendar is a later addition).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.errors import ConfigError

__all__ = ["cutoff_of_month", "next_cutoff", "previous_cutoff", "zone"]


def zone(name: str | None) -> dt.tzinfo:
    """The time zone called `name` (None or empty: UTC); ConfigError for an unknown one."""
    if not name:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Paris or "
            "America/New_York in the legal entity's timezone field"
        ) from None


def _working_days_back(day: dt.date, days: int) -> dt.date:
    """The working day `days` working days before `day` (itself when 0; `day` is one)."""
    while days > 0:
        day -= dt.timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


def cutoff_of_month(year: int, month: int, days: int, at: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """The cut-off of `year`-`month` (aware, in `tz`)."""
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    last = first_next - dt.timedelta(days=1)
    while last.weekday() >= 5:
        last -= dt.timedelta(days=1)
    return dt.datetime.combine(_working_days_back(last, days), at, tzinfo=tz)


def next_cutoff(now: dt.datetime, days: int, at: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """The first cut-off at or after `now` (aware): this month's, or next month's once this
    month's has passed."""
    local = now.astimezone(tz)
    this = cutoff_of_month(local.year, local.month, days, at, tz)
    if this >= now:
        return this
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return cutoff_of_month(year, month, days, at, tz)


def previous_cutoff(now: dt.datetime, days: int, at: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """The last cut-off before `now` (aware): this month's once it has passed, else last
    month's."""
    local = now.astimezone(tz)
    this = cutoff_of_month(local.year, local.month, days, at, tz)
    if this < now:
        return this
    year, month = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
    return cutoff_of_month(year, month, days, at, tz)
