"""AmcExecutionTrigger against a real loopback HTTP server (aiohttp TestServer; no aioresponses)."""

from __future__ import annotations

from airflow_env import amc_connection_env, apply_airflow_test_env

apply_airflow_test_env()

import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from collections.abc import AsyncIterator, Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from aiohttp import web  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402
from airflow.sdk.module_loading import import_string  # noqa: E402
from airflow.triggers.base import TriggerEvent  # noqa: E402

from airflow_provider_amc.triggers.amc import AmcExecutionTrigger, first_poll_wait  # noqa: E402

INSTANCE = "amctrig0001"
EXECUTION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
EXECUTION_PATH = f"/amc/reporting/{INSTANCE}/workflowExecutions/{EXECUTION_ID}"

#: One scripted answer: (HTTP status, body text, headers).
Answer = tuple[int, str, dict[str, str]]


def execution(status: str, **fields: Any) -> Answer:
    body = {"workflowExecutionId": EXECUTION_ID, "workflowId": "wf", "status": status, **fields}
    return 200, json.dumps(body), {"Content-Type": "application/vnd.amcworkflowexecutions.v1+json"}


def error(status: int, details: str, **headers: str) -> Answer:
    return (
        status,
        json.dumps({"code": str(status), "details": details}),
        {"Content-Type": "application/json", **headers},
    )


TRUNCATED: Answer = (200, '{"workflowExecutionId": "aaa', {"Content-Type": "application/json"})
THROTTLED: Answer = error(429, "Too many requests", **{"Retry-After": "0"})


@dataclass
class FakeAmc:
    """Serves scripted GET answers in order (the last one repeats) and records every request."""

    answers: list[Answer]
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    async def token(self, request: web.Request) -> web.Response:
        self.tokens.append(request.path)
        return web.json_response({"access_token": "Atza|trigger", "token_type": "bearer", "expires_in": 3600})

    async def get(self, request: web.Request) -> web.Response:
        self.requests.append(("GET", request.path, ""))
        status, body, headers = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return web.Response(status=status, text=body, headers=headers)

    async def cancel(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path, await request.text()))
        return web.json_response({}, status=200)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/auth/o2/token", self.token)
        app.router.add_get(EXECUTION_PATH, self.get)
        app.router.add_put(EXECUTION_PATH, self.cancel)
        return app

    @property
    def polls(self) -> int:
        return sum(1 for method, _, _ in self.requests if method == "GET")


ServeFn = Callable[..., Any]


