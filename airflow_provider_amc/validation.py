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
    return dict(value)
