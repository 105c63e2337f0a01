"""AMC status -> normalised status (DESIGN.md "Behaviour" 6), as used for the execution table."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_amc.client import TERMINAL_STATUSES, WorkflowExecution, normalise_status
from airflow_provider_amc.records import STATUSES

MAPPING = {
    "PENDING": "pending",
    "RUNNING": "running",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "CANCELLED": "failed",
    "REJECTED": "failed",
}


@pytest.mark.parametrize(("amc_status", "expected"), MAPPING.items())
def test_known_statuses(amc_status: str, expected: str) -> None:
    assert normalise_status(amc_status) == expected
    assert WorkflowExecution(workflow_execution_id="e", status=amc_status).normalised_status == expected


@pytest.mark.parametrize("amc_status", ["QUEUED", "VALIDATING", "", None, "DONE"])
def test_unknown_statuses_are_running_and_logged(
    amc_status: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert normalise_status(amc_status) == "running"
    assert "Unknown AMC execution status" in caplog.text


def test_lower_case_is_understood() -> None:
    assert normalise_status("succeeded") == "completed"


def test_every_normalised_status_is_allowed_by_the_table() -> None:
    assert set(MAPPING.values()) == set(STATUSES)


def test_terminal_statuses_are_exactly_completed_or_failed() -> None:
    assert {status for status, norm in MAPPING.items() if norm in ("completed", "failed")} == set(
        TERMINAL_STATUSES
    )
