"""AmcExecutionSensor: deferral, the already-terminal shortcut, poke/reschedule, execute_complete, on_kill.

AMC and the result downloads are mocked at the HTTP level (requests-mock); no execution table.
"""

from __future__ import annotations

from airflow_env import FakeTaskInstance, amc_connection_env, apply_airflow_test_env, task_context

apply_airflow_test_env()

import json  # noqa: E402
import time  # noqa: E402
from datetime import timedelta  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import requests_mock as rm  # noqa: E402
from airflow.sdk.exceptions import (  # noqa: E402
    AirflowException,
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    TaskDeferred,
)

from airflow_provider_amc.sensors.amc import AmcExecutionSensor  # noqa: E402
from airflow_provider_amc.triggers.amc import AmcExecutionTrigger  # noqa: E402

API = "https://amc.sensor.test"
INSTANCE = "amcsens0001"
EXECUTION_ID = "99999999-8888-4777-8666-555555555555"
EXECUTION_URL = f"{API}/amc/reporting/{INSTANCE}/workflowExecutions/{EXECUTION_ID}"
DOWNLOAD = "https://bucket.download.test/results"
CSV_PARTS = [b"a,b\n1,2\n3,4\n", b'a,b\n"x\ny",5\n']  # 2 + 1 data rows (one quoted newline)


@pytest.fixture(autouse=True)
def amc_api(monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker) -> rm.Mocker:
    for name, value in amc_connection_env(API, instance_id=INSTANCE).items():
        monkeypatch.setenv(name, value)
    requests_mock.post(f"{API}/auth/o2/token", json={"access_token": "Atza|s", "expires_in": 3600})
    requests_mock.get(
        f"{EXECUTION_URL}/downloadUrls",
        json={
            "downloadUrls": [f"{DOWNLOAD}/part-{i:05d}.csv?X-Amz-Signature=s" for i in range(len(CSV_PARTS))]
        },
    )
    for i, content in enumerate(CSV_PARTS):
        requests_mock.get(f"{DOWNLOAD}/part-{i:05d}.csv", content=content)
    requests_mock.put(EXECUTION_URL, json={})
    requests_mock.get(f"{API}/amc/reporting/{INSTANCE}/workflows/wf", json={"workflowId": "wf"})
    return requests_mock


def execution(status: str, **fields: Any) -> dict[str, Any]:
    return {"workflowExecutionId": EXECUTION_ID, "workflowId": "wf", "status": status, **fields}


SUCCEEDED = execution("SUCCEEDED", outputS3URI="s3://bucket/wf/result.csv")


def answer_status(mocker: rm.Mocker, *bodies: dict[str, Any]) -> None:
    mocker.get(EXECUTION_URL, [{"json": body} for body in bodies])


def make_sensor(**kwargs: Any) -> AmcExecutionSensor:
    kwargs.setdefault("postgres_conn_id", None)
    kwargs.setdefault("instance_id", INSTANCE)
    return AmcExecutionSensor(task_id="wait", execution_id=EXECUTION_ID, **kwargs)


def cancels(mocker: rm.Mocker) -> list[dict[str, Any]]:
    return [json.loads(call.text) for call in mocker.request_history if call.method == "PUT"]


def assert_output(metadata: dict[str, Any], ti: FakeTaskInstance) -> None:
    assert metadata["execution_id"] == EXECUTION_ID
    assert metadata["status"] == "completed"
    assert metadata["row_count"] == 3
    assert metadata["size_bytes"] == sum(len(part) for part in CSV_PARTS)
    assert metadata["output_location"] == "s3://bucket/wf/result.csv"
    assert ti.pushed_value("amc_output") == metadata


# ---- deferrable (default) ----------------------------------------------------------------------
def test_deferrable_is_the_default() -> None:
    assert make_sensor().deferrable is True


@pytest.mark.parametrize("status", ["PENDING", "RUNNING"])
def test_live_execution_defers_to_the_trigger(status: str, amc_api: rm.Mocker) -> None:
    answer_status(amc_api, execution(status))
    sensor = make_sensor(poke_interval=30, timeout=3600, max_poll_interval=600, amc_conn_id="amc_default")
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, AmcExecutionTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["execution_id"] == EXECUTION_ID
    assert kwargs["instance_id"] == INSTANCE
    assert kwargs["amc_conn_id"] == "amc_default"
    assert kwargs["poll_interval"] == 30
    assert kwargs["max_poll_interval"] == 600
    assert kwargs["poll_backoff"] > 1
    assert before + 3600 <= kwargs["end_time"] <= time.time() + 3600  # absolute deadline
    assert kwargs["first_poll_delay"] == 30  # the worker has just polled
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(seconds=3600 + 60)


def test_succeeded_already_finishes_without_deferring(amc_api: rm.Mocker) -> None:
    answer_status(amc_api, SUCCEEDED)
    ti = FakeTaskInstance()
    assert_output(make_sensor().execute(task_context(ti)), ti)


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED", "REJECTED"])
def test_failed_already_fails_without_deferring(status: str, amc_api: rm.Mocker) -> None:
    answer_status(amc_api, execution(status, statusReason="Query exceeded memory"))
    with pytest.raises(AirflowFailException, match=rf"{status}: Query exceeded memory"):
        make_sensor().execute(task_context())


