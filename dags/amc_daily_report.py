"""Daily AMC report: run a saved AMC workflow over each day's data interval, in a named time zone.

- Workflows as code: the first task, ``upsert_workflow``, creates or updates the saved workflow
  from ``sql/demo_campaign_report.sql`` (next to this file) and its declared parameter; it writes
  nothing when AMC already has that definition.
- Results land in Postgres: ``load_to_postgres`` copies each run's result rows into the table
  ``amc_campaign_report`` (one ``amc_execution_id`` per run; re-running a day replaces its rows).

- Schedule: ``CronDataIntervalTimetable`` at local midnight, so every run has a real one-day data
  interval ``[day 00:00, next day 00:00)`` in ``AMC_TIME_ZONE`` (a bare cron string would give
  zero-length intervals in Airflow 3.3). The AMC window is that interval, end exclusive.
- Backfills: ``airflow dags unpause amc_daily_report`` first (example DAGs start paused, and a
  backfill of a paused DAG stays queued without a message), then ``airflow backfill create --dag-id
  amc_daily_report --from-date 2026-01-01T00:00:00-05:00 --to-date 2026-01-31T00:00:00-05:00
  --max-active-runs 3``: each run queries exactly its own New York day. A bare ``2026-01-01`` means
  UTC midnight, i.e. 19:00 the day before in New York, so the first New York day is skipped.
- Asset: ``wait_for_execution`` updates the asset ``amc://<instance>/<workflow>``; its events carry the
  execution id, window, row count, size and output location (see ``amc_report_consumer``).
- Concurrency: AMC runs at most 10 executions per instance at once, so the AMC tasks use the pool
  ``amc_<instance_id>`` (create it with ``--include-deferred`` and 10 slots: a deferred sensor
  keeps its slot while its execution runs), and ``max_active_runs`` keeps a long backfill queued
  instead of over AMC's limits.

- Data lag: AMC's data is complete about 48 h after the fact, so ``submit_execution`` waits
  (deferred, no worker slot) until its window ended ``AMC_MIN_DATA_AGE_HOURS`` (48) hours ago:
  the run at midnight queries yesterday two days later, once it is complete.

Configuration through environment variables (defaults target the local emulator): AMC_INSTANCE_ID,
AMC_WORKFLOW_ID, AMC_TIME_ZONE, AMC_POOL, AMC_OUTPUT_PATH, AMC_POKE_INTERVAL, AMC_MIN_DATA_AGE_HOURS,
AMC_WORKFLOW_SQL_FILE
(relative to this folder; empty: do not manage the workflow's definition) and AMC_LOAD_TABLE
(empty: no load step).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, task

from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator
from airflow_provider_amc.operators.workflow import AmcUpsertWorkflowOperator
from airflow_provider_amc.sensors.amc import AmcExecutionSensor
from airflow_provider_amc.transfers.amc_to_postgres import AmcToPostgresOperator

INSTANCE_ID = os.environ.get("AMC_INSTANCE_ID", "amcdemo0001")
WORKFLOW_ID = os.environ.get("AMC_WORKFLOW_ID", "demo_campaign_report")
TIME_ZONE = os.environ.get("AMC_TIME_ZONE", "America/New_York")
POOL = os.environ.get("AMC_POOL", f"amc_{INSTANCE_ID}")
OUTPUT_PATH = os.environ.get("AMC_OUTPUT_PATH") or None
POKE_INTERVAL = float(os.environ.get("AMC_POKE_INTERVAL", "300"))
WORKFLOW_SQL_FILE = os.environ.get("AMC_WORKFLOW_SQL_FILE", "sql/demo_campaign_report.sql")
LOAD_TABLE = os.environ.get("AMC_LOAD_TABLE", "amc_campaign_report")
MIN_DATA_AGE = timedelta(hours=float(os.environ.get("AMC_MIN_DATA_AGE_HOURS", "48")))
#: The parameters the SQL uses as CUSTOM_PARAMETER('...'), declared with the workflow.
INPUT_PARAMETERS = [
    {
        "name": "min_impressions",
        "dataType": "LONG",
        "columnType": "METRIC",
        "defaultValue": "0",
        "description": "Only campaigns with at least this many impressions.",
        "displayName": "Minimum impressions",
    }
]
#: The daily report as an Airflow asset: each successful day's wait task emits an event whose extra
#: holds the execution's metadata; ``amc_report_consumer`` is scheduled on it.
DAILY_REPORT = Asset(name="amc_daily_report", uri=f"amc://{INSTANCE_ID}/{WORKFLOW_ID}")
SAVED_RESULTS = (OUTPUT_PATH + "/{{ dag.dag_id }}/{{ ds }}") if OUTPUT_PATH else None

with DAG(
    dag_id="amc_daily_report",
    description="Run an AMC saved workflow over each day's data interval and record its output",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=TIME_ZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIME_ZONE),
    catchup=False,
    max_active_runs=3,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2), "pool": POOL},
    tags=["amc", "example"],
) as dag:
    submit = AmcCreateExecutionOperator(
        task_id="submit_execution",
        workflow_id=WORKFLOW_ID,
        instance_id=INSTANCE_ID,
        time_window_time_zone=TIME_ZONE,
        output_format="CSV",
        min_data_age=MIN_DATA_AGE,  # wait (deferred) until the day's data is complete
    )

    wait = AmcExecutionSensor(
        task_id="wait_for_execution",
        execution_id=submit.output,
        instance_id=INSTANCE_ID,
        poke_interval=POKE_INTERVAL,
        timeout=int(timedelta(hours=12).total_seconds()),
        output_path=SAVED_RESULTS,
        outlets=[DAILY_REPORT],
    )

    if WORKFLOW_SQL_FILE:
        upsert = AmcUpsertWorkflowOperator(
            task_id="upsert_workflow",
            workflow_id=WORKFLOW_ID,
            sql_file=WORKFLOW_SQL_FILE,
            input_parameters=INPUT_PARAMETERS,
            instance_id=INSTANCE_ID,
        )
        upsert >> submit

    if LOAD_TABLE:
        load = AmcToPostgresOperator(
            task_id="load_to_postgres",
            execution_id=submit.output,
            instance_id=INSTANCE_ID,
            table=LOAD_TABLE,
            source_path=SAVED_RESULTS,  # the sensor's saved copy, else download again
            pool="default_pool",
        )
        wait >> load

    @task(pool="default_pool")
    def summarise(output: dict) -> str:
        """Log one line per run: what ran, over which window, and what came out."""
        window = output["time_window"]
        line = (
            f"AMC execution {output['execution_id']} ({output['workflow_id']}) over "
            f"[{window['start']}, {window['end']}) {window['time_zone']}: {output['row_count']} rows, "
            f"{output['size_bytes']} bytes at {output['output_location']}"
        )
        print(line)
        return line

    summarise(wait.output)

if __name__ == "__main__":
    dag.test()
