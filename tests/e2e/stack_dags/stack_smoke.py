"""Smoke DAG for the e2e harness: a deferrable standard-provider sensor, Params with an enum, an XCom.

The sensor waits ``params.wait_seconds`` from the moment it renders its template, so it always
defers (``DateTimeSensorAsync`` defers even when the moment has passed) and resumes on a worker.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import DAG, Param, task

with DAG(
    dag_id="stack_smoke",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "size": Param("small", type="string", enum=["small", "large"], description="report size"),
        "wait_seconds": Param(3, type="integer", minimum=1, maximum=30),
    },
    tags=["e2e"],
) as dag:
    wait = DateTimeSensorAsync(
        task_id="wait",
        target_time=(
            "{{ (macros.datetime.utcnow() + macros.timedelta(seconds=params.wait_seconds)).isoformat() }}"
        ),
    )

    @task
    def report(params: dict | None = None, run_id: str | None = None) -> dict:
        assert params is not None
        return {"size": params["size"], "run_id": run_id}

    wait >> report()
