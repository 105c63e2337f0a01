"""The example DAGs (``dags/``) on a real Airflow deployment against the AMC emulator.

One stack for the module (api-server, scheduler, dag-processor, triggerer; LocalExecutor; Postgres
metadata DB) parsing the project's own ``dags/`` folder. Its processes reach a module-scoped
emulator over HTTP and write the AMC execution table into a fresh Postgres database of their own.

* ``amc_manual_report`` triggered through the REST API with Params: the sensor defers to the
  triggerer, and the XCom and the execution row carry the requested window, time zone, format and
  the measured output (compared with the emulator's own result summary).
* Bad Params: a schema violation is refused at trigger time; a window ending before it starts
  fails ``submit_execution`` before any AMC call.
* ``airflow backfill create`` over three days of ``amc_daily_report``: one execution per local day
  in America/New_York; clearing one finished run submits exactly one new execution.
* ``amc_fanout_report`` over two instances reached through two connections (the Variable
  ``amc_fanout_targets``): one execution per instance, each mapped task instance in its instance's
  pool, both instances' rows in one table with their ``amc_instance_id``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow_stack import AirflowApiError, AirflowStack, StackSpec, scratch_database
from psycopg.rows import dict_row

from airflow_env import amc_connection_env, postgres_connection_env
from airflow_provider_amc.emulator.defaults import DEFAULT_INSTANCE_ID, DEMO_WORKFLOW_ID, SECOND_INSTANCE_ID
from airflow_provider_amc.emulator.testing import EmulatorServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
MANUAL_DAG = "amc_manual_report"
DAILY_DAG = "amc_daily_report"
FANOUT_DAG = "amc_fanout_report"
FANOUT_TABLE = "amc_fanout_report"  # the fan-out DAG's default AMC_FANOUT_TABLE
#: The fan-out targets: two instances, each through its own connection (two accounts).
FANOUT_TARGETS = [
    {"amc_conn_id": "amc_default", "instance_id": DEFAULT_INSTANCE_ID},
    {"amc_conn_id": "amc_second", "instance_id": SECOND_INSTANCE_ID},
]
FANOUT_POOLS = {target["instance_id"]: f"amc_{target['instance_id']}" for target in FANOUT_TARGETS}
DAILY_ZONE = "America/New_York"  # the daily DAG's default AMC_TIME_ZONE
SUBMIT, WAIT = "submit_execution", "wait_for_execution"
CREATE_PATH = rf"^/amc/reporting/{DEFAULT_INSTANCE_ID}/workflowExecutions/?$"
TABLE = "amc_executions"
LOAD_TABLE = "amc_campaign_report"  # the daily DAG's default AMC_LOAD_TABLE
RUN_TIMEOUT = 240.0  # seconds; a run takes ~20 s, the margin covers a loaded 2-core CI box

# Executions stay PENDING 2 s and RUNNING 10 s (emulator speed 1): long enough that the sensor's
# first check on the worker sees a live execution and the trigger polls (every 2 s) more than
# once, so the trigger never fires within a heartbeat of the deferral (see docs/e2e.md).
PENDING_SECONDS, RUNNING_SECONDS = 2, 10


@pytest.fixture(scope="module")
def stack_emulator() -> Iterator[EmulatorServer]:
    """This module's own emulator (its request log and quota are not shared with other tests)."""
    with EmulatorServer(seed=0, speed=1.0) as server:
        server.admin.script("*", pending_seconds=PENDING_SECONDS, running_seconds=RUNNING_SECONDS)
        yield server


@pytest.fixture(scope="module")
def records_dsn() -> Iterator[str]:
    """A fresh Postgres database for the AMC execution table; dropped after the module."""
    with scratch_database("amc_e2e") as name:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"


def _stack_env(fixture: Any) -> dict[str, str]:
    url = fixture("stack_emulator").url
    return {
        **amc_connection_env(url),
        **amc_connection_env(url, "amc_second", SECOND_INSTANCE_ID),
        **postgres_connection_env(dsn=fixture("records_dsn")),
        "AMC_POKE_INTERVAL": "2",
        "AIRFLOW_VAR_AMC_FANOUT_TARGETS": json.dumps(FANOUT_TARGETS),
    }


