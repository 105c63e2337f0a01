"""Input checks shared by the operators: each error names the field and what is allowed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow_provider_amc.client import OUTPUT_FORMATS, AmcConfigError
from airflow_provider_amc.client.ids import check_id


def validate_identifier(field: str, value: Any) -> str:
    """An AMC id such as ``workflow_id`` or ``instance_id`` (the client's one rule: ``client.ids``)."""
    return check_id(field, value)


def validate_output_format(value: Any) -> str:
    """``CSV`` or ``PARQUET`` (case-insensitive); returns the upper-case form."""
    if isinstance(value, str) and value.strip().upper() in OUTPUT_FORMATS:
        return value.strip().upper()
    raise AmcConfigError(
        f"output_format {value!r} is not supported: allowed values are {', '.join(OUTPUT_FORMATS)}"
    )


def _nul_at(value: Any, path: str) -> str | None:
    """The path of the first key or string holding a NUL character (Postgres cannot store it)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                return f"{path} (key {key!r})"
            found = _nul_at(item, f"{path}[{key!r}]")
            if found:
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{path}[{index}]")
            if found:
                return found
    return None


def validate_parameter_values(value: Any) -> dict[str, Any]:
    """A mapping of parameter name to JSON value; a JSON object string (a rendered template) is accepted."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise AmcConfigError(
                f"parameter_values is not a JSON object: {exc.msg} in {value[:80]!r}"
            ) from exc
    if not isinstance(value, Mapping):
        raise AmcConfigError(
            f"parameter_values must be a mapping of parameter name to value, got {type(value).__name__}"
        )
    for name in value:
        if not isinstance(name, str) or not name:
            raise AmcConfigError(
                f"parameter_values has an invalid parameter name {name!r}: names are non-empty strings"
            )
    try:
        json.dumps(value, allow_nan=False)  # NaN/Infinity are not JSON: the HTTP body would fail
    except (TypeError, ValueError) as exc:
        raise AmcConfigError(f"parameter_values must be JSON-serialisable: {exc}") from exc
    nul = _nul_at(value, "parameter_values")
    if nul:  # the execution table (jsonb) would refuse it after AMC had started the run
        raise AmcConfigError(f"{nul} contains a NUL character (\\x00), which Postgres cannot store")
    return dict(value)
