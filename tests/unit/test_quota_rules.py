"""Quota and data-lag rules without HTTP: argument checks, quota-day bounds, quota answers, readiness."""

from __future__ import annotations

from airflow_env import apply_airflow_test_env

apply_airflow_test_env()

from datetime import UTC, datetime, time, timedelta, timezone  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

import pytest  # noqa: E402

from airflow_provider_amc.client import AmcApiError, AmcConfigError, AmcThrottledError  # noqa: E402
from airflow_provider_amc.data_lag import data_ready_at, validate_min_data_age  # noqa: E402
from airflow_provider_amc.emulator.quota_day import current_quota_day  # noqa: E402
from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator  # noqa: E402
from airflow_provider_amc.quota import (  # noqa: E402
    QuotaSettings,
    is_quota_answer,
    parse_day_start,
    quota_day,
    quota_settings,
)
from airflow_provider_amc.time_window import AmcTimeWindow  # noqa: E402

PLUS_TWO = timezone(timedelta(hours=2))


# ---- arguments ----------------------------------------------------------------------------------
def test_defaults() -> None:
    assert quota_settings("wait", 30, "00:00") == QuotaSettings("wait", 30, time(0, 0))
    operator = AmcCreateExecutionOperator(task_id="t", workflow_id="wf")
    assert operator.quota_settings == QuotaSettings("wait", 30, time(0, 0))
    assert operator.min_data_age is None


@pytest.mark.parametrize("policy", ["WAIT", "skip", "", None, 1])
def test_unknown_policy_names_the_field_and_the_allowed_values(policy: object) -> None:
    with pytest.raises(AmcConfigError, match=r"quota_policy .* allowed values are wait, fail, ignore"):
        AmcCreateExecutionOperator(task_id="t", workflow_id="wf", quota_policy=policy)


@pytest.mark.parametrize("quota", [0, -1, 1.5, "30", True, None])
def test_daily_quota_must_be_a_positive_integer(quota: object) -> None:
    with pytest.raises(AmcConfigError, match="daily_quota must be a positive integer"):
        AmcCreateExecutionOperator(task_id="t", workflow_id="wf", daily_quota=quota)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("00:00", time(0, 0)),
        ("7:30", time(7, 30)),
        (" 23:59:59 ", time(23, 59, 59)),
        (time(8, 0), time(8, 0)),
        (time(8, 0, tzinfo=UTC), time(8, 0)),
        (time(8, 0, tzinfo=ZoneInfo("UTC")), time(8, 0)),
        (time(8, 0, tzinfo=ZoneInfo("Etc/UTC")), time(8, 0)),
    ],
)
def test_quota_day_start_forms(value: object, expected: time) -> None:
    assert parse_day_start(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "24:00",
        "12:60",
        "12:00:60",
        "noon",
        "",
        "12",
        "1200",
        8,
        None,
        time(8, tzinfo=PLUS_TWO),
        # a named zone's time has no offset of its own (utcoffset() is None): not silently UTC
        time(8, tzinfo=ZoneInfo("America/New_York")),
        time(8, tzinfo=ZoneInfo("Europe/London")),
    ],
)
def test_bad_quota_day_start_names_the_field(value: object) -> None:
    with pytest.raises(AmcConfigError, match="quota_day_start"):
        AmcCreateExecutionOperator(task_id="t", workflow_id="wf", quota_day_start=value)


@pytest.mark.parametrize(
    "age", [timedelta(seconds=-1), 48, "48h", 172800.0, timedelta(days=397), timedelta.max]
)
def test_min_data_age_must_be_a_non_negative_timedelta(age: object) -> None:
    """Up to AMC's retention: a longer age waits past the data's deletion, and ``timedelta.max``
    would overflow the date to wait for."""
    with pytest.raises(
        AmcConfigError, match=r"min_data_age must be a non-negative datetime\.timedelta .* at most 396 days"
    ):
        AmcCreateExecutionOperator(task_id="t", workflow_id="wf", min_data_age=age)
    assert validate_min_data_age(timedelta(0)) == timedelta(0)
    assert validate_min_data_age(timedelta(days=396)) == timedelta(days=396)


