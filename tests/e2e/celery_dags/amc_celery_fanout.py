"""Forty AMC executions over two instances, each submitted and waited for by one mapped task.

For the distributed e2e test (CeleryExecutor, two workers, two triggerers): every task instance
creates its execution (``AmcCreateExecutionOperator``, at most once per task instance) and waits for
it deferred in a triggerer (``wait_for_completion``), then records it in ``AMC_CELERY_TABLE``.
No retries: a failure must not hide behind a second try.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator

DAG_ID = "amc_celery_fanout"
INSTANCES = ("amcdemo0001", "amcdemo0002")
DAYS = 20  # per instance
TABLE = os.environ.get("AMC_CELERY_TABLE", "amc_celery_executions")

RUNS = [
    {
        "instance_id": instance,
        "time_window_start": f"2026-03-{day:02d}",
        "time_window_end": f"2026-03-{day + 1:02d}",
    }
    for instance in INSTANCES
    for day in range(1, DAYS + 1)
]

with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=len(RUNS),
    default_args={"retries": 0},
    tags=["e2e"],
) as dag:
    AmcCreateExecutionOperator.partial(
        task_id="run",
        workflow_id="demo_campaign_report",
        parameter_values={"min_impressions": 10},
        postgres_conn_id="postgres_default",
        table=TABLE,
        wait_for_completion=True,
        poll_interval=2,
        wait_timeout=900,
    ).expand_kwargs(RUNS)
