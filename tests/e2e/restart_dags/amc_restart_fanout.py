"""Twenty deferrable AMC sensors waiting at once, for the triggerer-restart e2e test.

``submit`` creates ``SENSOR_COUNT`` executions of the demo workflow (one per day of March 2026)
with one ``AmcHook`` call each and returns their ids; ``wait_NN`` waits for execution ``NN`` in
the triggerer (deferrable, ``poke_interval`` 2 s) and records it in ``AMC_RESTART_TABLE``
(``postgres_default``). No retries: a failure must not hide behind a second try.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_amc.client import CreateExecutionRequest
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.sensors.amc import AmcExecutionSensor

DAG_ID = "amc_restart_fanout"
SENSOR_COUNT = 20
WORKFLOW_ID = "demo_campaign_report"
TABLE = os.environ.get("AMC_RESTART_TABLE", "amc_restart_executions")


def sensor_task_id(index: int) -> str:
    return f"wait_{index:02d}"


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=SENSOR_COUNT + 1,
    default_args={"retries": 0},
    tags=["e2e"],
) as dag:

    @task
    def submit() -> list[str]:
        """Create one execution per day (distinct windows, so distinct row counts)."""
        hook = AmcHook()
        ids = []
        for day in range(1, SENSOR_COUNT + 1):
            request = CreateExecutionRequest(
                workflow_id=WORKFLOW_ID,
                time_window_type="EXPLICIT",
                time_window_start=f"2026-03-{day:02d}T00:00:00",
                time_window_end=f"2026-03-{day + 1:02d}T00:00:00",
                time_window_time_zone="UTC",
                parameter_values={"min_impressions": 10},
            )
            ids.append(hook.create_execution(request).workflow_execution_id)
        return ids

    execution_ids = submit()
    for index in range(SENSOR_COUNT):
        sensor = AmcExecutionSensor(
            task_id=sensor_task_id(index),
            execution_id=f"{{{{ ti.xcom_pull(task_ids='submit')[{index}] }}}}",
            postgres_conn_id="postgres_default",
            table=TABLE,
            deferrable=True,
            poke_interval=2,
            timeout=900,
        )
        execution_ids >> sensor