# ---- the quota day ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("now", "start", "expected"),
    [
        ("2026-03-10T13:00:00", time(0), ("2026-03-10T00:00:00", "2026-03-11T00:00:00")),
        ("2026-03-10T00:00:00", time(0), ("2026-03-10T00:00:00", "2026-03-11T00:00:00")),
        ("2026-03-10T23:59:59", time(0), ("2026-03-10T00:00:00", "2026-03-11T00:00:00")),
        ("2026-03-10T06:59:59", time(7), ("2026-03-09T07:00:00", "2026-03-10T07:00:00")),
        ("2026-03-10T07:00:00", time(7), ("2026-03-10T07:00:00", "2026-03-11T07:00:00")),
        ("2026-12-31T23:30:00", time(23, 45), ("2026-12-30T23:45:00", "2026-12-31T23:45:00")),
    ],
)
def test_quota_day_bounds(now: str, start: time, expected: tuple[str, str]) -> None:
    begin, end = quota_day(datetime.fromisoformat(now).replace(tzinfo=UTC), start)
    assert (begin.isoformat(), end.isoformat()) == tuple(f"{value}+00:00" for value in expected)
    # the emulator agrees on when the day rolls over
    offset = start.hour * 3600 + start.minute * 60 + start.second
    assert current_quota_day(datetime.fromisoformat(now).replace(tzinfo=UTC), offset)[1] == end


def test_quota_day_of_an_aware_non_utc_now() -> None:
    now = datetime(2026, 3, 10, 1, 0, tzinfo=timezone(timedelta(hours=5)))  # 2026-03-09 20:00 UTC
    assert quota_day(now, time(0))[0] == datetime(2026, 3, 9, tzinfo=UTC)


# ---- what counts as a quota answer ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            AmcApiError(
                "x",
                status_code=400,
                details="Daily limit of 30 ad-hoc workflow executions reached for instance amc1",
            ),
            True,
        ),
        (AmcThrottledError("x", status_code=429, details="Execution quota exceeded for today"), True),
        (AmcApiError("x", status_code=422, details="You have exceeded the limit of 30 runs per day"), True),
        # the concurrency limit is not the daily quota: waiting a day would be wrong
        (
            AmcApiError(
                "x",
                status_code=422,
                details="You have reached your execution limit of 5 workflowExecutions that are in "
                "PENDING or RUNNING status",
            ),
            False,
        ),
        (AmcThrottledError("x", status_code=429, details="Too Many Requests"), False),
        (AmcApiError("x", status_code=400, details="Workflow with ID wf does not exist."), False),
        (AmcApiError("x", status_code=500, details="quota service unavailable"), False),
        (ValueError("quota"), False),
    ],
)
def test_quota_answers(error: BaseException, expected: bool) -> None:
    assert is_quota_answer(error) is expected


# ---- data lag -------------------------------------------------------------------------------------------
def window(end: str | None, zone: str = "UTC", window_type: str = "EXPLICIT") -> AmcTimeWindow:
    return AmcTimeWindow(window_type, zone, "2026-03-01T00:00:00" if end else None, end)


def test_data_ready_at_is_the_window_end_in_its_zone_plus_the_age() -> None:
    age = timedelta(hours=48)
    assert data_ready_at(window("2026-03-08T00:00:00"), age) == datetime(2026, 3, 10, tzinfo=UTC)
    # New York midnight on 2026-03-09 is 04:00 UTC (EDT from 2026-03-08)
    assert data_ready_at(window("2026-03-09T00:00:00", "America/New_York"), age) == datetime(
        2026, 3, 11, 4, tzinfo=UTC
    )
    assert data_ready_at(window("2026-03-08T00:00:00"), timedelta(0)) == datetime(2026, 3, 8, tzinfo=UTC)


def test_no_wait_without_an_age_or_for_relative_windows() -> None:
    assert data_ready_at(window("2026-03-08T00:00:00"), None) is None
    assert data_ready_at(window(None, window_type="MOST_RECENT_DAY"), timedelta(hours=48)) is None