AIRFLOW_STACK = StackSpec(
    dags_folder=REPO / "dags",
    expect_dags=(MANUAL_DAG, DAILY_DAG, FANOUT_DAG),
    env=_stack_env,
    pools={pool: 10 for pool in FANOUT_POOLS.values()},  # amc_amcdemo0001 is the daily DAG's too
)


# ---- helpers -------------------------------------------------------------------------------------
def last_seq(emulator: EmulatorServer) -> int:
    """The sequence number of the newest logged request (0 when none): a bookmark for ``since``."""
    return max((entry["seq"] for entry in emulator.admin.requests()), default=0)


def create_calls(emulator: EmulatorServer, since: int = 0) -> list[dict[str, Any]]:
    """The create-execution requests logged after ``since`` (any status).

    ``dryRun`` executions (an ``upsert_workflow`` task may validate the SQL with one) are left out:
    they are not report runs and use no quota.
    """
    return [
        entry
        for entry in emulator.admin.requests(since)
        if entry["method"] == "POST"
        and re.search(CREATE_PATH, entry["path"])
        and not (entry.get("body") or {}).get("dryRun")
    ]


def execution_rows(dsn: str, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Rows of the AMC execution table matching ``where`` (ordered by window start)."""
    query = f"SELECT * FROM {TABLE} WHERE {where} ORDER BY time_window_start, created_at"
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def raw_task_log(stack: AirflowStack, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
    """The task log as the API returns it (ndjson), exception details included.

    ``AirflowStack.task_log`` keeps only each record's ``event`` text; a failure's message is in
    the record's ``error_detail``.
    """
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
    response = stack.api("GET", path, headers={"Accept": "application/x-ndjson"})
    assert response.ok, response.text
    return response.text


def loaded_rows(dsn: str) -> dict[str, int]:
    """Rows the daily DAG's ``load_to_postgres`` task copied, per AMC execution id."""
    query = f"SELECT amc_execution_id, count(*) FROM {LOAD_TABLE} GROUP BY amc_execution_id"
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute(query).fetchall())  # type: ignore[arg-type]


def task_states(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, str]:
    return {ti["task_id"]: ti["state"] for ti in stack.task_instances(dag_id, run_id)}


def assert_output_matches_emulator(emulator: EmulatorServer, output: dict[str, Any]) -> dict[str, Any]:
    """row_count and size_bytes are what the emulator says its result files hold."""
    summary = emulator.admin.result_summary(DEFAULT_INSTANCE_ID, output["execution_id"])
    assert summary["status"] == "SUCCEEDED"
    assert (output["row_count"], output["size_bytes"]) == (summary["rows"], summary["bytes"])
    return summary


# ---- 1. manual run with Params ---------------------------------------------------------------------
MANUAL_CONF = {
    "workflow_id": DEMO_WORKFLOW_ID,
    "time_window_start": "2026-03-01T00:00:00",
    "time_window_end": "2026-03-08T00:00:00",
    "time_window_time_zone": "Europe/Berlin",
    "output_format": "PARQUET",
    "parameter_values": {"min_impressions": 100},
}


@pytest.fixture(scope="module")
def manual_run(airflow_stack: AirflowStack, stack_emulator: EmulatorServer) -> tuple[str, int]:
    """One finished REST-triggered run of the manual DAG: (run id, request-log bookmark before it)."""
    since = last_seq(stack_emulator)
    airflow_stack.unpause(MANUAL_DAG)
    run_id = airflow_stack.trigger_dag(MANUAL_DAG, conf=MANUAL_CONF)
    state = airflow_stack.wait_for_run(MANUAL_DAG, run_id, timeout=RUN_TIMEOUT)
    assert state == "success", task_states(airflow_stack, MANUAL_DAG, run_id)
    return run_id, since


