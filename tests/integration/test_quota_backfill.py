"""The daily quota against the emulator over real HTTP: a 40-day backfill on an instance allowing 30.

The operator is driven as Airflow drives it: ``execute`` either returns the execution id or raises
``TaskDeferred``; the deferred ones get their trigger rebuilt from its serialised form (what the
triggerer does), run to its event, and resume in the method the deferral names.

The emulator's quota day is moved to start a few seconds from now (``quota_day_start_seconds``),
and so is the operators' (``quota_day_start``), so the rollover happens during the test. Its clock
runs at real speed from real time, so "now" is the same for both sides.
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
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from datetime import UTC, date, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from airflow.providers.standard.triggers.temporal import DateTimeTrigger  # noqa: E402
from airflow.sdk.exceptions import TaskDeferred  # noqa: E402
from waiting_operators import fire, real_time_emulator, use  # noqa: E402

from airflow_provider_amc.client import AmcApiError  # noqa: E402
from airflow_provider_amc.emulator.defaults import DEFAULT_INSTANCE_ID, DEMO_WORKFLOW_ID  # noqa: E402
from airflow_provider_amc.emulator.testing import EmulatorServer  # noqa: E402
from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator  # noqa: E402
from airflow_provider_amc.quota import ROLLOVER_GRACE  # noqa: E402
from airflow_provider_amc.submission_guard import RESUME_METHOD, AmcQuotaExhausted  # noqa: E402

pytestmark = pytest.mark.integration

CREATE_PATH = re.compile(rf"^/amc/reporting/{DEFAULT_INSTANCE_ID}/workflowExecutions$")
LIST_PATH = CREATE_PATH
BACKFILL_DAYS = 40
QUOTA = 30
#: Real seconds from the start of a test to the quota day's rollover: time for 40 quick submits.
ROLLOVER_IN = 20


@pytest.fixture(scope="module")
def own_emulator() -> Iterator[EmulatorServer]:
    with real_time_emulator() as server:
        yield server


@pytest.fixture
def amc(own_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    return use(own_emulator, monkeypatch)


def rollover_soon(amc: EmulatorServer, quota: int, seconds: float = ROLLOVER_IN) -> datetime:
    """Make the emulator's quota day roll over ``seconds`` from now; return that moment (UTC)."""
    rollover = (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)
    midnight = rollover.replace(hour=0, minute=0, second=0)
    amc.admin.config(daily_quota=quota, quota_day_start_seconds=int((rollover - midnight).total_seconds()))
    assert abs((amc.admin.now() - datetime.now(UTC)).total_seconds()) < 2  # one clock for both sides
    return rollover


def operator(day: date, rollover: datetime, **kwargs: Any) -> AmcCreateExecutionOperator:
    kwargs.setdefault("daily_quota", QUOTA)
    return AmcCreateExecutionOperator(
        task_id="submit",
        workflow_id=DEMO_WORKFLOW_ID,
        time_window_start=day.isoformat(),
        time_window_end=(day + timedelta(days=1)).isoformat(),
        parameter_values={"min_impressions": 1},
        postgres_conn_id=None,
        quota_day_start=rollover.strftime("%H:%M:%S"),
        **kwargs,
    )


class Task:
    """One backfill task instance: its operator and its context (with its own task state store)."""

    def __init__(self, day: date, rollover: datetime, **kwargs: Any) -> None:
        self.day = day
        self.op = operator(day, rollover, **kwargs)
        ti = FakeTaskInstance(run_id=f"backfill__{day.isoformat()}T00:00:00+00:00")
        self.context = task_context(ti, task_state_store=InMemoryTaskStateStore())

    def run(self) -> str | TaskDeferred:
        try:
            result = self.op.execute(self.context)
        except TaskDeferred as deferred:
            return deferred
        assert isinstance(result, str)
        return result


def creates(amc: EmulatorServer) -> list[dict[str, Any]]:
    return [e for e in amc.admin.requests() if e["method"] == "POST" and CREATE_PATH.search(e["path"])]


def quota_counts(amc: EmulatorServer) -> list[dict[str, Any]]:
    """The quota check's list calls: every execution of the instance (no workflowId filter) since a time."""
    return [
        e
        for e in amc.admin.requests()
        if e["method"] == "GET"
        and LIST_PATH.search(e["path"])
        and "workflowId" not in (e.get("query") or {})
        and "minCreationTime" in (e.get("query") or {})
    ]


def days(count: int) -> list[date]:
    return [date(2026, 1, 1) + timedelta(days=n) for n in range(count)]


