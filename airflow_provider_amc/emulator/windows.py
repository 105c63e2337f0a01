"""AMC time-window handling: strict local timestamps, IANA zones, relative window types."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_amc.emulator.responses import bad_request

WINDOW_TYPES: Final = (
    "ALL",
    "CURRENT_MONTH",
    "EXPLICIT",
    "MOST_RECENT_DAY",
    "MOST_RECENT_WEEK",
    "PREVIOUS_MONTH",
)
DEFAULT_WINDOW_TYPE: Final = "MOST_RECENT_DAY"
LOCAL_FORMAT: Final = "%Y-%m-%dT%H:%M:%S"
_LOCAL_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
RETENTION: Final = timedelta(days=396)  # ~13 months


def zone(name: object, field: str = "timeWindowTimeZone") -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise bad_request(f"{field} must be an IANA time zone name such as 'UTC' or 'America/New_York'.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise bad_request(f"Invalid {field} '{name}': not a known IANA time zone.") from None


def parse_local(value: object, field: str) -> datetime:
    """Parse ``yyyy-MM-ddTHH:mm:ss`` (no offset); anything else (date-only, offsets) is a 400."""
    if not isinstance(value, str) or not _LOCAL_RE.match(value):
        raise bad_request(f"Invalid {field} '{value}': expected format yyyy-MM-ddTHH:mm:ss.")
    try:
        return datetime.strptime(value, LOCAL_FORMAT)
    except ValueError:
        raise bad_request(f"Invalid {field} '{value}': not a valid date/time.") from None


def utc_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_millis(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Window:
    """A resolved window: local bounds in ``tz`` and the matching aware UTC instants."""

    window_type: str
    tz_name: str
    start_local: datetime
    end_local: datetime

    @property
    def start_utc(self) -> datetime:
        return self.start_local.replace(tzinfo=ZoneInfo(self.tz_name)).astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end_local.replace(tzinfo=ZoneInfo(self.tz_name)).astimezone(UTC)


def _first_of_month(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def resolve(
    window_type: object,
    start: object,
    end: object,
    tz_name: object,
    now: datetime,
    lag_hours: int,
) -> Window:
    """Validate the request's window fields and resolve relative types against the latest data time."""
    kind = DEFAULT_WINDOW_TYPE if window_type is None else window_type
    if kind not in WINDOW_TYPES:
        raise bad_request(f"Invalid timeWindowType '{kind}'. Allowed values: {', '.join(WINDOW_TYPES)}.")
    tz_label = "UTC" if tz_name is None else tz_name
    tz = zone(tz_label)
    assert isinstance(tz_label, str)
    if kind == "EXPLICIT":
        if start is None or end is None:
            raise bad_request(
                "timeWindowStart and timeWindowEnd are required when timeWindowType is EXPLICIT."
            )
        start_local = parse_local(start, "timeWindowStart")
        end_local = parse_local(end, "timeWindowEnd")
        if start_local >= end_local:
            raise bad_request(f"timeWindowStart '{start}' must be before timeWindowEnd '{end}'.")
        return Window(str(kind), tz_label, start_local, end_local)
    latest = (now - timedelta(hours=lag_hours)).astimezone(tz).replace(tzinfo=None)
    day_end = latest.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "MOST_RECENT_DAY":
        bounds = (day_end - timedelta(days=1), day_end)
    elif kind == "MOST_RECENT_WEEK":
        bounds = (day_end - timedelta(days=7), day_end)
    elif kind == "CURRENT_MONTH":
        bounds = (_first_of_month(day_end - timedelta(seconds=1)), day_end)
    elif kind == "PREVIOUS_MONTH":
        this_month = _first_of_month(day_end - timedelta(seconds=1))
        bounds = (_first_of_month(this_month - timedelta(days=1)), this_month)
    else:  # ALL
        bounds = (day_end - RETENTION, day_end)
    return Window(str(kind), tz_label, bounds[0], bounds[1])
