"""What the hub watches after each pass when objectives are configured (`slos:`): the business
indicators, each objective's state (hub.slo), and the alerts of the ones that changed
(hub.alerts: recorded once, then sent)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub import indicators
from hub.alerts import Alerts
from hub.config import Settings
from hub.slo import evaluate
from hub.store.base import EventStore

__all__ = ["Watch"]


class Watch:
    """Indicators → objectives → alerts, for one store."""

    def __init__(self, store: EventStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.alerts = Alerts(store, settings.alerts) if settings.slos else None

    def close(self) -> None:
        if self.alerts is not None:
            self.alerts.close()

    def objectives(
        self, *, position: int | None = None, now: dt.datetime | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The indicators and the objectives' states, now (or as of `position`)."""
        data = indicators.indicators(
            self.store, self.settings.indicators, position=position, now=now
        )
        return data, evaluate(self.settings.slos, data)

    def after_pass(
        self, now: dt.datetime | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The indicators and states now; alerts recorded for the changes and sent."""
        data, states = self.objectives(now=now)
        if self.alerts is not None:
            self.alerts.observe(states)
            self.alerts.deliver([o.name for o in self.settings.slos])
        return data, states
