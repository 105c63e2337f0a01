"""Provider metadata: valid for Airflow's schema, and the connection form matches what the hook reads."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from pathlib import Path

import airflow
import jsonschema
import pytest
from airflow.sdk import BaseHook, BaseOperator, BaseOperatorLink, BaseSensorOperator
from airflow.triggers.base import BaseTrigger

import airflow_provider_amc
from airflow_provider_amc import get_provider_info
from airflow_provider_amc.hooks.amc import KNOWN_EXTRA_FIELDS, AmcHook

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
    assert set(conn["conn-fields"]) == set(KNOWN_EXTRA_FIELDS)
    assert conn["conn-fields"]["refresh_token"]["schema"]["format"] == "password"
    assert {"schema", "port"} <= set(conn["ui-field-behaviour"]["hidden-fields"])


def test_form_number_bounds_are_the_hooks() -> None:
    """A number the form accepts is one the hook accepts, and the form's limits are the hook's."""
    from airflow_provider_amc.client import AmcSettings

    (conn,) = get_provider_info()["connection-types"]
    for name, info in AmcSettings.model_fields.items():
        bounds = {type(item).__name__: item for item in info.metadata}
        bounds = {kind: item for kind, item in bounds.items() if kind in ("Ge", "Gt", "Le", "Lt")}
        if not bounds:
            continue
        schema = conn["conn-fields"][name]["schema"]
        if "Ge" in bounds:
            assert schema["minimum"] == bounds["Ge"].ge, name
        if "Gt" in bounds:
            assert schema["minimum"] > bounds["Gt"].gt, name
        assert "Lt" not in bounds, name
        assert schema.get("maximum") == (bounds["Le"].le if "Le" in bounds else None), name


def test_listed_modules_import() -> None:
    import importlib

    info = get_provider_info()
    for section in ("operators", "sensors", "hooks", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)


# ---- completeness: derived from the modules the package ships -------------------------------------
#: Sub-packages that are not Airflow components (the HTTP client, the local emulator).
NOT_AIRFLOW_COMPONENTS = ("airflow_provider_amc.client", "airflow_provider_amc.emulator")


def shipped_classes() -> list[type]:
    """Every class defined in a shipped module of the provider (emulator and client aside)."""
    found = []
    for info in pkgutil.walk_packages(airflow_provider_amc.__path__, "airflow_provider_amc."):
        if info.name.startswith(NOT_AIRFLOW_COMPONENTS):
            continue
        module = importlib.import_module(info.name)
        found += [
            cls for _, cls in inspect.getmembers(module, inspect.isclass) if cls.__module__ == module.__name__
        ]
    return found


def shipped(kind: type, *, exclude: type | None = None) -> set[type]:
    excluded = exclude or ()
    return {
        cls
        for cls in shipped_classes()
        if issubclass(cls, kind) and not issubclass(cls, excluded) and not inspect.isabstract(cls)
    }


def listed_modules(section: str) -> set[str]:
    return {module for entry in get_provider_info().get(section, []) for module in entry["python-modules"]}


def test_every_shipped_operator_is_registered() -> None:
    operators = shipped(BaseOperator, exclude=BaseSensorOperator)
    assert operators, "no operator found: the discovery is broken"
    transfers = {entry["python-module"] for entry in get_provider_info()["transfers"]}
    for cls in operators:
        section = transfers if ".transfers." in cls.__module__ else listed_modules("operators")
        assert cls.__module__ in section, f"{cls.__qualname__} ({cls.__module__}) is not in provider info"


@pytest.mark.parametrize(
    ("kind", "section"), [(BaseSensorOperator, "sensors"), (BaseTrigger, "triggers"), (BaseHook, "hooks")]
)
def test_every_shipped_sensor_trigger_hook_is_registered(kind: type, section: str) -> None:
    classes = shipped(kind)
    assert classes, f"no {section} found: the discovery is broken"
    for cls in classes:
        assert cls.__module__ in listed_modules(section), f"{cls.__qualname__} is not in {section}"


def test_every_extra_link_is_registered_and_importable() -> None:
    registered = set(get_provider_info()["extra-links"])
    used = {
        f"{type(link).__module__}.{type(link).__qualname__}"
        for cls in shipped(BaseOperator)
        for link in cls.operator_extra_links
    }
    defined = {f"{cls.__module__}.{cls.__qualname__}" for cls in shipped(BaseOperatorLink)}
    assert used, "no operator has extra links"
    assert used | defined == registered
    for path in registered:
        module, _, name = path.rpartition(".")
        assert issubclass(getattr(importlib.import_module(module), name), BaseOperatorLink)


def test_transfers_point_at_known_integrations() -> None:
    info = get_provider_info()
    ours = {entry["integration-name"] for entry in info["integrations"]}
    for transfer in info["transfers"]:
        assert transfer["source-integration-name"] in ours
        importlib.import_module(transfer["python-module"])


def test_config_section_declares_default_deferrable() -> None:
    option = get_provider_info()["config"]["amc"]["options"]["default_deferrable"]
    assert option["type"] == "boolean"
    # No default in the metadata: a default there would hide the [operators] fallback.
    assert option["default"] is None
