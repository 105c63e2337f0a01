"""A tiny DAG for tests/e2e/test_dag_test.py: submit -> deferrable sensor, one day in Europe/Berlin.

Run as ``python amc_dagtest.py`` (with the test's environment) to execute it once with ``dag.test()``.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable

from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator
from airflow_provider_amc.sensors.amc import AmcExecutionSensor

TIME_ZONE = "Europe/Berlin"
TABLE = os.environ.get("AMC_DAGTEST_TABLE", "amc_executions")
PG_CONN_ID = os.environ.get("AMC_DAGTEST_PG_CONN_ID", "postgres_default")

with DAG(
    dag_id="amc_dagtest",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=TIME_ZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIME_ZONE),
    catchup=False,
    params={"min_impressions": 1},
) as dag:
    submit = AmcCreateExecutionOperator(
        task_id="submit",
        workflow_id="demo_campaign_report",
        time_window_time_zone=TIME_ZONE,
        parameter_values={"min_impressions": "{{ params.min_impressions }}"},
        postgres_conn_id=PG_CONN_ID,
        table=TABLE,
    )
    AmcExecutionSensor(
        task_id="wait",
        execution_id=submit.output,
        poke_interval=0.2,
        timeout=120,
        postgres_conn_id=PG_CONN_ID,
        table=TABLE,
        deferrable=True,
    )

if __name__ == "__main__":
    dag.test(logical_date=pendulum.datetime(2026, 3, 10, 12, tz="UTC"))