def test_a_40_day_backfill_on_a_quota_of_30_waits_for_the_rollover(amc: EmulatorServer) -> None:
    rollover = rollover_soon(amc, QUOTA)
    tasks = [Task(day, rollover) for day in days(BACKFILL_DAYS)]
    first = [task.run() for task in tasks]
    assert datetime.now(UTC) < rollover, "the machine was too slow: the quota day ended during submission"

    created = [result for result in first if isinstance(result, str)]
    deferred = [result for result in first if isinstance(result, TaskDeferred)]
    assert (len(created), len(deferred)) == (QUOTA, BACKFILL_DAYS - QUOTA)
    assert [task.day for task, result in zip(tasks, first, strict=True) if isinstance(result, str)] == (
        days(QUOTA)
    )
    for deferral in deferred:  # no worker slot: a DateTimeTrigger until the quota day rolls over
        assert isinstance(deferral.trigger, DateTimeTrigger)
        assert deferral.trigger.moment == rollover + ROLLOVER_GRACE
        assert deferral.method_name == RESUME_METHOD
    assert len(creates(amc)) == QUOTA  # the 31st and later never asked AMC: the count said no
    # The 30 shared one cached count (re-read every 10 s: at most twice in 20 s); each task that
    # waits re-read it first (a wait is never decided on a cached count).
    assert len(quota_counts(amc)) <= 3 + (BACKFILL_DAYS - QUOTA)
    assert {call["status"] for call in creates(amc)} == {200}

    events = fire(deferred)
    assert datetime.now(UTC) >= rollover
    waiting = [task for task, result in zip(tasks, first, strict=True) if isinstance(result, TaskDeferred)]
    resumed = [
        getattr(task.op, deferral.method_name)(task.context, event)
        for task, deferral, event in zip(waiting, deferred, events, strict=True)
    ]
    assert all(isinstance(execution_id, str) for execution_id in resumed)

    calls = creates(amc)
    assert len(calls) == BACKFILL_DAYS  # exactly one create per day: none failed, none duplicated
    assert {call["status"] for call in calls} == {200}
    assert sorted(call["body"]["timeWindowStart"] for call in calls) == [
        f"{day.isoformat()}T00:00:00" for day in days(BACKFILL_DAYS)
    ]
    assert len(set(created + resumed)) == BACKFILL_DAYS
    for execution_id in resumed:  # created in the new quota day (emulator time)
        execution = amc.admin.execution(DEFAULT_INSTANCE_ID, execution_id)["execution"]
        assert datetime.fromisoformat(execution["createTime"].replace("Z", "+00:00")) >= rollover


def test_a_quota_answer_from_amc_waits_for_the_rollover_too(amc: EmulatorServer) -> None:
    """The operator believes 30 are allowed; AMC allows 3 and refuses the 4th create."""
    rollover = rollover_soon(amc, quota=3, seconds=8)
    tasks = [Task(day, rollover) for day in days(4)]
    first = [task.run() for task in tasks]
    assert datetime.now(UTC) < rollover
    assert [isinstance(result, str) for result in first] == [True, True, True, False]
    deferral = first[3]
    assert isinstance(deferral, TaskDeferred) and isinstance(deferral.trigger, DateTimeTrigger)
    assert deferral.trigger.moment == rollover + ROLLOVER_GRACE
    assert [call["status"] for call in creates(amc)] == [200, 200, 200, 400]

    [event] = fire([deferral])
    execution_id = getattr(tasks[3].op, deferral.method_name)(tasks[3].context, event)
    assert [call["status"] for call in creates(amc)] == [200, 200, 200, 400, 200]
    assert amc.admin.execution(DEFAULT_INSTANCE_ID, execution_id)["execution"]["workflowExecutionId"]


def test_quota_policy_fail_fails_clearly_without_a_create(amc: EmulatorServer) -> None:
    rollover = rollover_soon(amc, quota=2, seconds=3600)
    tasks = [Task(day, rollover, daily_quota=2, quota_policy="fail") for day in days(3)]
    assert all(isinstance(task.run(), str) for task in tasks[:2])
    with pytest.raises(AmcQuotaExhausted) as failed:
        tasks[2].run()
    message = str(failed.value)
    assert f"instance {DEFAULT_INSTANCE_ID} already started 2 of its 2 ad-hoc executions" in message
    assert rollover.strftime("%Y-%m-%dT%H:%M:%SZ") in message and "quota_policy='fail'" in message
    assert [call["status"] for call in creates(amc)] == [200, 200]


def test_quota_policy_ignore_neither_counts_nor_waits(amc: EmulatorServer) -> None:
    rollover = rollover_soon(amc, quota=1, seconds=3600)
    tasks = [Task(day, rollover, quota_policy="ignore") for day in days(2)]
    assert isinstance(tasks[0].run(), str)
    with pytest.raises(AmcApiError, match="Daily limit of 1"):
        tasks[1].run()
    assert [call["status"] for call in creates(amc)] == [200, 400]
    assert quota_counts(amc) == []


def test_a_cached_count_never_makes_a_second_run_wait(amc: EmulatorServer) -> None:
    """A user's second test run right after the first (emulator reset in between) is not held back."""
    rollover = rollover_soon(amc, quota=2, seconds=3600)
    assert all(isinstance(Task(day, rollover, daily_quota=2).run(), str) for day in days(2))
    amc.admin.reset()  # a new test run: nothing started today any more, but the process cached 2
    rollover = rollover_soon(amc, quota=2, seconds=3600)
    started = time.monotonic()
    result = Task(date(2026, 3, 1), rollover, daily_quota=2).run()
    assert isinstance(result, str), result
    assert time.monotonic() - started < 10
    assert [call["status"] for call in creates(amc)] == [200]
