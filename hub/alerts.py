"""Alerts: an objective that turns at risk or breached, or recovers, is recorded once as an
AlertRaised event (stream `alert/<objective>`) and then sent to the log and to the webhook.

Sending is the outbound pattern: the event first (appended at the objective's next stream
version, so two processes cannot record one change twice), then the POST, then an
AlertDelivered event. An alert recorded and not yet delivered is sent again on the next pass
(after a crash, say) with the **same** `X-Synchub-Alert-Id`: a receiver that remembers the
ids it has seen gets each alert once. The body is JSON; `X-Synchub-Signature: sha256=<hex>`
is the HMAC-SHA256 of the body with `alerts.secret`, and `X-Synchub-Timestamp` the time it
was signed (so a receiver can refuse replays). Attempts back off exponentially with jitter
within a pass; after `max_attempts` the delivery is recorded as failed (the log says why).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from hub.config import AlertSettings
from hub.crashpoints import crashpoint
from hub.ingest import now_micros
from hub.schemas import hub_schema
from hub.slo import MET
from hub.store.base import EventStore
from hub.store.streams import EventType, alert_stream

__all__ = ["Alerts", "sign"]

log = logging.getLogger("synchub.alerts")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 over `timestamp.body`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class Alerts:
    """Records objective changes and delivers them (see the module docstring)."""

    def __init__(
        self,
        store: EventStore,
        settings: AlertSettings,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.settings = settings
        self.client = client or httpx.Client(timeout=settings.timeout)
        self.sleep = sleep
        self._raised = hub_schema("alert_raised")
        self._delivered = hub_schema("alert_delivered")
        store.codec.add(self._raised)
        store.codec.add(self._delivered)

    def close(self) -> None:
        self.client.close()

    def last_states(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Per objective: its last alert (state, at, version, delivered) — none: never raised."""
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            for e in self.store.read_stream(alert_stream(name)):
                d: Any = self.store.decode(e)
                if e.type == EventType.ALERT_RAISED:
                    out[name] = {**d, "version": e.version, "delivery": None}
                elif name in out and d["alert_version"] == out[name]["version"]:
                    out[name]["delivery"] = d["status"]
        return out

    def observe(self, states: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Record an AlertRaised for each objective whose state differs from its last alert's
        (met when it never had one); return the alerts recorded."""
        last = self.last_states([s["name"] for s in states])
        raised = []
        for s in states:
            before = last.get(s["name"], {}).get("state", MET)
            if s["state"] == before:
                continue
            payload = {
                "objective": s["name"],
                "kind": s["kind"],
                "state": s["state"],
                "previous": before,
                "reason": s["reason"],
                "records": list(s["records"]),
                "time_left_s": s["time_left_s"],
                "at": now_micros(),
            }
            event = self.store.codec.encode(self._raised, payload)
            version = self.store.append_next(alert_stream(s["name"]), EventType.ALERT_RAISED, event)
            log.warning(
                "objective %s: %s → %s%s",
                s["name"],
                before,
                s["state"],
                f": {s['reason']}" if s["reason"] else "",
            )
            raised.append({**payload, "version": version})
        return raised

    def deliver(self, names: list[str]) -> int:
        """Send every alert recorded and not delivered yet; return how many were delivered."""
        url, secret = self.settings.resolved()
        if not url:
            return 0
        delivered = 0
        for name, alert in self.last_states(names).items():
            if alert["delivery"] is not None:
                continue
            status, attempts, detail = self._send(url, secret or "", name, alert)
            crashpoint("alerts.after_post")
            payload = {
                "alert_version": alert["version"],
                "status": status,
                "attempts": attempts,
                "detail": detail,
                "at": now_micros(),
            }
            self.store.append_next(
                alert_stream(name),
                EventType.ALERT_DELIVERED,
                self.store.codec.encode(self._delivered, payload),
            )
            delivered += status == "delivered"
        return delivered

    def _send(
        self, url: str, secret: str, name: str, alert: dict[str, Any]
    ) -> tuple[str, int, str]:
        body = json.dumps(
            {
                "id": f"{name}:{alert['version']}",
                "objective": name,
                "kind": alert["kind"],
                "state": alert["state"],
                "previous": alert["previous"],
                "reason": alert["reason"],
                "records": alert["records"],
                "time_left_s": alert["time_left_s"],
                "at": alert["at"].isoformat(),
            },
            sort_keys=True,
        ).encode()
        detail = ""
        for attempt in range(1, self.settings.max_attempts + 1):
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Synchub-Alert-Id": f"{name}:{alert['version']}",
                "X-Synchub-Timestamp": stamp,
                "X-Synchub-Signature": sign(secret, stamp, body),
            }
            try:
                answer = self.client.post(url, content=body, headers=headers)
                detail = f"HTTP {answer.status_code}"
                if answer.is_success:
                    return "delivered", attempt, detail
            except httpx.HTTPError as exc:
                detail = f"{type(exc).__name__}: {exc}"
            log.warning(
                "alert %s:%s not delivered (attempt %d): %s",
                name,
                alert["version"],
                attempt,
                detail,
            )
            if attempt < self.settings.max_attempts:
                delay = self.settings.base_delay * 2 ** (attempt - 1)
                self.sleep(delay * (0.5 + random.random() / 2))
        return "failed", self.settings.max_attempts, detail
