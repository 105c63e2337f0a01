"""AmcCreateExecutionOperator: the request body it sends, input validation before any HTTP call."""

from __future__ import annotations

from airflow_env import (
    FakeTaskInstance,
    InMemoryTaskStateStore,
    amc_connection_env,
    apply_airflow_test_env,
    task_context,
)

apply_airflow_test_env()

import json  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pendulum  # noqa: E402
import pytest  # noqa: E402
import requests_mock as rm  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred  # noqa: E402

from airflow_provider_amc.lifecycle import Submission  # noqa: E402
from airflow_provider_amc.operators.amc import STATE_KEY, AmcCreateExecutionOperator  # noqa: E402
from airflow_provider_amc.triggers.amc import AmcExecutionTrigger  # noqa: E402

API = "https://amc.unit.test"
INSTANCE = "amcunit0001"
CREATE_URL = f"{API}/amc/reporting/{INSTANCE}/workflowExecutions"
EXECUTION_ID = "11111111-2222-4333-8444-555555555555"


@pytest.fixture(autouse=True)
def amc_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in amc_connection_env(API, instance_id=INSTANCE).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def amc_api(requests_mock: rm.Mocker) -> Iterator[rm.Mocker]:
    """LwA + create-execution routes answering like AMC (flat body)."""
    requests_mock.post(
        f"{API}/auth/o2/token",
        json={"access_token": "Atza|unit", "token_type": "bearer", "expires_in": 3600},
    )
    requests_mock.post(
        CREATE_URL,
        status_code=200,
        json={"workflowExecutionId": EXECUTION_ID, "workflowId": "wf", "status": "PENDING"},
    )
    # The live executions of the request before the create call (a lost answer's lookup skips them)
    # and the quota check's count: none.
    requests_mock.get(CREATE_URL, json={"executions": []})
    yield requests_mock


def make_operator(**kwargs: Any) -> AmcCreateExecutionOperator:
    kwargs.setdefault("workflow_id", "wf")
    kwargs.setdefault("postgres_conn_id", None)  # no execution table in unit tests
    return AmcCreateExecutionOperator(task_id="submit", **kwargs)


def interval(start: str, end: str) -> dict[str, Any]:
    return {"data_interval_start": pendulum.parse(start), "data_interval_end": pendulum.parse(end)}


def sent_bodies(mocker: rm.Mocker) -> list[dict[str, Any]]:
    return [json.loads(call.text) for call in mocker.request_history if call.url == CREATE_URL]


def submit(operator: AmcCreateExecutionOperator, mocker: rm.Mocker, **context: Any) -> dict[str, Any]:
    """Run ``execute``; returns the one body POSTed to AMC."""
    assert operator.execute(task_context(**context)) == EXECUTION_ID
    bodies = sent_bodies(mocker)
    assert len(bodies) == 1
    return bodies[0]


# ---- time windows ------------------------------------------------------------------------------
WINDOW_CASES = {
    # A week across the US spring-forward (2026-03-08): 7 local days, 167 hours.
    "la-dst-week": (
        "America/Los_Angeles",
        "2026-03-08T08:00:00+00:00",
        "2026-03-15T07:00:00+00:00",
        ("2026-03-08T00:00:00", "2026-03-15T00:00:00"),
    ),
    # October in Berlin contains the fall-back (2026-10-25): CEST start, CET end.
    "berlin-month": (
        "Europe/Berlin",
        "2026-09-30T22:00:00+00:00",
        "2026-10-31T23:00:00+00:00",
        ("2026-10-01T00:00:00", "2026-11-01T00:00:00"),
    ),
}


@pytest.mark.parametrize("case", WINDOW_CASES.values(), ids=WINDOW_CASES.keys())
def test_default_window_is_the_data_interval_in_the_zone(
    case: tuple[str, str, str, tuple[str, str]], amc_api: rm.Mocker
) -> None:
    zone, start, end, (local_start, local_end) = case
    body = submit(make_operator(time_window_time_zone=zone), amc_api, **interval(start, end))
    assert body == {
        "workflowId": "wf",
        "timeWindowType": "EXPLICIT",
        "timeWindowStart": local_start,
        "timeWindowEnd": local_end,
        "timeWindowTimeZone": zone,
        "outputFormat": "CSV",
    }