@pytest.fixture
async def serve(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ServeFn]:
    """``await serve(*answers)`` starts a FakeAmc and points the ``amc_default`` connection at it."""
    servers: list[TestServer] = []

    async def start(*answers: Answer) -> FakeAmc:
        fake = FakeAmc(list(answers))
        server = TestServer(fake.app(), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        for name, value in amc_connection_env(
            str(server.make_url("")).rstrip("/"), instance_id=INSTANCE
        ).items():
            monkeypatch.setenv(name, value)
        return fake

    yield start
    for server in servers:
        await server.close()


def make_trigger(**kwargs: Any) -> AmcExecutionTrigger:
    kwargs.setdefault("poll_interval", 0.01)
    kwargs.setdefault("end_time", time.time() + 30)
    return AmcExecutionTrigger(execution_id=EXECUTION_ID, **kwargs)


async def events_of(trigger: AmcExecutionTrigger) -> list[TriggerEvent]:
    return [event async for event in trigger.run()]


# ---- serialisation ------------------------------------------------------------------------------
def test_serialize_round_trip() -> None:
    trigger = AmcExecutionTrigger(
        execution_id=EXECUTION_ID,
        amc_conn_id="amc_other",
        instance_id=INSTANCE,
        poll_interval=30,
        end_time=1_900_000_000.5,
        max_poll_interval=300,
        poll_backoff=1.5,
        max_consecutive_errors=7,
        cancel_on_kill=False,
        first_poll_delay=30,
    )
    path, kwargs = trigger.serialize()
    cls = import_string(path)
    assert cls is AmcExecutionTrigger
    assert cls(**kwargs).serialize() == (path, kwargs)
    assert kwargs["end_time"] == 1_900_000_000.5
    assert kwargs["max_consecutive_errors"] == 7
    json.dumps(kwargs)  # only JSON primitives: survives a triggerer restart


def test_serialized_kwargs_hold_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in amc_connection_env("http://127.0.0.1:1").items():
        monkeypatch.setenv(name, value)
    _, kwargs = make_trigger().serialize()
    text = json.dumps(kwargs)
    assert "secret" not in text
    assert "Atzr|" not in text


# ---- terminal statuses --------------------------------------------------------------------------
async def test_succeeded_after_polling_is_a_success_event(serve: ServeFn) -> None:
    fake = await serve(
        execution("PENDING"), execution("RUNNING"), execution("SUCCEEDED", outputS3URI="s3://b/k")
    )
    events = await events_of(make_trigger(instance_id=INSTANCE))
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "success"
    assert payload["execution_id"] == EXECUTION_ID
    assert payload["instance_id"] == INSTANCE
    assert payload["amc_status"] == "SUCCEEDED"
    assert payload["execution"]["outputS3URI"] == "s3://b/k"
    assert fake.polls == 3


async def test_first_poll_waits_for_first_poll_delay(serve: ServeFn) -> None:
    fake = await serve(execution("SUCCEEDED"))
    started = time.monotonic()
    events = await events_of(make_trigger(instance_id=INSTANCE, first_poll_delay=0.5))
    assert events[0].payload["status"] == "success"
    assert time.monotonic() - started >= 0.5  # never earlier than the delay (heartbeat race)
    assert fake.polls == 1


def test_first_poll_wait_spreads_over_one_more_delay() -> None:
    assert first_poll_wait(10.0, draw=lambda: 0.0) == 10.0
    assert first_poll_wait(10.0, draw=lambda: 0.999) == pytest.approx(19.99)
    # Triggers resumed together are spread over a whole interval, not bunched in part of it.
    waits = sorted(first_poll_wait(10.0) for _ in range(2000))
    assert waits[0] >= 10.0
    assert waits[-1] < 20.0
    assert waits[200] < 11.5 and waits[-200] > 18.5  # both ends of the interval are used


async def test_first_poll_delay_never_passes_the_deadline(serve: ServeFn) -> None:
    fake = await serve(execution("RUNNING"))
    started = time.monotonic()
    events = await events_of(make_trigger(first_poll_delay=60, end_time=time.time() + 0.3))
    assert events[0].payload["status"] == "timeout"
    assert time.monotonic() - started < 5
    assert fake.polls == 1


@pytest.mark.parametrize("amc_status", ["FAILED", "CANCELLED", "REJECTED"])
async def test_unsuccessful_end_is_a_failed_event_with_the_reason(serve: ServeFn, amc_status: str) -> None:
    reason = f"query {amc_status.lower()} because of reasons"
    await serve(execution("RUNNING"), execution(amc_status, statusReason=reason))
    (event,) = await events_of(make_trigger())
    assert event.payload["status"] == "failed"
    assert event.payload["amc_status"] == amc_status
    assert event.payload["status_reason"] == reason


@pytest.mark.parametrize(("amc_status", "expected"), [("succeeded", "success"), ("Cancelled", "failed")])
async def test_statuses_are_read_case_insensitively(serve: ServeFn, amc_status: str, expected: str) -> None:
    fake = await serve(execution("running"), execution(amc_status))
    (event,) = await events_of(make_trigger())
    assert event.payload["status"] == expected
    assert fake.polls == 2


async def test_unknown_status_keeps_polling(serve: ServeFn) -> None:
    fake = await serve(execution("VALIDATING"), execution("SUCCEEDED"))
    (event,) = await events_of(make_trigger())
    assert event.payload["status"] == "success"
    assert fake.polls == 2


async def test_deadline_is_a_timeout_event(serve: ServeFn) -> None:
    fake = await serve(execution("RUNNING"))
    started = time.monotonic()
    (event,) = await events_of(make_trigger(end_time=time.time() + 1.0, poll_interval=0.05))
    assert event.payload["status"] == "timeout"
    assert EXECUTION_ID in event.payload["message"]
    assert 0.95 <= time.monotonic() - started < 6
    assert fake.polls >= 2


async def test_past_deadline_times_out_after_one_poll(serve: ServeFn) -> None:
    fake = await serve(execution("PENDING"))
    (event,) = await events_of(make_trigger(end_time=time.time() - 1))
    assert event.payload["status"] == "timeout"
    assert fake.polls == 1


# ---- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "answer",
    [
        error(400, "Workflow execution with ID x does not exist."),
        error(404, "Resource not found"),
        error(403, "Unauthorized request."),
        error(400, "Invalid request"),
    ],
    ids=["400-not-found", "404", "403", "400-other"],
)
async def test_permanent_error_is_an_error_event_at_once(serve: ServeFn, answer: Answer) -> None:
    fake = await serve(answer)
    (event,) = await events_of(make_trigger(max_consecutive_errors=5))
    assert event.payload["status"] == "error"
    assert answer[0] and str(answer[0]) in event.payload["message"]
    assert fake.polls <= 2  # 401/403 may refresh the token once; never the 5 tolerated errors


async def test_transient_errors_are_tolerated_up_to_the_bound(serve: ServeFn) -> None:
    fake = await serve(
        TRUNCATED, TRUNCATED, execution("RUNNING"), TRUNCATED, TRUNCATED, execution("SUCCEEDED")
    )
    (event,) = await events_of(make_trigger(max_consecutive_errors=3))
    assert event.payload["status"] == "success"  # the counter restarts after a good answer
    assert fake.polls == 6


