"""The Tryton client on the kit's HTTP client, with httpx.MockTransport (no server): reads are
retried, writes are sent once, and neither the password nor the session shows anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors._kit.http import RetryPolicy
from connectors.tryton import TrytonConnector
from connectors.tryton.client import TrytonClient, TrytonUnavailable

PASSWORD = "s3cret-Pw-42"
SESSION = "f00dfeedcafe1234"


class FakeTryton:
    """Answers login and preferences; each RPC method then answers from `faults` in turn."""

    def __init__(self, faults: dict[str, list[httpx.Response | Exception]]) -> None:
        self.faults = faults
        self.sent: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        method = json.loads(request.content)["method"]
        self.sent.append(method)
        queued = self.faults.get(method)
        if queued:
            fault = queued.pop(0)
            if isinstance(fault, Exception):
                raise fault
            return fault
        result: Any = {
            "common.db.login": [1, SESSION],
            "model.res.user.get_preferences": {"company": 1},
        }.get(method, [7])
        return httpx.Response(200, json={"id": 1, "result": result})


def client(fake: FakeTryton) -> TrytonClient:
    return TrytonClient(
        "http://erp.test",
        "erp",
        "admin",
        PASSWORD,
        retry=RetryPolicy(attempts=3, backoff=0.0),
        transport=httpx.MockTransport(fake),
    )


def test_a_read_is_retried_after_a_503_and_a_lost_answer() -> None:
    busy = httpx.Response(503, text="busy")
    fake = FakeTryton({"model.party.party.search": [busy, httpx.ReadTimeout("lost")]})
    c = client(fake)
    assert c.search("party.party", []) == [7]
    assert fake.sent.count("model.party.party.search") == 3
    assert c.calls["model.party.party.search"] == 1  # one call, three tries


@pytest.mark.parametrize(
    "fault",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("lost"), httpx.Response(503)],
    ids=["connect", "timeout", "503"],
)
def test_a_write_is_sent_once(fault: httpx.Response | Exception) -> None:
    fake = FakeTryton({"model.timesheet.line.create": [fault]})
    with pytest.raises(TrytonUnavailable):
        client(fake).create("timesheet.line", [{"duration": 1}])
    assert fake.sent.count("model.timesheet.line.create") == 1


def test_a_read_that_never_answers_says_how_often_it_was_tried() -> None:
    fake = FakeTryton({"model.party.party.read": [httpx.ConnectError("refused")] * 3})
    with pytest.raises(TrytonUnavailable) as info:
        client(fake).read("party.party", [1], ["name"])
    assert str(info.value) == (
        "cannot reach Tryton at http://erp.test/erp/rpc/ for model.party.party.read: "
        "ConnectError: refused (after 3 attempts)"
    )


def test_the_password_and_the_session_never_show() -> None:
    echo = f"bad session {SESSION} for password {PASSWORD}"
    fake = FakeTryton(
        {
            "model.party.party.write": [httpx.Response(500, text=echo)],
            "model.party.party.delete": [
                httpx.Response(200, json={"id": 1, "error": ["UserError", [echo, echo]]})
            ],
            "model.party.party.search": [httpx.ConnectError(echo)] * 3,
        }
    )
    c = client(fake)
    errors = []
    for call in (
        lambda: c.write("party.party", [1], {"name": "x"}),
        lambda: c.delete("party.party", [1]),
        lambda: c.search("party.party", []),
    ):
        with pytest.raises(Exception) as info:
            call()
        errors.append(str(info.value))
    for text in [*errors, repr(c)]:
        assert PASSWORD not in text and SESSION not in text, text
        assert "***" in text or text == repr(c)


def test_the_rate_limit_option_reaches_the_client(tmp_path: Path) -> None:
    options = {"url": "http://erp.test", "database": "erp", "password": PASSWORD}
    limited = TrytonConnector("erp", {**options, "rate_limit": 2.5}, tmp_path).client()
    assert limited._http.rate is not None and limited._http.rate.rate == 2.5
    assert TrytonConnector("erp", options, tmp_path).client()._http.rate is None
