"""resolve_time_window: explicit bounds, data intervals across DST, defaults, and validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pendulum
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from airflow_provider_amc.client.errors import AmcConfigError
from airflow_provider_amc.time_window import (
    TIME_WINDOW_TYPES,
    AmcTimeWindow,
    AmcTimeWindowError,
    local_instant,
    resolve_time_window,
)

LA = "America/Los_Angeles"
BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local_hours(window: AmcTimeWindow) -> float:
    """Real elapsed hours between the window's local bounds."""
    zone = ZoneInfo(window.time_zone)
    assert window.start is not None and window.end is not None
    start = datetime.fromisoformat(window.start).replace(tzinfo=zone)
    end = datetime.fromisoformat(window.end).replace(tzinfo=zone)
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600


# ---- data intervals ------------------------------------------------------------------------------
def test_utc_day_from_data_interval() -> None:
    window = resolve_time_window(data_interval_start=utc(2024, 5, 1), data_interval_end=utc(2024, 5, 2))
    assert window == AmcTimeWindow("EXPLICIT", "UTC", "2024-05-01T00:00:00", "2024-05-02T00:00:00")


def test_spring_forward_week_in_los_angeles() -> None:
    # Local midnights 2024-03-09 (PST, -8) and 2024-03-16 (PDT, -7): DST starts 2024-03-10.
    window = resolve_time_window(
        time_zone=LA,
        data_interval_start=utc(2024, 3, 9, 8),
        data_interval_end=utc(2024, 3, 16, 7),
    )
    assert (window.start, window.end) == ("2024-03-09T00:00:00", "2024-03-16T00:00:00")
    assert local_hours(window) == 167


def test_fall_back_week_in_los_angeles_with_pendulum_interval() -> None:
    # DST ends 2024-11-03: local midnight 11-02 is 07:00Z (PDT), 11-09 is 08:00Z (PST).
    window = resolve_time_window(
        time_zone=LA,
        data_interval_start=pendulum.datetime(2024, 11, 2, 7, tz="UTC"),
        data_interval_end=pendulum.datetime(2024, 11, 9, 8, tz="UTC"),
    )
    assert (window.start, window.end) == ("2024-11-02T00:00:00", "2024-11-09T00:00:00")
    assert local_hours(window) == 169


def test_berlin_month_across_october_change() -> None:
    window = resolve_time_window(
        time_zone=BERLIN,
        data_interval_start=utc(2024, 9, 30, 22),  # 2024-10-01 00:00 CEST
        data_interval_end=utc(2024, 10, 31, 23),  # 2024-11-01 00:00 CET
    )
    assert (window.start, window.end) == ("2024-10-01T00:00:00", "2024-11-01T00:00:00")
    assert local_hours(window) == 31 * 24 + 1


def test_naive_data_interval_is_utc() -> None:
    window = resolve_time_window(
        time_zone=BERLIN,
        data_interval_start=datetime(2024, 1, 1, 23),
        data_interval_end=datetime(2024, 1, 2, 23),
    )
    assert (window.start, window.end) == ("2024-01-02T00:00:00", "2024-01-03T00:00:00")


@pytest.mark.parametrize(
    ("interval", "now", "days", "expected"),
    [
        # zero-length interval [L, L] (cron string in 3.3) -> default 7 days
        ((utc(2024, 5, 10), utc(2024, 5, 10)), utc(2024, 5, 10, 15), 7, ("2024-05-03", "2024-05-10")),
        # no interval (manual run without logical date)
        ((None, None), utc(2024, 5, 10, 0, 0, 1), 7, ("2024-05-03", "2024-05-10")),
        # a reversed interval is not usable either
        ((utc(2024, 5, 10), utc(2024, 5, 9)), utc(2024, 5, 10, 15), 1, ("2024-05-09", "2024-05-10")),
        ((None, None), utc(2024, 1, 3, 12), 30, ("2023-12-04", "2024-01-03")),
    ],
)
def test_default_window_when_interval_is_not_usable(
    interval: tuple[datetime | None, datetime | None], now: datetime, days: int, expected: tuple[str, str]
) -> None:
    window = resolve_time_window(
        data_interval_start=interval[0], data_interval_end=interval[1], default_days=days, now=now
    )
    assert (window.start, window.end) == (f"{expected[0]}T00:00:00", f"{expected[1]}T00:00:00")


