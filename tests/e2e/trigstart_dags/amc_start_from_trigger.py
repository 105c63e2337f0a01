"""``AmcExecutionSensor(start_from_trigger=True)``, for the start-from-trigger e2e test.

``amc_start_from_trigger``: ``submit`` creates an execution (``AmcCreateExecutionOperator``), then
``wait`` starts straight in the triggerer with ``execution_id=submit.output`` (rendered there from
the XCom) and records the execution in ``AMC_TRIGSTART_TABLE``.

``amc_start_from_trigger_bad_id``: ``bad_id`` returns an id AMC cannot have; ``wait`` renders it in
the triggerer and must fail clearly (the field named) without calling AMC.

No retries: a failure must not hide behind a second try.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator
from airflow_provider_amc.sensors.amc import AmcExecutionSensor

TABLE = os.environ.get("AMC_TRIGSTART_TABLE", "amc_trigstart_executions")
BAD_ID = "../not an id"
#: The sensor's arguments in every DAG here: started in the triggerer, recorded in TABLE.
WAIT = {
    "start_from_trigger": True,
    "postgres_conn_id": "postgres_default",
    "table": TABLE,
    "poke_interval": 2,
    "timeout": 900,
}
CREATE = {"workflow_id": "demo_campaign_report", "parameter_values": {"min_impressions": 10}}


def e2e_dag(dag_id: str) -> DAG:
    """A manually triggered DAG without retries (a failure must not hide behind a second try)."""
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        default_args={"retries": 0},
        tags=["e2e"],
    )


with e2e_dag("amc_start_from_trigger"):
    submit = AmcCreateExecutionOperator(
        task_id="submit",
        **CREATE,
        time_window_start="2026-03-01",
        time_window_end="2026-03-02",
        postgres_conn_id="postgres_default",
        table=TABLE,
    )
    AmcExecutionSensor(
        task_id="wait",
        execution_id=submit.output,
        **WAIT,
    )

with e2e_dag("amc_start_from_trigger_bad_id"):

    @task
    def bad_id() -> str:
        return BAD_ID

    bad_id() >> AmcExecutionSensor(
        task_id="wait",
        execution_id="{{ ti.xcom_pull(task_ids='bad_id', map_indexes=-1) }}",
        **WAIT,
    )

with e2e_dag("amc_start_from_trigger_mapped"):
    # Two executions (two days); the mapped sensor asks for start_from_trigger, which Airflow 3.3
    # cannot do for mapped tasks: each map index must still run (worker first, then deferred).
    days = AmcCreateExecutionOperator.partial(
        task_id="submit",
        **CREATE,
        postgres_conn_id="postgres_default",
        table=TABLE,
    ).expand_kwargs(
        [
            {"time_window_start": "2026-03-03", "time_window_end": "2026-03-04"},
            {"time_window_start": "2026-03-04", "time_window_end": "2026-03-05"},
        ]
    )
    AmcExecutionSensor.partial(
        task_id="wait",
        **WAIT,
    ).expand(execution_id=days.output)