@pytest.mark.parametrize("case", WINDOW_CASES.values(), ids=WINDOW_CASES.keys())
def test_templated_bounds_are_rendered_and_converted(
    case: tuple[str, str, str, tuple[str, str]], amc_api: rm.Mocker
) -> None:
    zone, start, end, (local_start, local_end) = case
    operator = make_operator(
        time_window_start="{{ data_interval_start.isoformat() }}",
        time_window_end="{{ data_interval_end.isoformat() }}",
        time_window_time_zone="{{ params.zone }}",
        output_format="{{ params.fmt }}",
    )
    context = task_context(**interval(start, end), params={"zone": zone, "fmt": "parquet"})
    operator.render_template_fields(context)
    assert operator.time_window_start == pendulum.parse(start).isoformat()
    assert operator.execute(context) == EXECUTION_ID
    body = sent_bodies(amc_api)[0]
    assert (body["timeWindowStart"], body["timeWindowEnd"], body["timeWindowTimeZone"]) == (
        local_start,
        local_end,
        zone,
    )
    assert body["outputFormat"] == "PARQUET"


def test_templated_date_only_bounds_are_local_midnights(amc_api: rm.Mocker) -> None:
    operator = make_operator(
        time_window_start="{{ ds }}",
        time_window_end="{{ macros.ds_add(ds, 1) }}",
        time_window_time_zone="Asia/Tokyo",
    )
    from airflow.sdk.execution_time import macros

    context = task_context(ds="2026-03-10", macros=macros)
    operator.render_template_fields(context)
    body = submit(operator, amc_api, **{k: v for k, v in context.items() if k != "ti"})
    assert body["timeWindowStart"] == "2026-03-10T00:00:00"
    assert body["timeWindowEnd"] == "2026-03-11T00:00:00"
    assert body["timeWindowTimeZone"] == "Asia/Tokyo"


@pytest.mark.parametrize(
    "window_type", ["MOST_RECENT_DAY", "MOST_RECENT_WEEK", "CURRENT_MONTH", "PREVIOUS_MONTH", "ALL"]
)
def test_relative_types_send_no_bounds(window_type: str, amc_api: rm.Mocker) -> None:
    operator = make_operator(time_window_type=window_type.lower(), time_window_time_zone="Europe/Berlin")
    body = submit(operator, amc_api, **interval("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"))
    assert body["timeWindowType"] == window_type
    assert body["timeWindowTimeZone"] == "Europe/Berlin"
    assert "timeWindowStart" not in body
    assert "timeWindowEnd" not in body


def test_no_usable_interval_falls_back_to_the_default_days(amc_api: rm.Mocker) -> None:
    moment = pendulum.parse("2026-03-10T00:00:00Z")
    body = submit(make_operator(default_window_days=3), amc_api, **interval(str(moment), str(moment)))
    start = pendulum.parse(body["timeWindowStart"])
    end = pendulum.parse(body["timeWindowEnd"])
    assert (end - start).in_days() == 3
    assert body["timeWindowEnd"].endswith("T00:00:00")


# ---- parameter values --------------------------------------------------------------------------
NESTED = {"min_impressions": 10, "campaigns": ["a", "b,c"], "filter": {"region": "EU", "on": True}}


@pytest.mark.parametrize("values", [NESTED, json.dumps(NESTED)], ids=["dict", "json-string"])
def test_parameter_values_are_sent_as_an_object(values: Any, amc_api: rm.Mocker) -> None:
    body = submit(make_operator(parameter_values=values, time_window_type="ALL"), amc_api)
    assert body["parameterValues"] == NESTED


def test_nested_parameter_templates_are_rendered(amc_api: rm.Mocker) -> None:
    operator = make_operator(
        time_window_type="ALL",
        parameter_values={"min_impressions": "{{ params.n }}", "filter": {"names": ["{{ params.name }}"]}},
    )
    context = task_context(params={"n": 5, "name": "spring"})
    operator.render_template_fields(context)
    assert operator.execute(context) == EXECUTION_ID
    assert sent_bodies(amc_api)[0]["parameterValues"] == {
        "min_impressions": "5",
        "filter": {"names": ["spring"]},
    }


def test_no_parameter_values_sends_none(amc_api: rm.Mocker) -> None:
    body = submit(make_operator(time_window_type="ALL", parameter_values=""), amc_api)
    assert "parameterValues" not in body


