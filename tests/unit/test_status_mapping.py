"""AMC status -> normalised status (DESIGN.md "Behaviour" 6): ``lifecycle.AmcStatus``, the one place."""

from __future__ import annotations

import logging
import uuid

import pytest

from airflow_provider_amc.lifecycle import AmcStatus, normalise_status
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
    assert AmcStatus.parse(amc_status).normalised == expected
    assert AmcStatus.parse(amc_status).is_terminal == (expected in ("completed", "failed"))
    assert AmcStatus.parse(amc_status).succeeded == (amc_status == "SUCCEEDED")


@pytest.mark.parametrize("amc_status", ["succeeded", "Succeeded", " SUCCEEDED ", "cancelled"])
def test_statuses_compare_case_insensitively(amc_status: str) -> None:
    status = AmcStatus.parse(amc_status)
    assert status is AmcStatus(amc_status.strip().upper())
    assert status.is_terminal


@pytest.mark.parametrize("amc_status", ["QUEUED", "VALIDATING", "", None, "DONE", "PUBLISHING"])
def test_unknown_statuses_are_running_and_logged(
    amc_status: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        status = AmcStatus.parse(amc_status)
    assert status is AmcStatus.RUNNING and not status.is_terminal and not status.succeeded
    assert normalise_status(amc_status) == "running"


def test_an_unknown_status_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    novel = f"NEW_{uuid.uuid4().hex[:8].upper()}"  # a value no other test has logged
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            AmcStatus.parse(novel)
    assert [record.getMessage() for record in caplog.records].count(
        f"Unknown AMC execution status {novel!r}; treating it as still running"
    ) == 1


def test_every_normalised_status_is_allowed_by_the_table() -> None:
    assert set(MAPPING.values()) == set(STATUSES)
    assert {status.normalised for status in AmcStatus} == set(STATUSES)


def test_terminal_statuses_are_exactly_completed_or_failed() -> None:
    terminal = {status.value for status in AmcStatus if status.is_terminal}
    assert terminal == {status for status, norm in MAPPING.items() if norm in ("completed", "failed")}
    assert terminal == {"SUCCEEDED", "FAILED", "CANCELLED", "REJECTED"}
