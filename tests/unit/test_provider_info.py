"""Provider metadata: valid for Airflow's schema, and the connection form matches what the hook reads."""

from __future__ import annotations

import json
from pathlib import Path

import airflow
import jsonschema

from airflow_provider_amc import get_provider_info
from airflow_provider_amc.hooks.amc import EXTRA_FIELDS, AmcHook

AIRFLOW_DIR = Path(airflow.__file__).parent


def test_provider_info_is_valid_for_airflow() -> None:
    schema = json.loads((AIRFLOW_DIR / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_connection_type_points_at_the_hook() -> None:
    (conn,) = get_provider_info()["connection-types"]
    assert conn["connection-type"] == AmcHook.conn_type == "amc"
    assert conn["hook-class-name"] == f"{AmcHook.__module__}.{AmcHook.__qualname__}"


def test_form_fields_are_the_extras_the_hook_reads() -> None:
    (conn,) = get_provider_info()["connection-types"]
    assert set(conn["conn-fields"]) == set(EXTRA_FIELDS)
    assert conn["conn-fields"]["refresh_token"]["schema"]["format"] == "password"
    assert {"schema", "port"} <= set(conn["ui-field-behaviour"]["hidden-fields"])


def test_listed_modules_import() -> None:
    import importlib

    info = get_provider_info()
    for section in ("operators", "sensors", "hooks", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
