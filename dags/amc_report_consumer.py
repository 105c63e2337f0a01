"""Consumer of the daily AMC report: runs after the days ``amc_daily_report`` finishes.

Airflow puts the asset events that arrive before it creates this DAG's run (several backfill days
ending together) into that one run, so the task reads every triggering event.

Scheduled on the asset ``amc://<instance>/<workflow>`` that ``amc_daily_report``'s
``wait_for_execution`` task updates. Each asset event carries the AMC execution's metadata as its
``extra`` (execution id, instance, workflow, window, row count, size in bytes, output location), so
this DAG knows what arrived without asking AMC again.

Configuration: the same AMC_INSTANCE_ID / AMC_WORKFLOW_ID environment variables as the producer.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, task

INSTANCE_ID = os.environ.get("AMC_INSTANCE_ID", "amcdemo0001")
WORKFLOW_ID = os.environ.get("AMC_WORKFLOW_ID", "demo_campaign_report")
DAILY_REPORT = Asset(name="amc_daily_report", uri=f"amc://{INSTANCE_ID}/{WORKFLOW_ID}")

with DAG(
    dag_id="amc_report_consumer",
    description="Runs after each daily AMC report; reads the execution's metadata from the asset event",
    schedule=[DAILY_REPORT],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["amc", "example"],
):

    @task
    def report_arrived(**context: Any) -> list[dict[str, Any]]:
        """Log and return the extra of every asset event that triggered this run."""
        extras = []
        for events in context["triggering_asset_events"].values():
            for event in events:
                extra = dict(event.extra)
                window = extra.get("time_window") or {}
                print(
                    f"AMC execution {extra.get('execution_id')} over [{window.get('start')}, "
                    f"{window.get('end')}) {window.get('time_zone')}: {extra.get('row_count')} rows at "
                    f"{extra.get('output_location')}"
                )
                extras.append(extra)
        return extras

    report_arrived()
