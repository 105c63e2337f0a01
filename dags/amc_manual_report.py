"""Manual AMC report: trigger a one-off run from the Airflow UI (or the REST API) with Params.

The trigger form shows every field with a title, a description and example values; the time zone
and the output format are drop-downs (every IANA zone; CSV or PARQUET). Values are checked against
their JSON schema at trigger time (an unknown output format or time zone, an instance id with a
space, a window bound too short to be a date are refused before a run is created). What JSON schema
cannot express — that a bound is a real date or time, that the end comes after the start — is
checked by the submit task before any AMC call, and the run fails with a message naming the field.

Window length: AMC documents no maximum for an EXPLICIT window; instances keep about 13 months of
data (amc-api.md §6), so a longer window is logged as a warning by the submit task, not refused.

Defaults of the form through environment variables, as in ``amc_daily_report``: AMC_INSTANCE_ID,
AMC_WORKFLOW_ID, AMC_TIME_ZONE (the zone's default; UTC when unset) and AMC_POKE_INTERVAL.

REST API example::

    curl -X POST "$AIRFLOW/api/v2/dags/amc_manual_report/dagRuns" -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/json' -d '{"logical_date": null, "conf": {
        "workflow_id": "demo_campaign_report", "time_window_start": "2026-01-01T00:00:00",
        "time_window_end": "2026-01-08T00:00:00", "time_window_time_zone": "Europe/Berlin"}}'
"""

from __future__ import annotations

import os
import zoneinfo

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator
from airflow_provider_amc.sensors.amc import AmcExecutionSensor
from airflow_provider_amc.time_window import TIME_WINDOW_TYPES
from airflow_provider_amc.validation import OUTPUT_FORMATS

#: Every IANA zone this Python knows: the time zone drop-down.
TIME_ZONES = sorted(zoneinfo.available_timezones())
#: Shown under the window fields as suggestions (a bound is a local date or date and time).
WINDOW_EXAMPLES = ["2026-01-01", "2026-01-01T06:00:00", "2026-01-08"]
AMC_ID_PATTERN = r"^[A-Za-z0-9._-]{1,200}$"
#: The form's default time zone (AMC_TIME_ZONE, as the daily DAG reads it).
DEFAULT_TIME_ZONE = os.environ.get("AMC_TIME_ZONE", "UTC")
if DEFAULT_TIME_ZONE not in TIME_ZONES:
    raise ValueError(
        f"AMC_TIME_ZONE must be an IANA time zone such as UTC, America/New_York or Europe/Berlin, "
        f"got {DEFAULT_TIME_ZONE!r}"
    )

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
            minLength=10,
            maxLength=19,
            examples=WINDOW_EXAMPLES,
            title="Window start",
            description="First moment of the window, local time in the chosen time zone: a date such as "
            "2026-01-01 (midnight) or a date and time such as 2026-01-01T06:00:00. Leave both bounds "
            "empty for the last 7 days ending at midnight.",
        ),
        "time_window_end": Param(
            None,
            type=["null", "string"],
            minLength=10,
            maxLength=19,
            examples=WINDOW_EXAMPLES,
            title="Window end (exclusive)",
            description="The window ends just before this local time, e.g. 2026-01-08 for the seven days "
            "1-7 January. AMC keeps about 13 months of data: a longer window is logged as a warning.",
        ),
        "time_window_time_zone": Param(
            DEFAULT_TIME_ZONE,
            type="string",
            enum=TIME_ZONES,
            title="Time zone",
            description="IANA time zone of the window bounds, e.g. UTC, America/New_York, Europe/Berlin.",
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
            description="Values for the workflow's declared input parameters, as a JSON object, "
            'e.g. {"min_impressions": 100}.',
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