def test_manual_run_defers_and_records_the_requested_window(
    airflow_stack: AirflowStack, stack_emulator: EmulatorServer, manual_run: tuple[str, int], records_dsn: str
) -> None:
    run_id, since = manual_run
    assert task_states(airflow_stack, MANUAL_DAG, run_id) == {SUBMIT: "success", WAIT: "success"}

    # The sensor really waited in the triggerer and resumed on a worker.
    evidence = airflow_stack.deferral_evidence(MANUAL_DAG, run_id, WAIT)
    assert evidence.deferred, evidence.events
    assert evidence.events.index("deferred") < len(evidence.events) - 1
    assert evidence.events[-1] == "success", evidence.events
    # The triggerer ran the trigger: its start line is in the task's trigger log. (Airflow 3.3.2 may
    # write the "fired"/"completed" lines to the triggerer's own log instead when the trigger ends
    # fast, so those are not required; the audit log shows deferred -> success.)
    assert evidence.trigger_started, evidence.trigger_log_lines

    # Exactly one create call, carrying the Params.
    calls = create_calls(stack_emulator, since)
    assert len(calls) == 1, calls
    body = calls[0]["body"]
    assert body["workflowId"] == DEMO_WORKFLOW_ID
    assert (body["timeWindowStart"], body["timeWindowEnd"], body["timeWindowTimeZone"]) == (
        "2026-03-01T00:00:00",
        "2026-03-08T00:00:00",
        "Europe/Berlin",
    )
    assert body["outputFormat"] == "PARQUET"
    assert body["parameterValues"] == {"min_impressions": 100}
    assert "sqlQuery" not in str(body)

    execution_id = airflow_stack.xcom(MANUAL_DAG, run_id, SUBMIT)
    output = airflow_stack.xcom(MANUAL_DAG, run_id, WAIT)
    assert output["execution_id"] == execution_id
    assert output["status"] == "completed"
    assert output["output_format"] == "PARQUET"
    assert output["time_window"] == {
        "start": "2026-03-01T00:00:00",
        "end": "2026-03-08T00:00:00",
        "time_zone": "Europe/Berlin",
        "type": "EXPLICIT",
        "start_utc": "2026-02-28T23:00:00Z",  # as AMC ran it (issue 16: both views recorded)
        "end_utc": "2026-03-07T23:00:00Z",
    }
    summary = assert_output_matches_emulator(stack_emulator, output)
    assert summary["format"] == "PARQUET" and summary["rows"] > 0

    [row] = execution_rows(records_dsn, "execution_id = %s", (execution_id,))
    assert row["status"] == "completed" and row["amc_status"] == "SUCCEEDED"
    assert (row["time_window_start"], row["time_window_end"], row["time_window_time_zone"]) == (
        "2026-03-01T00:00:00",
        "2026-03-08T00:00:00",
        "Europe/Berlin",
    )
    assert (row["time_window_type"], row["output_format"]) == ("EXPLICIT", "PARQUET")
    assert row["parameter_values"] == {"min_impressions": 100}
    assert (row["row_count"], row["size_bytes"]) == (summary["rows"], summary["bytes"])
    assert row["output_location"] == output["output_location"]
    assert (row["dag_id"], row["run_id"], row["task_id"]) == (MANUAL_DAG, run_id, SUBMIT)
    assert row["completed_at"] is not None


# ---- 2. bad Params -------------------------------------------------------------------------------
def test_unknown_output_format_is_refused_at_trigger_time(
    airflow_stack: AirflowStack, stack_emulator: EmulatorServer, manual_run: tuple[str, int]
) -> None:
    since = last_seq(stack_emulator)
    runs_before = {run["dag_run_id"] for run in airflow_stack.dag_runs(MANUAL_DAG)}
    with pytest.raises(AirflowApiError) as refused:
        airflow_stack.trigger_dag(MANUAL_DAG, conf={**MANUAL_CONF, "output_format": "JSON"})
    response = refused.value.response
    assert 400 <= response.status_code < 500
    assert "output_format" in response.text and "PARQUET" in response.text
    assert {run["dag_run_id"] for run in airflow_stack.dag_runs(MANUAL_DAG)} == runs_before
    time.sleep(3)  # a scheduler that (wrongly) started something would have called AMC by now
    assert create_calls(stack_emulator, since) == []


def test_window_ending_before_it_starts_fails_submit_before_any_amc_call(
    airflow_stack: AirflowStack, stack_emulator: EmulatorServer, manual_run: tuple[str, int]
) -> None:
    # JSON schema cannot relate two fields, so the trigger is accepted and the submit task refuses.
    since = last_seq(stack_emulator)
    conf = {**MANUAL_CONF, "time_window_start": "2026-03-08T00:00:00", "time_window_end": "2026-03-01"}
    run_id = airflow_stack.trigger_dag(MANUAL_DAG, conf=conf)
    assert airflow_stack.wait_for_run(MANUAL_DAG, run_id, timeout=RUN_TIMEOUT) == "failed"
    assert task_states(airflow_stack, MANUAL_DAG, run_id) == {SUBMIT: "failed", WAIT: "upstream_failed"}
    log = raw_task_log(airflow_stack, MANUAL_DAG, run_id, SUBMIT)
    assert "AirflowFailException" in log, log[-3000:]
    assert "time_window_end: the end 2026-03-01T00:00:00 must be after the start" in log, log[-3000:]
    workflow_calls = [e for e in stack_emulator.admin.requests(since) if "/workflowExecutions" in e["path"]]
    assert workflow_calls == []


