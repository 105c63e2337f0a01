"""validation.py: each rejected input raises AmcConfigError naming the field and what is allowed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_amc.client import AmcConfigError
from airflow_provider_amc.validation import (
    OUTPUT_FORMATS,
    validate_identifier,
    validate_output_format,
    validate_parameter_values,
)


@pytest.mark.parametrize("value", ["demo_campaign_report", "a", "wf-1.2_x", "A" * 200])
def test_identifier_accepts_amc_ids(value: str) -> None:
    assert validate_identifier("workflow_id", value) == value


@pytest.mark.parametrize("value", [None, "", "   "])
def test_identifier_is_required(value: Any) -> None:
    with pytest.raises(AmcConfigError, match=r"^workflow_id is required"):
        validate_identifier("workflow_id", value)


@pytest.mark.parametrize("value", ["has space", "a/b", "..", ".", "A" * 201, 42, "naïve"])
def test_identifier_rejects_other_values(value: Any) -> None:
    with pytest.raises(AmcConfigError, match=r"^instance_id .* not a valid AMC id"):
        validate_identifier("instance_id", value)


@pytest.mark.parametrize(("value", "expected"), [("CSV", "CSV"), ("parquet", "PARQUET"), (" Csv ", "CSV")])
def test_output_format_is_normalised(value: str, expected: str) -> None:
    assert validate_output_format(value) == expected


@pytest.mark.parametrize("value", ["JSON", "", None, "CSV2", 1])
def test_output_format_rejects_others_naming_allowed_values(value: Any) -> None:
    with pytest.raises(AmcConfigError, match="output_format") as error:
        validate_output_format(value)
    assert all(name in str(error.value) for name in OUTPUT_FORMATS)


@pytest.mark.parametrize("value", [None, "", {}])
def test_no_parameter_values_is_empty(value: Any) -> None:
    assert validate_parameter_values(value) == {}


def test_parameter_values_mapping_and_json_string_agree() -> None:
    nested = {"a": 1, "b": {"c": [1, "x", None]}, "d": True}
    assert validate_parameter_values(nested) == nested
    assert validate_parameter_values(json.dumps(nested)) == nested


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "not a JSON object"),
        ("[1, 2]", "must be a mapping"),
        ("3", "must be a mapping"),
        ([("a", 1)], "must be a mapping"),
        ({1: "x"}, "invalid parameter name"),
        ({"": "x"}, "invalid parameter name"),
        ({"a": {1, 2}}, "JSON-serialisable"),
        ({"a": float("nan")}, "JSON-serialisable"),
        ('{"a": NaN}', "JSON-serialisable"),
    ],
)
def test_parameter_values_rejections_name_the_field(value: Any, message: str) -> None:
    with pytest.raises(AmcConfigError, match=r"parameter_values") as error:
        validate_parameter_values(value)
    assert message in str(error.value)
