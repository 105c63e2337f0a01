"""Seeded identities and default data of the AMC emulator (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

from typing import Any, Final

DEFAULT_CLIENT_ID: Final = "amzn1.application-oa2-client.emulator"
DEFAULT_CLIENT_SECRET: Final = "emulator-client-secret"  # noqa: S105 - well-known test credential
DEFAULT_REFRESH_TOKEN: Final = "Atzr|emulator-refresh-token"  # noqa: S105 - well-known test credential
DEFAULT_ADVERTISER_ID: Final = "ENTITYEMULATOR01"
DEFAULT_MARKETPLACE_ID: Final = "ATVPDKIKX0DER"
DEFAULT_ACCOUNT_NAME: Final = "AMC Emulator Account"
DEFAULT_INSTANCE_ID: Final = "amcdemo0001"
SECOND_INSTANCE_ID: Final = "amcdemo0002"
DEFAULT_S3_BUCKET: Final = "amc-demo-bucket"
DEMO_WORKFLOW_ID: Final = "demo_campaign_report"
DEMO_PARAMETER_NAME: Final = "min_impressions"
INSTANCE_CREATION_DATETIME: Final = "2024-01-02T03:04:05Z"
INSTANCE_AWS_ACCOUNT_ID: Final = "111122223333"
DATA_UPLOAD_AWS_ACCOUNT_ID: Final = "444455556666"
INSTANCE_S3_BUCKET_REGION: Final = "us-east-1"

ACCESS_TOKEN_LIFETIME_SECONDS: Final = 3600
DOWNLOAD_URL_EXPIRES_SECONDS: Final = 600
DEFAULT_PENDING_SECONDS: Final = 2.0
DEFAULT_RUNNING_SECONDS: Final = 5.0
DEFAULT_TIMEOUT_SECONDS: Final = 21600
MIN_TIMEOUT_SECONDS: Final = 900
MAX_TIMEOUT_SECONDS: Final = 86400
INVALIDATION_OFFSET_SECS: Final = 266400
DEFAULT_CONCURRENCY_LIMIT: Final = 10
DEFAULT_DAILY_QUOTA: Final = 30
DEFAULT_DATA_LAG_HOURS: Final = 48

DEMO_WORKFLOW_SQL: Final = (
    "SELECT campaign, event_date, SUM(impressions) AS impressions, SUM(spend) AS spend, "
    "MAX(event_ts) AS last_seen FROM dsp_impressions "
    "WHERE event_ts >= BUILT_IN_PARAMETER('TIME_WINDOW_START') "
    "AND event_ts < BUILT_IN_PARAMETER('TIME_WINDOW_END') "
    f"GROUP BY campaign, event_date HAVING SUM(impressions) >= CUSTOM_PARAMETER('{DEMO_PARAMETER_NAME}')"
)


def demo_workflow() -> dict[str, Any]:
    """The seeded saved workflow (a fresh copy each call)."""
    return {
        "workflowId": DEMO_WORKFLOW_ID,
        "sqlQuery": DEMO_WORKFLOW_SQL,
        "inputParameters": [
            {
                "name": DEMO_PARAMETER_NAME,
                "dataType": "LONG",
                "columnType": "METRIC",
                "defaultValue": "0",
                "description": "Only campaigns with at least this many impressions.",
                "displayName": "Minimum impressions",
            }
        ],
    }


def _column(name: str, column_type: str, data_type: str, description: str) -> dict[str, str]:
    return {"name": name, "columnType": column_type, "dataType": data_type, "description": description}


def seeded_data_sources() -> list[dict[str, Any]]:
    """A few read-only data sources, shaped like the spec's DataSource object."""
    spec = {
        "dsp_impressions": "Amazon DSP impression events.",
        "sponsored_ads_traffic": "Sponsored ads impressions and clicks.",
        "amazon_attributed_events_by_traffic_time": "Conversions attributed to ad traffic.",
    }
    return [
        {
            "dataSourceId": ds_id,
            "description": text,
            "owner": "AMAZON",
            "provider": "AMAZON",
            "columns": [
                _column("campaign", "DIMENSION", "STRING", "Campaign name."),
                _column("event_ts", "DIMENSION", "TIMESTAMP", "Event time (UTC)."),
                _column("impressions", "METRIC", "LONG", "Impression count."),
            ],
            "tags": [],
            "outputChannels": [{"channel": {"type": "DOWNLOAD"}, "outputAvailable": True}],
        }
        for ds_id, text in spec.items()
    ]


def airflow_connection(
    url: str, instance_id: str | None = DEFAULT_INSTANCE_ID, *, verify: str | None = None
) -> dict[str, Any]:
    """An ``amc`` Airflow connection (JSON form) to the emulator at ``url``, seeded identities;
    ``verify``: the CA file of an emulator serving HTTPS (the connection extra ``verify``).

    ``json.dumps`` it into ``AIRFLOW_CONN_AMC_DEFAULT`` to point DAGs, tests or demos at the emulator.
    """
    base = url.rstrip("/")
    extra = {
        "refresh_token": DEFAULT_REFRESH_TOKEN,
        "advertiser_id": DEFAULT_ADVERTISER_ID,
        "marketplace_id": DEFAULT_MARKETPLACE_ID,
        "token_url": f"{base}/auth/o2/token",
    }
    if instance_id:
        extra["instance_id"] = instance_id
    if verify:
        extra["verify"] = verify
    return {
        "conn_type": "amc",
        "host": base,
        "login": DEFAULT_CLIENT_ID,
        "password": DEFAULT_CLIENT_SECRET,
        "extra": extra,
    }
