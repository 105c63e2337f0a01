"""Validation of workflow and execution request bodies (§9.5); every failure is a 400."""

from __future__ import annotations

import re
from typing import Any, Final

from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.responses import bad_request

WORKFLOW_ID_RE: Final = re.compile(r"^[A-Za-z0-9._-]{1,256}$")
CUSTOM_PARAMETER_RE: Final = re.compile(r"CUSTOM_PARAMETER\(\s*'([^']*)'\s*\)", re.IGNORECASE)
OUTPUT_FORMATS: Final = ("CSV", "PARQUET")


def json_object(body: Any, what: str = "request body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request(f"The {what} must be a JSON object.")
    return body


def workflow_id(value: object, field: str = "workflowId") -> str:
    if not isinstance(value, str) or not WORKFLOW_ID_RE.match(value):
        raise bad_request(
            f"Invalid {field} '{value}': use 1-256 letters, digits, '.', '-' or '_' (no spaces)."
        )
    return value


def flag(body: dict[str, Any], field: str, default: bool = False) -> bool:
    """Booleans, leniently accepting 'true'/'false' strings like production appears to."""
    value = body.get(field, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_request(f"Invalid {field} '{value}': expected true or false.")


def undeclared_parameters(sql: str, input_parameters: list[dict[str, Any]]) -> list[str]:
    declared = {p.get("name") for p in input_parameters}
    return sorted({name for name in CUSTOM_PARAMETER_RE.findall(sql) if name not in declared})


def compile_error(wf_id: str, missing: list[str]) -> str:
    return (
        f"Was unable to compile workflow {wf_id} because it was found to be invalid: "
        f"the query referenced an undeclared parameter {', '.join(missing)}."
    )


def input_parameters(value: object) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 100:
        raise bad_request("inputParameters must be a list of at most 100 objects.")
    for index, param in enumerate(value):
        if not isinstance(param, dict) or not isinstance(param.get("name"), str) or not param["name"]:
            raise bad_request(f"inputParameters[{index}] must be an object with a non-empty 'name'.")
    return list(value)


def workflow_definition(body: Any) -> dict[str, Any]:
    """A saved-workflow definition (POST/PUT /workflows); compiles custom parameters."""
    data = json_object(body)
    wf_id = workflow_id(data.get("workflowId"))
    sql = data.get("sqlQuery")
    if not isinstance(sql, str) or not sql.strip():
        raise bad_request("sqlQuery is required and must be a non-empty string.")
    params = input_parameters(data.get("inputParameters"))
    missing = undeclared_parameters(sql, params)
    if missing:
        raise bad_request(compile_error(wf_id, missing))
    return (
        {**data, "inputParameters": params}
        if params
        else {k: v for k, v in data.items() if k != "inputParameters"}
    )


def timeout_seconds(value: object) -> int:
    if value is None:
        return defaults.DEFAULT_TIMEOUT_SECONDS
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"Invalid workflowExecutionTimeoutSeconds '{value}': expected an integer.")
    if not defaults.MIN_TIMEOUT_SECONDS <= value <= defaults.MAX_TIMEOUT_SECONDS:
        raise bad_request(
            f"workflowExecutionTimeoutSeconds must be between {defaults.MIN_TIMEOUT_SECONDS} "
            f"and {defaults.MAX_TIMEOUT_SECONDS}, got {value}."
        )
    return value


def output_format(value: object) -> str:
    if value is None:
        return "CSV"
    if value not in OUTPUT_FORMATS:
        raise bad_request(f"Invalid outputFormat '{value}'. Allowed values: {', '.join(OUTPUT_FORMATS)}.")
    return str(value)


def parameter_values(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request("parameterValues must be a JSON object of parameter name to value.")
    return dict(value)
