"""The data-lag guard against the emulator over real HTTP: no create before window end + min_data_age.

Short values stand in for the 48 hours of production: a window ending a second from now with a
``min_data_age`` of three seconds must wait (deferred, a ``DateTimeTrigger``) about four seconds and
then submit exactly once.
"""

from __future__ import annotations

from airflow_env import (
    FakeTaskInstance,
    InMemoryTaskStateStore,
    apply_airflow_test_env,
    task_context,
)

apply_airflow_test_env()

import re  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from airflow.providers.standard.triggers.temporal import DateTimeTrigger  # noqa: E402
from airflow.sdk.exceptions import TaskDeferred  # noqa: E402
from waiting_operators import fire, real_time_emulator, use  # noqa: E402

from airflow_provider_amc.emulator.defaults import DEFAULT_INSTANCE_ID, DEMO_WORKFLOW_ID  # noqa: E402
from airflow_provider_amc.emulator.testing import EmulatorServer  # noqa: E402
from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator  # noqa: E402
from airflow_provider_amc.submission_guard import RESUME_METHOD  # noqa: E402

pytestmark = pytest.mark.integration

CREATE_PATH = re.compile(rf"^/amc/reporting/{DEFAULT_INSTANCE_ID}/workflowExecutions$")
AGE = timedelta(seconds=3)


@pytest.fixture(scope="module")
def own_emulator() -> Iterator[EmulatorServer]:
    with real_time_emulator() as server:
        yield server


@pytest.fixture
def amc(own_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    return use(own_emulator, monkeypatch)


def creates(amc: EmulatorServer) -> list[dict[str, Any]]:
    return [e for e in amc.admin.requests() if e["method"] == "POST" and CREATE_PATH.search(e["path"])]


def wall(moment: datetime, zone_offset: timedelta = timedelta(0)) -> str:
    return (moment + zone_offset).strftime("%Y-%m-%dT%H:%M:%S")


def operator(end: datetime, min_data_age: timedelta | None = AGE) -> AmcCreateExecutionOperator:
    return AmcCreateExecutionOperator(
        task_id="submit",
        workflow_id=DEMO_WORKFLOW_ID,
        time_window_start=wall(end - timedelta(days=1)),
        time_window_end=wall(end),
        parameter_values={"min_impressions": 1},
        postgres_conn_id=None,
        min_data_age=min_data_age,
    )


def test_a_window_too_recent_waits_then_submits_once(amc: EmulatorServer) -> None:
    end = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    ready = end + AGE
    task = operator(end)
    context = task_context(FakeTaskInstance(), task_state_store=InMemoryTaskStateStore())
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(context)
    assert isinstance(deferred.value.trigger, DateTimeTrigger)
    assert deferred.value.trigger.moment == ready
    assert deferred.value.method_name == RESUME_METHOD
    assert creates(amc) == []  # nothing reached AMC while the data is too recent

    [event] = fire([deferred.value])
    assert datetime.now(UTC) >= ready
    execution_id = getattr(task, deferred.value.method_name)(context, event)
    calls = creates(amc)
    assert [call["status"] for call in calls] == [200]
    assert calls[0]["body"]["timeWindowEnd"] == wall(end)
    execution = amc.admin.execution(DEFAULT_INSTANCE_ID, execution_id)["execution"]
    created = datetime.fromisoformat(execution["createTime"].replace("Z", "+00:00"))
    assert created >= ready - timedelta(seconds=1)  # createTime is truncated to the second


def test_the_window_end_is_read_in_the_window_zone(amc: EmulatorServer) -> None:
    """An end written as Kolkata wall time (UTC+05:30) is that instant, not the same wall time in UTC."""
    now = datetime.now(UTC).replace(microsecond=0)
    kolkata = timedelta(hours=5, minutes=30)
    task = AmcCreateExecutionOperator(
        task_id="submit",
        workflow_id=DEMO_WORKFLOW_ID,
        time_window_start=wall(now - timedelta(days=1), kolkata),
        time_window_end=wall(now, kolkata),
        time_window_time_zone="Asia/Kolkata",
        parameter_values={"min_impressions": 1},
        postgres_conn_id=None,
        min_data_age=timedelta(hours=1),
    )
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(task_context(FakeTaskInstance(), task_state_store=InMemoryTaskStateStore()))
    assert deferred.value.trigger.moment == now + timedelta(hours=1)
    assert creates(amc) == []


def test_a_window_old_enough_submits_at_once(amc: EmulatorServer) -> None:
    end = (datetime.now(UTC) - AGE - timedelta(seconds=1)).replace(microsecond=0)
    execution_id = operator(end).execute(task_context(task_state_store=InMemoryTaskStateStore()))
    assert isinstance(execution_id, str)
    assert [call["status"] for call in creates(amc)] == [200]


def test_without_min_data_age_a_future_window_is_submitted(amc: EmulatorServer) -> None:
    """Off by default: the operator does not second-guess a window (AMC decides what it has)."""
    end = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    assert isinstance(operator(end, min_data_age=None).execute(task_context()), str)
    assert [call["status"] for call in creates(amc)] == [200]
