"""Manual AMC report: trigger a one-off run from the Airflow UI (or the REST API) with Params.

The trigger form shows every field with a title and a description; values are checked against their
JSON schema at trigger time (an unknown output format or time zone type is refused before a run is
created). Relations between fields that JSON schema cannot express (the end must come after the
start) are checked by the submit task before any AMC call, and the run fails with a message naming
the field.

REST API example::

    curl -X POST "$AIRFLOW/api/v2/dags/amc_manual_report/dagRuns" -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/json' -d '{"logical_date": null, "conf": {
        "workflow_id": "demo_campaign_report", "time_window_start": "2026-01-01T00:00:00",
        "time_window_end": "2026-01-08T00:00:00", "time_window_time_zone": "Europe/Berlin"}}'
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator
from airflow_provider_amc.sensors.amc import AmcExecutionSensor
from airflow_provider_amc.time_window import TIME_WINDOW_TYPES
from airflow_provider_amc.validation import OUTPUT_FORMATS

#: AMC's local time format (date-only is accepted too; the operator completes it to midnight).
WINDOW_BOUND_PATTERN = r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?$"
AMC_ID_PATTERN = r"^[A-Za-z0-9._-]{1,200}$"

with DAG(
    dag_id="amc_manual_report",
    description="One-off AMC workflow run: window, time zone, format and parameters from the trigger form",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["amc", "example"],
    params={
        "instance_id": Param(
            os.environ.get("AMC_INSTANCE_ID", "amcdemo0001"),
            type="string",
            pattern=AMC_ID_PATTERN,
            title="AMC instance ID",
            description="The AMC instance that runs the workflow, e.g. amcdemo0001.",
        ),
        "workflow_id": Param(
            os.environ.get("AMC_WORKFLOW_ID", "demo_campaign_report"),
            type="string",
            pattern=AMC_ID_PATTERN,
            title="Saved workflow ID",
            description="The saved AMC workflow (SQL) to run. Ad-hoc SQL is not accepted.",
        ),
        "time_window_start": Param(
            None,
            type=["null", "string"],
            pattern=WINDOW_BOUND_PATTERN,
            title="Window start",
            description="Local time in the chosen time zone, YYYY-MM-DDTHH:MM:SS (or YYYY-MM-DD). "
            "Leave both bounds empty for the last 7 days ending at midnight.",
        ),
        "time_window_end": Param(
            None,
            type=["null", "string"],
            pattern=WINDOW_BOUND_PATTERN,
            title="Window end (exclusive)",
            description="Local time in the chosen time zone; the window ends just before it.",
        ),
        "time_window_time_zone": Param(
            "UTC",
            type="string",
            minLength=1,
            title="Time zone",
            description="IANA time zone of the window, e.g. UTC, America/New_York, Europe/Berlin.",
        ),
        "time_window_type": Param(
            "EXPLICIT",
            type="string",
            enum=list(TIME_WINDOW_TYPES),
            title="Window type",
            description="EXPLICIT uses the bounds above; the relative types let AMC pick the window.",
        ),
        "output_format": Param(
            "CSV",
            type="string",
            enum=list(OUTPUT_FORMATS),
            title="Output format",
            description="Format of the result files: CSV or PARQUET.",
        ),
        "parameter_values": Param(
            {},
            type="object",
            title="Parameter values",
            description="Values for the workflow's declared input parameters, as a JSON object.",
        ),
    },
) as dag:
    submit = AmcCreateExecutionOperator(
        task_id="submit_execution",
        instance_id="{{ params.instance_id }}",
        workflow_id="{{ params.workflow_id }}",
        time_window_start="{{ params.time_window_start or '' }}",
        time_window_end="{{ params.time_window_end or '' }}",
        time_window_time_zone="{{ params.time_window_time_zone }}",
        time_window_type="{{ params.time_window_type }}",
        output_format="{{ params.output_format }}",
        parameter_values="{{ params.parameter_values | tojson }}",
    )

    AmcExecutionSensor(
        task_id="wait_for_execution",
        execution_id=submit.output,
        instance_id="{{ params.instance_id }}",
        poke_interval=float(os.environ.get("AMC_POKE_INTERVAL", "60")),
        timeout=12 * 3600,
    )

if __name__ == "__main__":
    dag.test(logical_date=None)
