"""The e2e harness works: real api-server, scheduler, dag-processor and triggerer on Postgres.

Uses the two tiny DAGs in ``stack_dags/``: ``stack_smoke`` (Params with an enum, a deferrable
standard-provider sensor, a task returning an XCom) and ``stack_daily`` (daily
``CronDataIntervalTimetable``, returns its data interval) for the backfill check.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow_stack import AirflowApiError, AirflowStack, AirflowStackError, StackSpec

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

AIRFLOW_STACK = StackSpec(
    dags_folder=Path(__file__).parent / "stack_dags",
    expect_dags=("stack_smoke", "stack_daily"),
)


@pytest.fixture(scope="module")
def smoke_run(airflow_stack: AirflowStack) -> str:
    """One REST-triggered run of ``stack_smoke`` with conf, finished; returns its run id."""
    airflow_stack.unpause("stack_smoke")
    run_id = airflow_stack.trigger_dag("stack_smoke", conf={"size": "large", "wait_seconds": 2})
    assert airflow_stack.wait_for_run("stack_smoke", run_id, timeout=120) == "success"
    return run_id


def test_triggered_run_succeeds_with_conf_in_xcom(airflow_stack: AirflowStack, smoke_run: str) -> None:
    states = {ti["task_id"]: ti["state"] for ti in airflow_stack.task_instances("stack_smoke", smoke_run)}
    assert states == {"wait": "success", "report": "success"}
    assert airflow_stack.xcom("stack_smoke", smoke_run, "report") == {"size": "large", "run_id": smoke_run}


def test_sensor_was_deferred_and_the_triggerer_fired_its_trigger(
    airflow_stack: AirflowStack, smoke_run: str
) -> None:
    evidence = airflow_stack.deferral_evidence("stack_smoke", smoke_run, "wait")
    assert evidence.deferred, evidence.events
    # deferred between two runs on a worker: the sensor resumed on a worker after the trigger fired
    assert evidence.events.index("deferred") < len(evidence.events) - 1
    assert evidence.events[-1] == "success"
    # The triggerer ran the trigger: its start line is in the task's trigger log. (Airflow 3.3.2 may
    # write the "fired"/"completed" lines to the triggerer's own log instead when the trigger ends
    # fast, so those are not required; the audit log shows deferred -> success.)
    assert evidence.trigger_started, evidence.trigger_log_lines
    assert airflow_stack.trigger_log_files("stack_smoke", smoke_run, "wait")
    # the task that never deferred has no such evidence (the check can tell the difference)
    plain = airflow_stack.deferral_evidence("stack_smoke", smoke_run, "report")
    assert not plain.deferred and not plain.trigger_started and not plain.trigger_fired


def test_invalid_param_is_refused_and_creates_no_run(airflow_stack: AirflowStack, smoke_run: str) -> None:
    before = {run["dag_run_id"] for run in airflow_stack.dag_runs("stack_smoke")}
    with pytest.raises(AirflowApiError) as refused:
        airflow_stack.trigger_dag("stack_smoke", conf={"size": "huge"})
    assert 400 <= refused.value.response.status_code < 500
    assert "size" in refused.value.response.text and "small" in refused.value.response.text
    assert {run["dag_run_id"] for run in airflow_stack.dag_runs("stack_smoke")} == before


def test_backfill_creates_one_successful_run_per_day(airflow_stack: AirflowStack) -> None:
    # Backfill runs only start while the DAG is unpaused (catchup=False: unpausing adds one
    # scheduled run for the latest interval, which is filtered out below).
    airflow_stack.unpause("stack_daily")
    airflow_stack.cli(
        "backfill",
        "create",
        "--dag-id",
        "stack_daily",
        "--from-date",
        "2024-01-01",
        "--to-date",
        "2024-01-02",
    )
    runs = [run for run in airflow_stack.dag_runs("stack_daily") if run["run_type"] == "backfill"]
    intervals = [(run["data_interval_start"], run["data_interval_end"]) for run in runs]
    assert intervals == [
        ("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"),
        ("2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"),
    ]
    for run in runs:
        assert airflow_stack.wait_for_run("stack_daily", run["dag_run_id"], timeout=120) == "success"
    returned = [airflow_stack.xcom("stack_daily", run["dag_run_id"], "interval") for run in runs]
    assert returned == [
        {"start": "2024-01-01T00:00:00+00:00", "end": "2024-01-02T00:00:00+00:00"},
        {"start": "2024-01-02T00:00:00+00:00", "end": "2024-01-03T00:00:00+00:00"},
    ]


def test_cli_failures_raise_with_the_command_output(airflow_stack: AirflowStack) -> None:
    with pytest.raises(AirflowStackError, match="stack_nope"):
        airflow_stack.cli("dags", "details", "stack_nope")