def test_default_window_uses_local_midnight_and_calendar_days() -> None:
    # 2024-03-12 06:30Z is 2024-03-11 23:30 PDT: the latest local midnight is 03-11, not 03-12.
    window = resolve_time_window(time_zone=LA, now=utc(2024, 3, 12, 6, 30))
    assert (window.start, window.end) == ("2024-03-04T00:00:00", "2024-03-11T00:00:00")
    assert local_hours(window) == 167


def test_default_window_defaults_to_current_time() -> None:
    before = datetime.now(UTC).date()
    window = resolve_time_window()
    after = datetime.now(UTC).date()
    assert window.end in {f"{before}T00:00:00", f"{after}T00:00:00"}
    assert window.start == f"{date.fromisoformat(window.end[:10]) - timedelta(days=7)}T00:00:00"


# ---- explicit bounds -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "end", "zone", "expected"),
    [
        ("2024-01-01", "2024-01-08", "UTC", ("2024-01-01T00:00:00", "2024-01-08T00:00:00")),
        ("2024-01-01 06:30", "2024-01-01T07:00:59.999", LA, ("2024-01-01T06:30:00", "2024-01-01T07:00:59")),
        # offsets and Z are instants: converted into the window's zone
        (
            "2024-01-01T08:00:00Z",
            "2024-01-02T08:00:00+00:00",
            LA,
            ("2024-01-01T00:00:00", "2024-01-02T00:00:00"),
        ),
        (
            "2024-07-01T00:00:00+02:00",
            "2024-07-02T00:00:00+0200",
            "UTC",
            ("2024-06-30T22:00:00", "2024-07-01T22:00:00"),
        ),
        (date(2024, 2, 1), date(2024, 3, 1), BERLIN, ("2024-02-01T00:00:00", "2024-03-01T00:00:00")),
        # naive datetimes are local wall times; aware ones are converted
        (
            datetime(2024, 2, 1, 5),
            utc(2024, 2, 1, 23),
            BERLIN,
            ("2024-02-01T05:00:00", "2024-02-02T00:00:00"),
        ),
        (
            pendulum.datetime(2024, 6, 1, tz="Asia/Tokyo"),
            datetime(2024, 6, 2, tzinfo=timezone(timedelta(hours=9))),
            "UTC",
            ("2024-05-31T15:00:00", "2024-06-01T15:00:00"),
        ),
    ],
)
def test_explicit_bounds(start: object, end: object, zone: str, expected: tuple[str, str]) -> None:
    window = resolve_time_window(
        start=start,
        end=end,
        time_zone=zone,
        data_interval_start=utc(2000, 1, 1),
        data_interval_end=utc(2000, 1, 2),
    )
    assert (window.window_type, window.time_zone, window.start, window.end) == ("EXPLICIT", zone, *expected)


def test_empty_strings_mean_not_given() -> None:
    window = resolve_time_window(
        start="",
        end="  ",
        time_zone="",
        window_type="",
        data_interval_start=utc(2024, 1, 1),
        data_interval_end=utc(2024, 1, 2),
    )
    assert window == AmcTimeWindow("EXPLICIT", "UTC", "2024-01-01T00:00:00", "2024-01-02T00:00:00")


@pytest.mark.parametrize("kind", [t for t in TIME_WINDOW_TYPES if t != "EXPLICIT"])
def test_relative_types_send_no_bounds(kind: str) -> None:
    window = resolve_time_window(
        window_type=kind.lower(),
        time_zone=LA,
        data_interval_start=utc(2024, 1, 1),
        data_interval_end=utc(2024, 1, 2),
    )
    assert window == AmcTimeWindow(kind, LA, None, None)
    assert window.as_dict() == {
        "time_window_type": kind,
        "time_window_time_zone": LA,
        "time_window_start": None,
        "time_window_end": None,
    }


