"""The TimeTagger client on the kit's HTTP client, with httpx.MockTransport (no server): every
call is retried (all are safe to repeat), a long Retry-After is the caller's, and the
`rate_limit` option reaches the client."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from connectors.timetagger import TimeTaggerConnector
from connectors.timetagger.client import TimeTaggerClient, TimeTaggerUnavailable

TOKEN = "tt-token-0123456789"
EMPTY = {"server_time": 5.0, "reset": False, "records": [], "settings": []}


def scripted(*answers: httpx.Response | Exception) -> tuple[TimeTaggerClient, list[str]]:
    queue, sent = list(answers), []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        if not queue:
            if request.method == "PUT":
                return httpx.Response(200, json={"accepted": ["a"], "failed": [], "errors": []})
            return httpx.Response(200, json=EMPTY)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = TimeTaggerClient(
        "http://tt.test/timetagger", TOKEN, backoff=0.0, transport=httpx.MockTransport(handler)
    )
    return client, sent


def test_a_503_then_a_timeout_then_success_is_one_answer() -> None:
    client, sent = scripted(httpx.Response(503), httpx.ReadTimeout("slow"))
    assert client.updates(0).server_time == 5.0 and sent == ["GET"] * 3


def test_a_put_is_retried_too_after_a_short_retry_after() -> None:
    client, sent = scripted(httpx.Response(429, headers={"Retry-After": "0"}))
    result = client.put_records([{"key": "a", "t1": 1, "t2": 2, "ds": "", "mt": 3}])
    assert result.accepted == ["a"] and sent == ["PUT", "PUT"]


def test_a_long_retry_after_is_handed_to_the_caller_at_once() -> None:
    client, sent = scripted(httpx.Response(503, headers={"Retry-After": "60"}, text=TOKEN))
    with pytest.raises(TimeTaggerUnavailable) as info:
        client.settings()
    assert (info.value.status, info.value.retry_after, sent) == (503, 60.0, ["GET"])
    assert TOKEN not in str(info.value) and "with 503: ***" in str(info.value)


def test_the_rate_limit_option_reaches_the_client(tmp_path: Path) -> None:
    options = {"url": "http://tt.test/timetagger", "token": TOKEN, "rate_limit": 4}
    client = TimeTaggerConnector("tracker", options, tmp_path).client()
    assert client._http.rate is not None and client._http.rate.rate == 4.0
    assert (
        TimeTaggerConnector("t", {**options, "rate_limit": None}, tmp_path).client()._http.rate
        is None
    )
