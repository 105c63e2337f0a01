"""Throttling, server faults, dropped connections and slow answers on every call of a run
(create, status, downloadUrls, download) through the operator, sensor and trigger code paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred
from reliability_helpers import (
    CREATE_PATH,
    DOWNLOAD_PATH,
    INSTANCE,
    STATUS_PATH,
    TOKEN_PATH,
    URLS_PATH,
    account_faults,
    assert_single_execution,
    context,
    create_operator,
    executions_created,
    fast_trigger,
    finish_executions,
    first_event,
    log_entries,
    pg_rows,
    sensor,
    temp_table,
    within,
)
from reliability_registry import record

from airflow_env import InMemoryTaskStateStore
from airflow_provider_amc.client import AmcServerError, AmcThrottledError, AmcTransportError
from airflow_provider_amc.emulator.testing import EmulatorServer
from airflow_provider_amc.operators.amc import STATE_KEY

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fast_retries")]

#: (kind, extra fields) of the faults a single call must survive within its 5 attempts.
BURSTS: dict[str, tuple[str, dict[str, Any]]] = {
    "429-storm": ("status", {"status": 429, "retry_after": 0, "count": 4}),
    "500-burst": ("status", {"status": 500, "count": 3}),
    "502-burst": ("status", {"status": 502, "count": 3}),
    "503-burst": ("status", {"status": 503, "retry_after": 0, "count": 3}),
    "504-burst": ("status", {"status": 504, "count": 3}),
    "reset": ("reset", {"count": 2}),
    "slow-past-timeout": ("delay", {"delay_seconds": 2.5, "count": 1}),  # client timeout is 2 s
}


def submit(emulator: EmulatorServer, store: InMemoryTaskStateStore | None = None, **kw: Any) -> str:
    execution_id = create_operator(**kw).execute(context(store or InMemoryTaskStateStore()))
    assert isinstance(execution_id, str)
    return execution_id


def assert_no_storm(emulator: EmulatorServer, faults: int, normal_calls: int) -> None:
    """Every request is either a fault answer or one of the calls the run needs (+1 token fetch)."""
    total = len(log_entries(emulator))
    assert total <= faults + normal_calls + 1, f"{total} requests for {normal_calls} calls + {faults} faults"


# ---- create -----------------------------------------------------------------------------------
def test_create_survives_a_429_storm_with_one_execution(amc_env: EmulatorServer) -> None:
    amc_env.admin.fault("status", method="POST", path=CREATE_PATH, status=429, retry_after=0, count=4)
    execution_id = within(20, lambda: submit(amc_env))
    assert amc_env.admin.execution(INSTANCE, execution_id)["execution"]["workflowExecutionId"] == execution_id
    faults = account_faults(amc_env)
    assert faults == 4
    assert_single_execution(amc_env)
    assert len(log_entries(amc_env, "POST", CREATE_PATH)) == 5
    # the live executions listed, the quota check's list call (or none: a count cached), the create
    assert_no_storm(amc_env, faults, normal_calls=3)
    record("tasks_survived")


def test_create_honours_retry_after(amc_env: EmulatorServer) -> None:
    import time

    amc_env.admin.fault("status", method="POST", path=CREATE_PATH, status=429, retry_after=1, count=1)
    started = time.monotonic()
    submit(amc_env)
    assert time.monotonic() - started >= 1.0  # waited as told, not the 0.02 s backoff
    account_faults(amc_env)
    assert_single_execution(amc_env)
    record("tasks_survived")


def test_create_throttled_longer_than_a_call_waits_defers_then_submits_once(amc_env: EmulatorServer) -> None:
    """429 with Retry-After: 3600 on create: one POST, then the task waits deferred (no worker
    slot) until AMC's time, not 300 s sleeps in the worker; back from the wait it submits once."""
    amc_env.admin.fault("status", method="POST", path=CREATE_PATH, status=429, retry_after=3600, count=1)
    store = InMemoryTaskStateStore()
    asked = datetime.now(UTC)
    with pytest.raises(TaskDeferred) as deferred:
        within(20, lambda: create_operator().execute(context(store)))
    moment = deferred.value.trigger.moment
    assert asked + timedelta(seconds=3590) <= moment <= datetime.now(UTC) + timedelta(seconds=3600)
    assert deferred.value.method_name == "resume_submission"
    assert len(log_entries(amc_env, "POST", CREATE_PATH)) == 1 and executions_created(amc_env) == 0
    execution_id = create_operator().resume_submission(context(store))
    assert amc_env.admin.execution(INSTANCE, execution_id)["execution"]["workflowExecutionId"] == execution_id
    assert len(log_entries(amc_env, "POST", CREATE_PATH)) == 2
    account_faults(amc_env)
    assert_single_execution(amc_env)


