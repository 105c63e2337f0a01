"""Airflow connection URIs for the emulator and the test Postgres (set as ``AIRFLOW_CONN_*`` variables)."""

from __future__ import annotations

import json

from airflow_provider_amc.emulator import defaults

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def amc_connection(emulator_url: str, instance_id: str = defaults.DEFAULT_INSTANCE_ID) -> str:
    """The JSON form of an ``amc`` connection to the emulator at ``emulator_url``."""
    return json.dumps(defaults.airflow_connection(emulator_url, instance_id))