# ---- 3. backfill and re-run ------------------------------------------------------------------------
BACKFILL_DAYS = ("2026-01-05", "2026-01-06", "2026-01-07")


def _window(day: str) -> tuple[str, str]:
    """The AMC window of one local day: [day 00:00, next day 00:00)."""
    next_day = date.fromisoformat(day) + timedelta(days=1)
    return f"{day}T00:00:00", f"{next_day.isoformat()}T00:00:00"


EXPECTED_WINDOWS = [_window(day) for day in BACKFILL_DAYS]


def _backfill_window_calls(emulator: EmulatorServer, since: int) -> list[dict[str, Any]]:
    """Create calls after ``since`` for one of the backfilled days (the unpause adds a recent run)."""
    windows = set(EXPECTED_WINDOWS)
    return [
        call
        for call in create_calls(emulator, since)
        if (call["body"].get("timeWindowStart"), call["body"].get("timeWindowEnd")) in windows
    ]


@pytest.fixture(scope="module")
def backfill(airflow_stack: AirflowStack, stack_emulator: EmulatorServer) -> dict[str, Any]:
    """A finished three-day backfill of the daily DAG: its runs and the request-log bookmark."""
    since = last_seq(stack_emulator)
    # Backfill runs start only while the DAG is unpaused (catchup=False: unpausing also schedules
    # one run for the latest interval, which the checks below leave out).
    airflow_stack.unpause(DAILY_DAG)
    # Bounds as local midnights in the DAG's zone: the backfill takes the logical dates (= interval
    # starts) between them, both inclusive.
    first, last = BACKFILL_DAYS[0], BACKFILL_DAYS[-1]
    airflow_stack.cli(
        "backfill",
        "create",
        "--dag-id",
        DAILY_DAG,
        "--from-date",
        f"{first}T00:00:00-05:00",
        "--to-date",
        f"{last}T00:00:00-05:00",
        "--max-active-runs",
        "3",
    )
    runs = [run for run in airflow_stack.dag_runs(DAILY_DAG) if run["run_type"] == "backfill"]
    states = {
        run["dag_run_id"]: airflow_stack.wait_for_run(DAILY_DAG, run["dag_run_id"], timeout=RUN_TIMEOUT)
        for run in runs
    }
    return {"since": since, "runs": runs, "states": states}


