"""One submit whose window ends moments from now, with a short ``min_data_age`` (dag.test() e2e).

``AMC_LAG_END`` (UTC wall time, ``YYYY-MM-DDTHH:MM:SS``) and ``AMC_LAG_SECONDS`` come from the test:
the task must defer to a ``DateTimeTrigger`` until end + age and then submit once.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator

END = os.environ.get("AMC_LAG_END", "2026-01-02T00:00:00")
START = (datetime.fromisoformat(END) - timedelta(days=1)).isoformat()

with DAG(
    dag_id="amc_data_lag",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    AmcCreateExecutionOperator(
        task_id="submit",
        workflow_id="demo_campaign_report",
        time_window_start=START,
        time_window_end=END,
        parameter_values={"min_impressions": 1},
        postgres_conn_id=None,
        min_data_age=timedelta(seconds=float(os.environ.get("AMC_LAG_SECONDS", "0"))),
    )

if __name__ == "__main__":
    dag.test()