@pytest.mark.parametrize("refusal", ["throttled", "quota-answer"])
def test_a_refused_create_leaves_no_lost_submission_to_adopt_after_the_wait(
    amc_env: EmulatorServer, refusal: str
) -> None:
    """AMC answered the create with a refusal (429 with a long Retry-After, a quota answer): nothing
    was created. Back from the wait (an hour, a day) the task must submit its own execution, not
    take another tool's live execution of the same request, created meanwhile, for the lost answer
    of its refused create."""
    if refusal == "throttled":
        amc_env.admin.fault("status", method="POST", path=CREATE_PATH, status=429, retry_after=3600, count=1)
    else:  # AMC's own count is used up; the operator's count (a larger daily_quota) lets it try
        amc_env.admin.config(daily_quota=0)
    store = InMemoryTaskStateStore()
    with pytest.raises(TaskDeferred):
        within(20, lambda: create_operator(daily_quota=1000).execute(context(store)))
    assert executions_created(amc_env) == 0
    amc_env.admin.config(daily_quota=1000)
    outside = submit(amc_env, reattach=False, daily_quota=1000)  # another DAG, same request
    ours = create_operator(daily_quota=1000).resume_submission(context(store))
    assert ours != outside
    assert executions_created(amc_env) == 2


def test_create_throttled_longer_than_a_call_waits_fails_with_policy_fail(amc_env: EmulatorServer) -> None:
    amc_env.admin.fault("status", method="POST", path=CREATE_PATH, status=429, retry_after=3600, count=1)
    with pytest.raises(AmcThrottledError) as info:
        within(20, lambda: create_operator(quota_policy="fail").execute(context(InMemoryTaskStateStore())))
    assert info.value.retry_after == 3600
    assert len(log_entries(amc_env, "POST", CREATE_PATH)) == 1 and executions_created(amc_env) == 0


def test_quota_count_throttled_longer_than_a_call_waits_defers_like_the_create(
    amc_env: EmulatorServer,
) -> None:
    """The quota check's list call throttled with Retry-After: 3600 is AMC asking for an hour like a
    throttled create: the task defers until then (``quota_policy="wait"``), it does not fail the
    try for Airflow's retry to ask again minutes later. (``quota_day_start`` of its own: no count
    cached by an earlier test.)"""
    amc_env.admin.fault("status", method="GET", path=CREATE_PATH, status=429, retry_after=3600, count=1)
    store = InMemoryTaskStateStore()
    asked = datetime.now(UTC)
    with pytest.raises(TaskDeferred) as deferred:
        within(20, lambda: create_operator(quota_day_start="00:00:01").execute(context(store)))
    moment = deferred.value.trigger.moment
    assert asked + timedelta(seconds=3590) <= moment <= datetime.now(UTC) + timedelta(seconds=3600)
    assert deferred.value.method_name == "resume_submission"
    assert len(log_entries(amc_env, "GET", CREATE_PATH)) == 1
    assert len(log_entries(amc_env, "POST", CREATE_PATH)) == 0
    execution_id = create_operator(quota_day_start="00:00:01").resume_submission(context(store))
    assert amc_env.admin.execution(INSTANCE, execution_id)["execution"]["workflowExecutionId"] == execution_id
    account_faults(amc_env)
    assert_single_execution(amc_env)