def test_backfill_runs_one_execution_per_local_day(
    airflow_stack: AirflowStack, stack_emulator: EmulatorServer, backfill: dict[str, Any], records_dsn: str
) -> None:
    runs = backfill["runs"]
    # Local midnights in America/New_York (EST, UTC-5 in January), consecutive, end exclusive.
    assert [(run["data_interval_start"], run["data_interval_end"]) for run in runs] == [
        ("2026-01-05T05:00:00Z", "2026-01-06T05:00:00Z"),
        ("2026-01-06T05:00:00Z", "2026-01-07T05:00:00Z"),
        ("2026-01-07T05:00:00Z", "2026-01-08T05:00:00Z"),
    ]
    run_ids = [run["dag_run_id"] for run in runs]
    assert [backfill["states"][run_id] for run_id in run_ids] == ["success"] * 3, {
        run_id: task_states(airflow_stack, DAILY_DAG, run_id) for run_id in run_ids
    }
    for run_id in run_ids:
        instances = airflow_stack.task_instances(DAILY_DAG, run_id)
        # Every task succeeded on its first try: a retry (the DAG allows 2) would hide a flaky
        # deferral round trip behind a 2-minute retry delay.
        retried = [ti["task_id"] for ti in instances if ti["try_number"] != 1]
        assert {(ti["task_id"], ti["state"], ti["try_number"]) for ti in instances} == {
            (ti["task_id"], "success", 1) for ti in instances
        }, {task: airflow_stack.task_log(DAILY_DAG, run_id, task, 1)[-4000:] for task in retried}
        assert airflow_stack.deferral_evidence(DAILY_DAG, run_id, WAIT).deferred

    calls = _backfill_window_calls(stack_emulator, backfill["since"])
    bodies = sorted((call["body"] for call in calls), key=lambda body: body["timeWindowStart"])
    assert [(b["timeWindowStart"], b["timeWindowEnd"]) for b in bodies] == EXPECTED_WINDOWS
    assert {b["timeWindowTimeZone"] for b in bodies} == {DAILY_ZONE}
    assert {b["workflowId"] for b in bodies} == {DEMO_WORKFLOW_ID}

    rows = execution_rows(records_dsn, "dag_id = %s AND run_id = ANY(%s)", (DAILY_DAG, run_ids))
    assert [(row["time_window_start"], row["time_window_end"]) for row in rows] == EXPECTED_WINDOWS
    assert [row["run_id"] for row in rows] == run_ids
    loaded = loaded_rows(records_dsn)
    for row in rows:
        assert (row["status"], row["time_window_time_zone"], row["output_format"]) == (
            "completed",
            DAILY_ZONE,
            "CSV",
        )
        assert_output_matches_emulator(stack_emulator, dict(row))
        assert loaded.get(row["execution_id"], 0) == row["row_count"], (row["execution_id"], loaded)
    outputs = [airflow_stack.xcom(DAILY_DAG, run_id, WAIT) for run_id in run_ids]
    assert [output["execution_id"] for output in outputs] == [row["execution_id"] for row in rows]


def test_clearing_a_finished_day_submits_exactly_one_new_execution(
    airflow_stack: AirflowStack, stack_emulator: EmulatorServer, backfill: dict[str, Any], records_dsn: str
) -> None:
    run = backfill["runs"][1]
    run_id, window = run["dag_run_id"], EXPECTED_WINDOWS[1]
    assert backfill["states"][run_id] == "success"
    [earlier] = execution_rows(records_dsn, "run_id = %s", (run_id,))
    since = last_seq(stack_emulator)

    body = {"dry_run": False, "dag_run_id": run_id, "only_failed": False, "reset_dag_runs": True}
    response = airflow_stack.api("POST", f"/dags/{DAILY_DAG}/clearTaskInstances", json=body)
    assert response.ok, response.text
    assert SUBMIT in {ti["task_id"] for ti in response.json()["task_instances"]}
    assert airflow_stack.wait_for_run(DAILY_DAG, run_id, timeout=RUN_TIMEOUT) == "success", task_states(
        airflow_stack, DAILY_DAG, run_id
    )

    calls = create_calls(stack_emulator, since)
    assert [(c["body"]["timeWindowStart"], c["body"]["timeWindowEnd"]) for c in calls] == [window]
    rows = execution_rows(records_dsn, "run_id = %s", (run_id,))
    assert len(rows) == 2, rows
    [newer] = [row for row in rows if row["execution_id"] != earlier["execution_id"]]
    assert (newer["time_window_start"], newer["time_window_end"]) == window
    assert newer["status"] == "completed" and newer["try_number"] > earlier["try_number"]
    assert airflow_stack.xcom(DAILY_DAG, run_id, SUBMIT) == newer["execution_id"]
    assert airflow_stack.xcom(DAILY_DAG, run_id, WAIT)["execution_id"] == newer["execution_id"]
    # The other days were not touched.
    others = {r["dag_run_id"] for r in backfill["runs"]} - {run_id}
    assert len(execution_rows(records_dsn, "run_id = ANY(%s)", (list(others),))) == 2


def test_rerun_day_is_loaded_once(backfill: dict[str, Any], records_dsn: str) -> None:
    # Runs after the clearing test above (module order); the DAG says "re-running a day replaces
    # its rows" in amc_campaign_report.
    run_id = backfill["runs"][1]["dag_run_id"]
    rows = execution_rows(records_dsn, "run_id = %s", (run_id,))
    assert len(rows) == 2, "run test_clearing_a_finished_day_submits_exactly_one_new_execution first"
    earlier, newer = sorted(rows, key=lambda row: row["created_at"])
    loaded = loaded_rows(records_dsn)
    assert loaded.get(newer["execution_id"], 0) == newer["row_count"], loaded
    assert earlier["execution_id"] not in loaded, (
        f"the earlier execution's {loaded[earlier['execution_id']]} rows are still in {LOAD_TABLE} "
        f"next to the new one's {loaded.get(newer['execution_id'])}: the day is loaded twice"
    )


