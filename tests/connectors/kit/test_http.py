"""The kit's HTTP client, with faults injected through httpx.MockTransport: retries with
full-jitter backoff, Retry-After (seconds or an HTTP date), giving up, non-idempotent requests
sent once, the rate limit, timeouts and secret redaction. Waits are recorded, not slept."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from connectors._kit.http import (
    HttpClient,
    NoAnswer,
    RateLimit,
    Redactor,
    RetryPolicy,
    parse_retry_after,
)
from hub.spi import ConnectorError

Answer = httpx.Response | Exception


class Script:
    """A MockTransport handler answering from a list, then 200 "ok"; records every request."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            return httpx.Response(200, text="ok")
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Ceiling(random.Random):
    """Draws the upper bound of every uniform(a, b): the backoff's ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def client(
    script: Callable[[httpx.Request], httpx.Response],
    waits: list[float],
    **kwargs: object,
) -> HttpClient:
    options: dict[str, object] = {"retry": RetryPolicy(attempts=3, backoff=0.2)}
    options.update(kwargs)
    return HttpClient(
        "http://api.test/v2/",
        transport=httpx.MockTransport(script),
        sleep=waits.append,
        **options,  # type: ignore[arg-type]
    )


def busy(status: int = 503, retry_after: str | None = None) -> httpx.Response:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return httpx.Response(status, headers=headers, text="busy")


def test_a_429_with_retry_after_waits_what_the_server_said_then_succeeds() -> None:
    script, waits = Script(busy(429, "2")), []
    response = client(script, waits).request("GET", "items")
    assert (response.status_code, response.text) == (200, "ok")
    assert waits == [2.0] and len(script.requests) == 2
    assert script.requests[0].url == script.requests[1].url == "http://api.test/v2/items"


def test_a_retry_after_given_as_an_http_date_is_waited_for() -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
    script, waits = Script(busy(503, email.utils.format_datetime(when, usegmt=True))), []
    assert client(script, waits).request("GET", "items").status_code == 200
    (wait,) = waits
    assert 2.0 <= wait <= 4.0  # HTTP dates have whole seconds


def test_a_503_then_success_backs_off_with_full_jitter() -> None:
    script, waits = Script(busy(), busy()), []
    response = client(script, waits, rng=random.Random(7)).request("GET", "items")
    assert response.status_code == 200 and len(script.requests) == 3
    assert len(waits) == 2 and 0 <= waits[0] <= 0.2 and 0 <= waits[1] <= 0.4
    assert len(set(waits)) == 2  # drawn, not fixed


def test_the_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(attempts=8, backoff=0.5, max_backoff=3.0)
    script, waits = Script(*[busy() for _ in range(7)]), []
    assert client(script, waits, retry=policy, rng=Ceiling()).request("GET", "x").is_success
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0]


def test_it_gives_up_after_n_attempts_and_answers_the_last_response() -> None:
    script, waits = Script(*[busy(502) for _ in range(5)]), []
    response = client(script, waits).request("GET", "items")
    assert response.status_code == 502 and response.text == "busy"
    assert len(script.requests) == 3 and len(waits) == 2


def test_a_retry_after_longer_than_max_wait_is_handed_back_at_once() -> None:
    script, waits = Script(busy(503, "30"), busy(429, "6")), []
    c = client(script, waits, retry=RetryPolicy(max_wait=5.0))
    first = c.request("GET", "items")
    assert first.status_code == 503 and parse_retry_after(first.headers["Retry-After"]) == 30.0
    assert c.request("GET", "items").status_code == 429
    assert waits == [] and len(script.requests) == 2


def test_other_statuses_are_answered_as_they_are() -> None:
    for status in (200, 400, 401, 404, 500):
        script, waits = Script(httpx.Response(status)), []
        assert client(script, waits).request("GET", "x").status_code == status
        assert len(script.requests) == 1 and waits == []


def test_timeouts_are_retried_then_succeed() -> None:
    script, waits = Script(httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow")), []
    assert client(script, waits).request("GET", "items").status_code == 200
    assert len(script.requests) == 3 and len(waits) == 2


def test_no_answer_after_n_attempts_raises_no_answer() -> None:
    script = Script(*[httpx.ReadTimeout("the server is slow") for _ in range(5)])
    waits: list[float] = []
    with pytest.raises(NoAnswer) as info:
        client(script, waits).request("GET", "items")
    e = info.value
    assert isinstance(e, ConnectorError)
    assert (e.attempts, e.cause, e.detail, e.timed_out) == (
        3,
        "ReadTimeout",
        "the server is slow",
        True,
    )
    assert str(e) == (
        "GET http://api.test/v2/items: ReadTimeout: the server is slow (after 3 attempts)"
    )
    assert len(script.requests) == 3 and len(waits) == 2


def test_a_refused_connection_is_not_a_timeout() -> None:
    script, waits = Script(*[httpx.ConnectError("refused") for _ in range(3)]), []
    with pytest.raises(NoAnswer) as info:
        client(script, waits).request("GET", "items")
    assert (info.value.cause, info.value.timed_out, info.value.attempts) == (
        "ConnectError",
        False,
        3,
    )


def test_a_transport_error_that_would_repeat_is_not_retried() -> None:
    script, waits = Script(httpx.UnsupportedProtocol("no such scheme")), []
    with pytest.raises(NoAnswer) as info:
        client(script, waits).request("GET", "items")
    assert info.value.attempts == 1 and len(script.requests) == 1 and waits == []


@pytest.mark.parametrize(
    "answer",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("lost"), busy(503), busy(429, "1")],
    ids=["connect", "timeout", "503", "429"],
)
def test_a_request_that_is_not_idempotent_is_sent_once(answer: Answer) -> None:
    script, waits = Script(answer), []
    c = client(script, waits)
    if isinstance(answer, Exception):
        with pytest.raises(NoAnswer) as info:
            c.request("POST", "items", json={"a": 1}, idempotent=False)
        assert info.value.attempts == 1 and "after" not in str(info.value)
    else:
        response = c.request("POST", "items", json={"a": 1}, idempotent=False)
        assert response.status_code == answer.status_code
    assert len(script.requests) == 1 and waits == []


def test_a_retried_request_sends_the_same_body() -> None:
    script, waits = Script(busy()), []
    client(script, waits).request("PUT", "items", json=[{"key": "a"}])
    assert [r.content for r in script.requests] == [b'[{"key":"a"}]'] * 2


def test_the_timeout_is_given_to_every_request() -> None:
    script = Script()
    HttpClient("http://api.test/", timeout=1.5, transport=httpx.MockTransport(script)).request(
        "GET", "x"
    )
    assert script.requests[0].extensions["timeout"] == {
        "connect": 1.5,
        "read": 1.5,
        "write": 1.5,
        "pool": 1.5,
    }


# -- rate limit ------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = RateLimit(4, burst=2, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits == [0.0, 0.0, 0.25, 0.25, 0.25]
    clock.now += 10  # idle: the bucket refills, but only up to the burst
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.25]


def test_every_attempt_takes_a_token() -> None:
    clock, script = FakeClock(), Script(busy(503, "0"))
    c = HttpClient(
        "http://api.test/",
        transport=httpx.MockTransport(script),
        rate=RateLimit(2, clock=clock, sleep=clock.sleep),
        sleep=clock.sleep,
    )
    c.request("GET", "a")  # 503, retried at once (Retry-After: 0): the retry waits its token
    c.request("GET", "b")
    assert len(script.requests) == 3 and clock.slept == [0.0, 0.5, 0.5]


def test_the_rate_limit_holds_across_threads() -> None:
    bucket = RateLimit(50, burst=1)
    start = time.monotonic()

    def take() -> None:
        for _ in range(3):
            bucket.acquire()

    threads = [threading.Thread(target=take) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert time.monotonic() - start >= 8 / 50 - 0.01  # 9 tokens: the first is free


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        RateLimit(0)
    with pytest.raises(ValueError, match="burst"):
        RateLimit(1, burst=0)
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


# -- redaction -------------------------------------------------------------------------------


TOKEN = "tok-3f9a1c77e2"
PASSWORD = "pa55-w0rd!"


def test_secrets_never_show_in_messages_logs_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="connectors._kit.http")
    script = Script(
        busy(503, "0"),
        *[httpx.ConnectError(f"cannot connect to http://bob:{PASSWORD}@db.test/ ({TOKEN})")] * 3,
    )
    c = HttpClient(
        f"https://bob:{PASSWORD}@api.test/v2/",
        headers={"authtoken": TOKEN},
        secrets=[TOKEN],
        transport=httpx.MockTransport(script),
        sleep=lambda _: None,
        retry=RetryPolicy(attempts=4),
    )
    with pytest.raises(NoAnswer) as info:
        c.request("GET", "updates", params={"token": TOKEN})
    assert script.requests[0].headers["authtoken"] == TOKEN  # sent, only never shown
    texts = [str(info.value), info.value.detail, repr(c)] + [r.getMessage() for r in caplog.records]
    assert len(caplog.records) == 4  # three retries and the give-up
    for text in texts:
        assert TOKEN not in text and PASSWORD not in text and "bob:" not in text, text
    assert str(info.value) == (
        "GET https://***@api.test/v2/updates?token=***: ConnectError: cannot connect to "
        "http://***@db.test/ (***) (after 4 attempts)"
    )


def test_a_secret_added_later_is_redacted_too() -> None:
    session = "c2Vzc2lvbi10b2tlbg=="
    script = Script(httpx.ConnectError(f"rejected session {session}"))
    c = HttpClient("http://h.test/", transport=httpx.MockTransport(script))
    c.add_secret(session)
    with pytest.raises(NoAnswer) as info:
        c.request("POST", "rpc", idempotent=False)
    assert session not in str(info.value) and "rejected session ***" in str(info.value)


def test_the_redactor() -> None:
    redact = Redactor(["abc", "abcdef", ""])
    assert redact("abcdef abc xabcx") == "*** *** x***x"  # the longer secret whole
    assert redact("see https://u:p@h.test/x and ftp://anon@f.test") == (
        "see https://***@h.test/x and ftp://***@f.test"
    )
    assert redact("mail bob@example.com") == "mail bob@example.com"  # not a URL
    assert Redactor()("nothing to hide") == "nothing to hide"


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0 and parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412500.0) == 0.0
