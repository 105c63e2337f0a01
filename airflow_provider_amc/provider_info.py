"""The provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

INTEGRATION = "Amazon Marketing Cloud"


def provider_info() -> dict[str, Any]:
    from airflow_provider_amc import __version__

    return {
        "package-name": "airflow-provider-amc",
        "name": "Amazon Marketing Cloud",
        "description": "Run Amazon Marketing Cloud (AMC) saved workflows over each run's time window, "
        "wait for them in the triggerer and record their output.",
        "state": "ready",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://advertising.amazon.com/API/docs/en-us/guides/amazon-marketing-cloud/",
                "tags": ["service"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_amc.operators.amc",
                    "airflow_provider_amc.operators.workflow",
                ],
            }
        ],
        "sensors": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider_amc.sensors.amc"]}
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider_amc.hooks.amc"]}],
        "triggers": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider_amc.triggers.amc"]}
        ],
        "transfers": [
            {
                "source-integration-name": INTEGRATION,
                "target-integration-name": "PostgreSQL",
                "python-module": "airflow_provider_amc.transfers.amc_to_postgres",
            }
        ],
        "extra-links": [
            "airflow_provider_amc.links.AmcExecutionLink",
            "airflow_provider_amc.links.AmcResultsLink",
        ],
        "config": {
            "amc": {
                "description": "Settings of the Amazon Marketing Cloud provider.",
                "options": {
                    "default_deferrable": {
                        "description": "Default of AmcExecutionSensor's deferrable argument. Unset: "
                        "[operators] default_deferrable when the deployment sets it, else True "
                        "(AMC executions run for minutes to hours; waiting in the triggerer holds no "
                        "worker slot).",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "False",
                        "default": None,
                    }
                },
            }
        },
        "connection-types": [
            {
                "connection-type": "amc",
                "hook-class-name": "airflow_provider_amc.hooks.amc.AmcHook",
                "hook-name": "Amazon Marketing Cloud",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "API host override",
                        "login": "LwA client ID",
                        "password": "LwA client secret",
                    },
                    "placeholders": {
                        "host": "empty: the region's host, e.g. https://advertising-api.amazon.com",
                        "login": "amzn1.application-oa2-client.…",
                        "password": "LwA client secret",
                    },
                },
                "conn-fields": {
                    "refresh_token": {
                        "label": "LwA refresh token",
                        "description": "The Atzr|… refresh token of the user that granted access.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "advertiser_id": {
                        "label": "AMC account (entity) ID",
                        "description": "Sent as Amazon-Advertising-API-AdvertiserId, e.g. ENTITY1AA1AA11AAA1 "
                        "(from GET /amc/accounts; not a sponsored-ads profile id).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "marketplace_id": {
                        "label": "Marketplace ID",
                        "description": "Marketplace of the AMC account, e.g. ATVPDKIKX0DER.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "region": {
                        "label": "Region",
                        "description": "NA, EU or FE: picks the Ads API host and the LwA token host.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["NA", "EU", "FE", None],
                            "default": "NA",
                        },
                    },
                    "instance_id": {
                        "label": "Default AMC instance ID",
                        "description": "Used when an operator is given no instance_id.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "timeout": {
                        "label": "Request timeout (s)",
                        "description": "Total deadline of each HTTP attempt in seconds (default 30).",
                        "schema": {"type": ["number", "null"], "minimum": 1},
                    },
                    "max_attempts": {
                        "label": "Attempts per call",
                        "description": "Attempts for retryable failures: 429, 5xx, network (default 5, "
                        "at most 20).",
                        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 20},
                    },
                    "backoff_base": {
                        "label": "Backoff base (s)",
                        "description": "First retry delay; doubles per attempt, with jitter (default 1).",
                        "schema": {"type": ["number", "null"], "minimum": 0},
                    },
                    "backoff_max": {
                        "label": "Backoff cap (s)",
                        "description": "Longest delay between attempts (default 60).",
                        "schema": {"type": ["number", "null"], "minimum": 0},
                    },
                    "verify": {
                        "label": "TLS verification",
                        "description": "true (default), false, or the path of a CA bundle (private CA, "
                        "TLS-inspecting proxy). Worker and triggerer alike.",
                        "schema": {"type": ["string", "boolean", "null"]},
                    },
                    "proxies": {
                        "label": "Proxies (JSON)",
                        "description": 'As in HttpHook/requests, e.g. {"https": "http://proxy:3128"}; '
                        "wins over HTTPS_PROXY. Worker and triggerer alike.",
                        "schema": {"type": ["object", "string", "null"]},
                    },
                    "trust_env": {
                        "label": "Use proxy/CA environment variables",
                        "description": "Honour HTTPS_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE (default true).",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                    "console_url_template": {
                        "label": "Console URL template",
                        "description": "Optional: the 'AMC execution' link's URL, e.g. "
                        "https://…/instances/{instance_id}/executions/{execution_id}; placeholders "
                        "{instance_id} {execution_id} {workflow_id} {advertiser_id} {marketplace_id} "
                        "{region}. Amazon documents no console URL for an execution.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "token_url": {
                        "label": "LwA token URL override",
                        "description": "Leave empty for the region's LwA host; set for the local emulator.",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
    }