# ---- execute_complete -----------------------------------------------------------------------------
def event(status: str, **payload: Any) -> dict[str, Any]:
    return {"status": status, "execution_id": EXECUTION_ID, "instance_id": INSTANCE, **payload}


def test_success_event_measures_the_output(amc_api: rm.Mocker) -> None:
    ti = FakeTaskInstance()
    metadata = make_sensor().execute_complete(task_context(ti), event("success", execution=SUCCEEDED))
    assert_output(metadata, ti)


def test_failed_event_fails_with_amcs_reason() -> None:
    failed = execution("FAILED", statusReason="Division by zero")
    with pytest.raises(AirflowFailException, match="ended FAILED: Division by zero"):
        make_sensor().execute_complete(task_context(), event("failed", execution=failed))


@pytest.mark.parametrize(("cancel_on_timeout", "expected_cancels"), [(False, 0), (True, 1)])
def test_timeout_event_is_a_sensor_timeout(
    cancel_on_timeout: bool, expected_cancels: int, amc_api: rm.Mocker
) -> None:
    sensor = make_sensor(cancel_on_timeout=cancel_on_timeout)
    with pytest.raises(AirflowSensorTimeout, match="deadline"):
        sensor.execute_complete(task_context(), event("timeout", message="did not end before the deadline"))
    assert cancels(amc_api) == [{"status": "CANCELLED"}] * expected_cancels


def test_error_event_raises_with_the_message() -> None:
    with pytest.raises(AirflowException, match="AmcAuthError: nope"):
        make_sensor().execute_complete(task_context(), event("error", message="AmcAuthError: nope"))


@pytest.mark.parametrize("bad", [None, {}, {"status": "done"}, "success"])
def test_unexpected_event_never_passes(bad: Any) -> None:
    with pytest.raises(AirflowException, match="Unexpected event"):
        make_sensor().execute_complete(task_context(), bad)


# ---- poke and reschedule modes -----------------------------------------------------------------------
def test_poke_mode_polls_until_done(amc_api: rm.Mocker) -> None:
    answer_status(amc_api, execution("PENDING"), execution("RUNNING"), SUCCEEDED)
    ti = FakeTaskInstance()
    sensor = make_sensor(deferrable=False, mode="poke", poke_interval=0.01, timeout=30)
    assert_output(sensor.execute(task_context(ti)), ti)
    polls = [c for c in amc_api.request_history if c.method == "GET" and c.url.startswith(EXECUTION_URL)]
    assert len([c for c in polls if "downloadUrls" not in c.url]) == 3


def test_poke_mode_timeout_can_cancel(amc_api: rm.Mocker) -> None:
    answer_status(amc_api, execution("RUNNING"))
    sensor = make_sensor(deferrable=False, poke_interval=0.01, timeout=0.05, cancel_on_timeout=True)
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute(task_context())
    assert cancels(amc_api) == [{"status": "CANCELLED"}]


def test_reschedule_mode_reschedules_then_finishes(amc_api: rm.Mocker) -> None:
    answer_status(amc_api, execution("RUNNING"), SUCCEEDED)
    ti = FakeTaskInstance()
    sensor = make_sensor(deferrable=False, mode="reschedule", poke_interval=5, timeout=60)
    with pytest.raises(AirflowRescheduleException):
        sensor.execute(task_context(ti))
    assert ti.pushed == []
    assert_output(sensor.execute(task_context(ti)), ti)


# ---- on_kill -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("cancel_on_kill", "expected"), [(True, [{"status": "CANCELLED"}]), (False, [])])
def test_on_kill_cancels_the_watched_execution(
    cancel_on_kill: bool, expected: list[dict[str, str]], amc_api: rm.Mocker
) -> None:
    answer_status(amc_api, execution("RUNNING"))
    sensor = make_sensor(cancel_on_kill=cancel_on_kill)
    with pytest.raises(TaskDeferred):
        sensor.execute(task_context())
    sensor.on_kill()
    assert cancels(amc_api) == expected


def test_on_kill_before_any_poke_sends_nothing(amc_api: rm.Mocker) -> None:
    make_sensor().on_kill()
    assert amc_api.call_count == 0


def test_a_failed_cancellation_is_logged_not_swallowed(
    amc_api: rm.Mocker, capfd: pytest.CaptureFixture[str]
) -> None:
    answer_status(amc_api, execution("RUNNING"))
    amc_api.put(EXECUTION_URL, status_code=404, json={"code": "404", "details": "no such execution"})
    sensor = make_sensor(cancel_on_kill=True)
    with pytest.raises(TaskDeferred):
        sensor.execute(task_context())
    capfd.readouterr()
    sensor.on_kill()  # the kill itself must not raise
    assert len(cancels(amc_api)) == 1
    out, err = capfd.readouterr()  # the task logger (structlog) writes to the console here
    lines = [line for line in (out + err).splitlines() if "warning" in line.lower()]
    assert any(f"Cancel of AMC execution {EXECUTION_ID} failed" in line for line in lines), out + err