# ---- invalid input: AirflowFailException naming the field, zero HTTP calls ----------------------
INVALID = {
    "missing workflow_id": ({"workflow_id": ""}, "workflow_id"),
    "workflow_id with spaces": ({"workflow_id": "my workflow"}, "workflow_id"),
    "output_format JSON": ({"output_format": "JSON"}, "output_format"),
    "unparsable start": (
        {"time_window_start": "yesterday", "time_window_end": "2026-03-02"},
        "time_window_start",
    ),
    "month 13": ({"time_window_start": "2026-13-01", "time_window_end": "2026-03-02"}, "time_window_start"),
    "end before start": (
        {"time_window_start": "2026-03-02", "time_window_end": "2026-03-01"},
        "time_window_end",
    ),
    "end equals start": (
        {"time_window_start": "2026-03-02T00:00:00", "time_window_end": "2026-03-02"},
        "time_window_end",
    ),
    "unknown zone": ({"time_window_time_zone": "Mars/Olympus_Mons"}, "time_window_time_zone"),
    "unknown type": ({"time_window_type": "LAST_YEAR"}, "time_window_type"),
    "bounds with relative type": (
        {"time_window_type": "MOST_RECENT_DAY", "time_window_start": "2026-03-01"},
        "time_window_start",
    ),
    "end only with relative type": (
        {"time_window_type": "ALL", "time_window_end": "2026-03-01"},
        "time_window_end",
    ),
    "EXPLICIT without end": ({"time_window_start": "2026-03-01"}, "time_window_end"),
    "EXPLICIT without start": ({"time_window_end": "2026-03-01"}, "time_window_start"),
    "parameter_values not JSON": ({"parameter_values": "{min: 1"}, "parameter_values"),
    "parameter_values a list": ({"parameter_values": [1, 2]}, "parameter_values"),
    "parameter_values JSON array": ({"parameter_values": "[1, 2]"}, "parameter_values"),
    "parameter_values not serialisable": ({"parameter_values": {"x": object()}}, "parameter_values"),
    "parameter_values bad name": ({"parameter_values": {"": 1}}, "parameter_values"),
    "timeout out of range": (
        {"workflow_execution_timeout_seconds": 60},
        "workflow_execution_timeout_seconds",
    ),
    "bad instance_id": ({"instance_id": "amc 1"}, "instance_id"),
}


@pytest.mark.parametrize("case", INVALID.values(), ids=INVALID.keys())
def test_invalid_input_fails_before_any_http_call(
    case: tuple[dict[str, Any], str], requests_mock: rm.Mocker
) -> None:
    kwargs, field = case
    operator = make_operator(**kwargs)
    ti = FakeTaskInstance()
    with pytest.raises(AirflowFailException, match=field):
        operator.execute(task_context(ti, **interval("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z")))
    assert requests_mock.call_count == 0
    assert ti.pushed == []


def test_output_format_error_lists_the_allowed_values(requests_mock: rm.Mocker) -> None:
    with pytest.raises(AirflowFailException, match=r"output_format 'JSON'.*CSV, PARQUET"):
        make_operator(output_format="JSON").execute(task_context())
    assert requests_mock.call_count == 0


def test_missing_instance_id_everywhere_fails_before_http(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker
) -> None:
    for name, value in amc_connection_env(API, instance_id=None).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(AirflowFailException, match="instance_id"):
        make_operator(time_window_type="ALL").execute(task_context())
    assert requests_mock.call_count == 0


# ---- submission side effects --------------------------------------------------------------------
def test_execution_id_goes_to_xcom_and_the_state_store(amc_api: rm.Mocker) -> None:
    ti, store = FakeTaskInstance(), InMemoryTaskStateStore()
    result = make_operator(time_window_type="ALL").execute(task_context(ti, task_state_store=store))
    assert result == EXECUTION_ID
    assert ti.pushed[0] == ("amc_execution_id", EXECUTION_ID)
    assert ti.pushed[1][0] == "amc_submission"
    submission = Submission.model_validate(ti.pushed[1][1])
    assert (submission.instance_id, submission.workflow_id, submission.time_window_type) == (
        INSTANCE,
        "wf",
        "ALL",
    )
    stored = store.get(STATE_KEY)
    assert stored["execution_id"] == EXECUTION_ID
    assert stored["instance_id"] == INSTANCE
    assert Submission.model_validate(stored["submission"]) == submission  # the same, JSON round trip
    assert stored["fingerprint"] == submission.fingerprint == submission.identity.key


def test_wait_for_completion_defers_to_the_trigger(amc_api: rm.Mocker) -> None:
    operator = make_operator(
        time_window_type="ALL", wait_for_completion=True, poll_interval=7, wait_timeout=600
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(task_context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, AmcExecutionTrigger)
    assert (trigger.execution_id, trigger.instance_id, trigger.poll_interval) == (EXECUTION_ID, INSTANCE, 7.0)
    assert deferred.value.method_name == "execute_complete"
    assert len(sent_bodies(amc_api)) == 1