async def test_too_many_transient_errors_in_a_row_is_an_error_event(serve: ServeFn) -> None:
    fake = await serve(TRUNCATED)
    (event,) = await events_of(make_trigger(max_consecutive_errors=3))
    assert event.payload["status"] == "error"
    assert "AmcResponseError" in event.payload["message"]
    assert fake.polls == 3


async def test_throttling_is_transient(serve: ServeFn) -> None:
    # The client retries 429 itself (Retry-After: 0); five in a row reach the trigger as one error.
    fake = await serve(*[THROTTLED] * 5, execution("SUCCEEDED"))
    (event,) = await events_of(make_trigger(max_consecutive_errors=2))
    assert event.payload["status"] == "success"
    assert fake.polls == 6


async def test_a_long_retry_after_is_waited_before_the_next_poll(serve: ServeFn) -> None:
    """AMC asks for 600 s (longer than the client waits itself): the trigger's next poll comes no
    sooner than that (here: the deadline, 1.5 s away), not one 0.01 s poll interval later."""
    fake = await serve(error(429, "Too many requests", **{"Retry-After": "600"}), execution("SUCCEEDED"))
    started = time.monotonic()
    events = await events_of(make_trigger(end_time=time.time() + 1.5))
    assert fake.polls == 2  # the client did not retry the 429 itself
    assert time.monotonic() - started >= 1.2
    assert events[0].payload["status"] == "success"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_transient(
    serve: ServeFn, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    """A 5xx that outlives the client's own retries reaches the trigger, which polls again (a 5xx
    treated as permanent would fail a run that AMC completes a minute later)."""
    fake = await serve(
        error(status, "Internal error"), error(status, "Internal error"), execution("SUCCEEDED")
    )
    conn = json.loads(os.environ["AIRFLOW_CONN_AMC_DEFAULT"])
    conn["extra"]["max_attempts"] = 1  # each 5xx reaches the trigger at once
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", json.dumps(conn))
    (event,) = await events_of(make_trigger(max_consecutive_errors=3))
    assert event.payload["status"] == "success"
    assert fake.polls == 3


async def test_missing_connection_is_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    (event,) = await events_of(make_trigger(amc_conn_id="amc_nowhere"))
    assert event.payload["status"] == "error"
    assert "amc_nowhere" in event.payload["message"]


# ---- on_kill ------------------------------------------------------------------------------------
async def test_on_kill_cancels_the_execution(serve: ServeFn) -> None:
    fake = await serve(execution("RUNNING"))
    await make_trigger(instance_id=INSTANCE).on_kill()
    assert ("PUT", EXECUTION_PATH, json.dumps({"status": "CANCELLED"})) in [
        (method, path, json.dumps(json.loads(body))) for method, path, body in fake.requests if body
    ]


async def test_on_kill_without_cancel_on_kill_does_nothing(serve: ServeFn) -> None:
    fake = await serve(execution("RUNNING"))
    await make_trigger(cancel_on_kill=False).on_kill()
    assert fake.requests == []


# ---- start_from_trigger: ids rendered in the triggerer, deadline from Airflow's timeout -----------
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"execution_id": "../not an id"}, "execution_id"), ({"instance_id": "bad/instance"}, "instance_id")],
)
async def test_a_bad_rendered_id_is_an_error_event_before_any_request(
    serve: ServeFn, kwargs: dict[str, Any], field: str
) -> None:
    fake = await serve(execution("SUCCEEDED"))
    tokens = len(fake.tokens)
    trigger = AmcExecutionTrigger(**{"execution_id": EXECUTION_ID, "poll_interval": 0.01, **kwargs})
    (event,) = await events_of(trigger)  # the client checks every id it puts in a URL
    assert event.payload["status"] == "error"
    assert f"{field} " in event.payload["message"] and "not a valid AMC id" in event.payload["message"]
    assert fake.requests == [] and len(fake.tokens) == tokens


async def test_deadline_margin_ends_before_airflows_trigger_timeout(serve: ServeFn) -> None:
    fake = await serve(execution("RUNNING"))
    trigger = make_trigger(end_time=None, deadline_margin=60.0, poll_interval=0.05)
    trigger.timeout_after = datetime.now(UTC) + timedelta(seconds=61)  # set by the triggerer
    started = time.monotonic()
    (event,) = await asyncio.wait_for(events_of(trigger), 10)
    assert event.payload["status"] == "timeout"
    assert 0.9 <= time.monotonic() - started < 6
    assert fake.polls >= 2
    assert trigger.serialize()[1]["deadline_margin"] == 60.0


async def test_without_deadline_margin_timeout_after_is_not_a_deadline(serve: ServeFn) -> None:
    await serve(execution("SUCCEEDED"))
    trigger = make_trigger(end_time=None)
    trigger.timeout_after = datetime.now(UTC) - timedelta(seconds=5)
    (event,) = await events_of(trigger)
    assert event.payload["status"] == "success"