# ---- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"start": "yesterday", "end": "2024-01-02"}, "time_window_start", "'yesterday'"),
        ({"start": "2024-01-01", "end": "2024-13-01"}, "time_window_end", "YYYY-MM-DD"),
        ({"start": "2024-01-01", "end": "20240102"}, "time_window_end", "'20240102'"),
        ({"start": 20240101, "end": "2024-01-02"}, "time_window_start", "20240101"),
        ({"start": "2024-01-02", "end": "2024-01-01"}, "time_window_end", "must be after"),
        ({"start": "2024-01-01", "end": "2024-01-01"}, "time_window_end", "must be after"),
        (
            {"start": "2024-01-01T00:00:00.1", "end": "2024-01-01T00:00:00.9"},
            "time_window_end",
            "must be after",
        ),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_window_time_zone", "Mars/Olympus_Mons"),
        ({"time_zone": "../etc/passwd"}, "time_window_time_zone", "IANA"),
        ({"time_zone": 5}, "time_window_time_zone", "IANA"),
        ({"window_type": "LAST_WEEK"}, "time_window_type", "MOST_RECENT_WEEK"),
        ({"window_type": "ALL", "start": "2024-01-01"}, "time_window_start", "relative"),
        ({"window_type": "MOST_RECENT_DAY", "end": "2024-01-01"}, "time_window_end", "relative"),
        ({"start": "2024-01-01"}, "time_window_end", "time_window_start is given"),
        ({"end": "2024-01-01"}, "time_window_start", "time_window_end is given"),
        ({"default_days": 0}, "default_days", ">= 1"),
        ({"default_days": True}, "default_days", ">= 1"),
        ({"default_days": "7"}, "default_days", ">= 1"),
    ],
)
def test_errors_name_their_field(kwargs: dict[str, object], field: str, fragment: str) -> None:
    with pytest.raises(AmcTimeWindowError) as info:
        resolve_time_window(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")
    assert fragment in str(info.value)
    assert isinstance(info.value, AmcConfigError)
    assert isinstance(info.value, ValueError)


def test_repeated_local_hour_in_data_interval_is_reported() -> None:
    # 08:00Z-09:00Z on 2024-11-03 is 01:00 PDT -> 01:00 PST: the same wall time twice.
    with pytest.raises(AmcTimeWindowError) as info:
        resolve_time_window(
            time_zone=LA, data_interval_start=utc(2024, 11, 3, 8), data_interval_end=utc(2024, 11, 3, 9)
        )
    assert info.value.field == "time_window_end"
    assert "data interval" in str(info.value)


# ---- property --------------------------------------------------------------------------------------
ZONES = ["UTC", LA, BERLIN, "Asia/Kolkata", "Australia/Lord_Howe", "America/Sao_Paulo", "Pacific/Chatham"]


def _unambiguous(moment: datetime, zone: ZoneInfo) -> bool:
    wall = moment.astimezone(zone).replace(tzinfo=None)
    return wall.replace(tzinfo=zone, fold=0).utcoffset() == wall.replace(tzinfo=zone, fold=1).utcoffset()


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    length=st.timedeltas(min_value=timedelta(hours=2), max_value=timedelta(days=400)),
    zone_name=st.sampled_from(ZONES),
)
def test_property_interval_round_trips(start: datetime, length: timedelta, zone_name: str) -> None:
    start = start.replace(microsecond=0)
    end = start + timedelta(seconds=int(length.total_seconds()))
    zone = ZoneInfo(zone_name)
    assume(_unambiguous(start, zone) and _unambiguous(end, zone))
    window = resolve_time_window(time_zone=zone_name, data_interval_start=start, data_interval_end=end)
    assert window.start is not None and window.end is not None
    assert window.start < window.end
    assert datetime.fromisoformat(window.start).replace(tzinfo=zone) == start
    assert datetime.fromisoformat(window.end).replace(tzinfo=zone) == end


@pytest.mark.parametrize(
    ("local", "zone", "expected"),
    [
        ("2026-03-08T00:00:00", "America/New_York", datetime(2026, 3, 8, 5, tzinfo=UTC)),  # EST
        ("2026-03-09T00:00:00", "America/New_York", datetime(2026, 3, 9, 4, tzinfo=UTC)),  # EDT
        ("2026-07-01T00:00:00", "Europe/Berlin", datetime(2026, 6, 30, 22, tzinfo=UTC)),
        ("2026-07-01T00:00:00", "UTC", datetime(2026, 7, 1, tzinfo=UTC)),
    ],
)
def test_local_instant_reads_an_amc_wall_time_in_its_zone(local: str, zone: str, expected: datetime) -> None:
    instant = local_instant(local, zone)
    assert instant == expected
    assert instant.utcoffset() == timedelta(0)  # aware and in UTC, as data_lag and lifecycle need