@pytest.mark.parametrize(
    ("kind", "fields", "error"),
    [
        ("status", {"status": 500}, AmcServerError),
        ("status", {"status": 502}, AmcServerError),
        ("status", {"status": 503, "retry_after": 0}, AmcServerError),
        ("status", {"status": 504}, AmcServerError),
        ("reset", {}, AmcTransportError),
    ],
    ids=["500", "502", "503", "504", "reset"],
)
def test_create_is_never_blindly_retried_and_the_next_try_submits_once(
    amc_env: EmulatorServer, kind: str, fields: dict[str, Any], error: type[Exception]
) -> None:
    """A 5xx / reset on the create may mean AMC processed it: the client does not repeat the POST.
    The emulator fails these before processing, so Airflow's next try submits exactly once."""
    amc_env.admin.fault(kind, method="POST", path=CREATE_PATH, count=1, **fields)
    store = InMemoryTaskStateStore()
    with pytest.raises(error):
        submit(amc_env, store)
    assert len(log_entries(amc_env, "POST", CREATE_PATH)) == 1  # not retried by the client
    marker = store.get(STATE_KEY)  # the submission marker written before the create call ...
    assert marker and "submitted_at" in marker and "execution_id" not in marker  # ... and no id
    record("clear_failures")
    submit(amc_env, store)  # Airflow's retry of the task
    account_faults(amc_env)
    assert_single_execution(amc_env)
    record("tasks_survived")


def test_lost_create_response_then_retry_does_not_duplicate(amc_env: EmulatorServer) -> None:
    """The create reaches AMC but its answer never arrives (slower than the client timeout).

    The client raises AmcTransportError without retrying; Airflow's next try must then reattach to
    the execution AMC did create (or fail clearly) instead of submitting a second one.
    """
    amc_env.admin.fault("delay", method="POST", path=CREATE_PATH, delay_seconds=3, count=1)
    store = InMemoryTaskStateStore()
    with pytest.raises(AmcTransportError, match="not retried"):
        submit(amc_env, store)
    account_faults(amc_env)
    within(10, lambda: _wait_for(lambda: executions_created(amc_env) == 1))  # AMC did create it
    try:
        submit(amc_env, store)  # the next try
    except Exception as exc:  # failing clearly is acceptable: it must name the risk
        assert "execution" in str(exc).lower()
        record("clear_failures")
        return
    assert_single_execution(amc_env)
    record("tasks_survived")


def _wait_for(check: Any) -> None:
    import time

    while not check():
        time.sleep(0.05)


# ---- status (sensor poke), downloadUrls and download (completion) --------------------------------
@pytest.mark.parametrize("path", [STATUS_PATH, URLS_PATH, DOWNLOAD_PATH], ids=["status", "urls", "download"])
@pytest.mark.parametrize("burst", list(BURSTS), ids=list(BURSTS))
def test_sensor_poke_survives_faults(amc_env: EmulatorServer, path: str, burst: str) -> None:
    execution_id = submit(amc_env)
    finish_executions(amc_env)
    kind, fields = BURSTS[burst]
    fields = dict(fields)
    injected = fields.pop("count")
    amc_env.admin.fault(kind, method="GET", path=path, count=injected, **fields)
    with temp_table() as table:
        task = sensor(execution_id, pg_conn_id="amc_reliability_pg", table=table)
        result = within(40, lambda: task.poke(context()))
        metadata = result.xcom_value
        expected = amc_env.admin.result_summary(INSTANCE, execution_id)
        rows = pg_rows(table)
    faults = account_faults(amc_env, at_least=injected)
    assert faults == injected
    if [row["row_count"] for row in rows] != [expected["rows"]]:
        record("records_lost")
    assert metadata["row_count"] == expected["rows"] and metadata["size_bytes"] == expected["bytes"]
    assert [(row["row_count"], row["size_bytes"]) for row in rows] == [(expected["rows"], expected["bytes"])]
    parts = len(metadata["files"])
    # list, quota check (a list call unless a recent count is cached), create, status, workflow (its
    # CSV characters), urls, parts
    assert_no_storm(amc_env, faults, normal_calls=1 + 1 + 1 + 1 + 1 + 1 + parts)
    assert_single_execution(amc_env)
    record("tasks_survived")


# ---- trigger (async client) -------------------------------------------------------------------
@pytest.mark.parametrize("burst", list(BURSTS), ids=list(BURSTS))
def test_trigger_survives_status_faults(amc_env: EmulatorServer, burst: str) -> None:
    execution_id = submit(amc_env)
    finish_executions(amc_env)
    kind, fields = BURSTS[burst]
    fields = dict(fields)
    injected = fields.pop("count")
    amc_env.admin.fault(kind, method="GET", path=STATUS_PATH, count=injected, **fields)
    event = first_event(fast_trigger(execution_id), timeout=40)
    assert event["status"] == "success", event
    assert account_faults(amc_env, at_least=injected) == injected
    task = sensor(execution_id)
    metadata = task.execute_complete(context(), event)
    assert metadata["execution_id"] == execution_id and metadata["row_count"] >= 0
    assert_single_execution(amc_env)
    record("tasks_survived")