# ---- 4. fan-out over two instances ------------------------------------------------------------------
FANOUT_DAY = "2026-02-10T00:00:00Z"  # a logical date whose day is long past AMC's 48 h data lag
ANY_CREATE_PATH = r"^/amc/reporting/([^/]+)/workflowExecutions/?$"


def fanout_group(instance_id: str) -> str:
    """The mapped task group of ``instance_id``'s pool in ``amc_fanout_report``."""
    return f"report_{FANOUT_POOLS[instance_id]}"


def test_fanout_runs_one_execution_per_instance_into_one_table(
    airflow_stack: AirflowStack, stack_emulator: EmulatorServer, records_dsn: str
) -> None:
    started = time.monotonic()
    since = last_seq(stack_emulator)
    # Unpausing also schedules the latest day, which waits 48 h for its data: no AMC call.
    airflow_stack.unpause(FANOUT_DAG)
    run_id = airflow_stack.trigger_dag(FANOUT_DAG, logical_date=FANOUT_DAY)
    state = airflow_stack.wait_for_run(FANOUT_DAG, run_id, timeout=RUN_TIMEOUT)
    instances = airflow_stack.task_instances(FANOUT_DAG, run_id)
    assert state == "success", [(ti["task_id"], ti["map_index"], ti["state"]) for ti in instances]
    elapsed = time.monotonic() - started

    # Every mapped task instance ran in its instance's pool (loads in the default pool).
    expected_pools = {
        (f"{fanout_group(instance)}.{task}", 0, pool if task != "load_to_postgres" else "default_pool")
        for instance, pool in FANOUT_POOLS.items()
        for task in (SUBMIT, WAIT, "load_to_postgres")
    }
    assert {(ti["task_id"], ti["map_index"], ti["pool"]) for ti in instances} == expected_pools
    assert {ti["state"] for ti in instances} == {"success"}
    for instance in FANOUT_POOLS:
        events = airflow_stack.task_events(FANOUT_DAG, run_id, f"{fanout_group(instance)}.{WAIT}")
        assert "deferred" in events, (instance, events)

    # Exactly one create call per instance, over the run's day, through that instance's path.
    run = airflow_stack.dag_run(FANOUT_DAG, run_id)
    window = (run["data_interval_start"].removesuffix("Z"), run["data_interval_end"].removesuffix("Z"))
    calls = [
        call
        for call in stack_emulator.admin.requests(since)
        if call["method"] == "POST"
        and re.search(ANY_CREATE_PATH, call["path"])
        and not (call.get("body") or {}).get("dryRun")
    ]
    assert sorted(re.search(ANY_CREATE_PATH, call["path"]).group(1) for call in calls) == sorted(FANOUT_POOLS)
    for call in calls:
        body = call["body"]
        assert body["workflowId"] == DEMO_WORKFLOW_ID
        assert (body["timeWindowStart"][:19], body["timeWindowEnd"][:19]) == tuple(w[:19] for w in window)

    # One table, both instances' rows, each tagged with its instance; counts are the emulator's.
    rows = execution_rows(records_dsn, "dag_id = %s AND run_id = %s", (FANOUT_DAG, run_id))
    assert sorted(row["instance_id"] for row in rows) == sorted(FANOUT_POOLS)
    query = f"SELECT amc_instance_id, amc_execution_id, count(*) FROM {FANOUT_TABLE} GROUP BY 1, 2"
    with psycopg.connect(records_dsn) as conn:
        loaded = {(instance, execution): count for instance, execution, count in conn.execute(query)}
    expected = {}
    for row in rows:
        summary = stack_emulator.admin.result_summary(row["instance_id"], row["execution_id"])
        assert summary["status"] == "SUCCEEDED" and summary["rows"] > 0
        assert row["row_count"] == summary["rows"]
        expected[(row["instance_id"], row["execution_id"])] = summary["rows"]
    assert loaded == expected
    print(f"fan-out run over {len(FANOUT_POOLS)} instances: {elapsed:.1f}s")
