"""Daily DAG for the e2e harness's backfill check: one task returns its run's data interval."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, task

with DAG(
    dag_id="stack_daily",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["e2e"],
) as dag:

    @task
    def interval(data_interval_start=None, data_interval_end=None) -> dict:
        return {"start": data_interval_start.isoformat(), "end": data_interval_end.isoformat()}

    interval()