def test_trigger_outlasts_more_errors_than_one_call_retries(amc_env: EmulatorServer) -> None:
    """7 consecutive 503s: the first poll's 5 attempts fail, the trigger counts one error and polls again."""
    execution_id = submit(amc_env)
    finish_executions(amc_env)
    amc_env.admin.fault("status", method="GET", path=STATUS_PATH, status=503, retry_after=0, count=7)
    event = first_event(fast_trigger(execution_id), timeout=40)
    assert event["status"] == "success", event
    faults = account_faults(amc_env)
    assert faults == 7
    assert len(log_entries(amc_env, "GET", STATUS_PATH)) == 8  # no extra polls
    record("tasks_survived")


def test_trigger_gives_a_clear_error_after_its_error_budget(amc_env: EmulatorServer) -> None:
    execution_id = submit(amc_env)
    amc_env.admin.fault("status", method="GET", path=STATUS_PATH, status=500, count=100)
    event = first_event(fast_trigger(execution_id, max_consecutive_errors=2), timeout=40)
    assert event["status"] == "error" and "500" in event["message"], event
    attempts = len(log_entries(amc_env, "GET", STATUS_PATH))
    assert attempts == 2 * 5  # 2 polls x max_attempts: bounded, no storm
    account_faults(amc_env)
    with pytest.raises(Exception, match="Waiting for AMC execution"):
        sensor(execution_id).execute_complete(context(), event)
    record("clear_failures")


# ---- a throttled API under several concurrent-ish tasks ---------------------------------------
def test_throttled_api_all_tasks_complete(amc_env: EmulatorServer) -> None:
    amc_env.admin.throttle(rate=4, burst=2)
    try:
        ids = [
            within(30, lambda n=n: submit(amc_env, workflow_execution_timeout_seconds=900 + n))
            for n in range(4)
        ]
        finish_executions(amc_env)
        outputs = [within(60, lambda eid=eid: sensor(eid).poke(context()).xcom_value) for eid in ids]
    finally:
        amc_env.admin.clear_throttle()
    assert [output["execution_id"] for output in outputs] == ids
    throttled = account_faults(amc_env)
    assert executions_created(amc_env) == 4
    parts = sum(len(output["files"]) for output in outputs)
    # (list, quota check's list call or none, create), (status, workflow, urls)
    assert_no_storm(amc_env, throttled, normal_calls=4 * 3 + 4 * 3 + parts)
    record("tasks_survived", 4)


# ---- token expiry mid-run ---------------------------------------------------------------------
@pytest.mark.parametrize("status", [401, 403])
def test_token_expiry_mid_run_refreshes_once(amc_env: EmulatorServer, status: int) -> None:
    execution_id = submit(amc_env)
    task = sensor(execution_id)
    assert task.poke(context()) is False  # still pending; the hook's token is cached
    before = len(log_entries(amc_env, "POST", TOKEN_PATH))
    amc_env.admin.expire_tokens(status=status)
    finish_executions(amc_env)
    metadata = task.poke(context()).xcom_value
    assert metadata["execution_id"] == execution_id
    refused = [entry for entry in log_entries(amc_env, path=STATUS_PATH) if entry["status"] == status]
    assert len(refused) == 1
    assert len(log_entries(amc_env, "POST", TOKEN_PATH)) == before + 1
    record("faults_injected")
    record("tasks_survived")


@pytest.mark.parametrize("status", [401, 403])
def test_token_expiry_while_deferred_refreshes_once(amc_env: EmulatorServer, status: int) -> None:
    execution_id = submit(amc_env)
    amc_env.admin.expire_tokens(status=status)
    finish_executions(amc_env)
    tokens_before = len(log_entries(amc_env, "POST", TOKEN_PATH))
    event = first_event(fast_trigger(execution_id), timeout=30)
    assert event["status"] == "success", event
    assert len(log_entries(amc_env, "POST", TOKEN_PATH)) == tokens_before + 1
    record("faults_injected")
    record("tasks_survived")
