"""Resolve a run's AMC time window: explicit bounds, the data interval, or a default window.

AMC wants ``timeWindowStart``/``timeWindowEnd`` as local wall times (``YYYY-MM-DDTHH:MM:SS``, no
offset) in the IANA zone sent as ``timeWindowTimeZone``; the end is exclusive. Relative window types
(``MOST_RECENT_DAY`` …) send no bounds at all. Everything here is validated before any HTTP call and
every error names the operator argument at fault. No Airflow imports: the inputs are plain values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_amc.client.errors import AmcConfigError
from airflow_provider_amc.client.models import TIME_WINDOW_TYPES

EXPLICIT = "EXPLICIT"
DEFAULT_TIME_ZONE = "UTC"
DEFAULT_WINDOW_DAYS = 7

#: The wall-time format AMC expects (no offset, no fraction).
AMC_TIME_FORMAT = "YYYY-MM-DDTHH:MM:SS"
ACCEPTED_FORMATS = (
    "YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS[.ffffff]] (local time in time_window_time_zone; a space may "
    "replace the T), the same with an offset (+HH:MM) or Z, or a date/datetime object"
)
_DATE_TIME_PATTERN = re.compile(
    r"^\d{4}-\d{2}-\d{2}"  # date
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"  # optional time, seconds, fraction
    r"(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$",  # optional offset
    re.IGNORECASE,
)

START_FIELD = "time_window_start"
END_FIELD = "time_window_end"
ZONE_FIELD = "time_window_time_zone"
TYPE_FIELD = "time_window_type"
DAYS_FIELD = "default_days"


class AmcTimeWindowError(AmcConfigError):
    """An invalid time-window argument; ``field`` names the argument (e.g. ``time_window_end``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class AmcTimeWindow:
    """A resolved window. ``start``/``end`` are local wall times in ``time_zone`` (EXPLICIT only)."""

    window_type: str
    time_zone: str
    start: str | None = None
    end: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """Snake-case view, named like the execution-record columns (JSON-friendly for XCom)."""
        return {
            "time_window_type": self.window_type,
            "time_window_time_zone": self.time_zone,
            "time_window_start": self.start,
            "time_window_end": self.end,
        }


#: AMC instances keep about 13 months of data (amc-api.md §6 "Retention"); AMC documents no maximum
#: EXPLICIT window length, so a longer window is warned about, not refused.
RETENTION_DAYS = 396


def window_length_warning(window: AmcTimeWindow) -> str | None:
    """A warning when an EXPLICIT window is longer than AMC's ~13-month data retention, else None."""
    if window.window_type != EXPLICIT or window.start is None or window.end is None:
        return None
    days = (datetime.fromisoformat(window.end) - datetime.fromisoformat(window.start)).total_seconds() / 86400
    if days <= RETENTION_DAYS:
        return None
    return (
        f"The window [{window.start}, {window.end}) spans {days:.0f} days: AMC keeps about 13 months of "
        "data, so the older part will be empty, and very long windows may time out on some datasets"
    )


def _given(value: Any) -> bool:
    """Templates render a missing value as ``""``: treat it like ``None``."""
    return not (value is None or (isinstance(value, str) and not value.strip()))


def _window_type(value: Any) -> str:
    if not _given(value):
        return EXPLICIT
    normalised = value.strip().upper() if isinstance(value, str) else value
    if normalised not in TIME_WINDOW_TYPES:
        raise AmcTimeWindowError(
            TYPE_FIELD, f"{value!r} is not a time window type; allowed values: {', '.join(TIME_WINDOW_TYPES)}"
        )
    return str(normalised)


def _zone(value: Any) -> tuple[str, ZoneInfo]:
    name = value.strip() if isinstance(value, str) else value
    if not _given(name):
        name = DEFAULT_TIME_ZONE
    if not isinstance(name, str):
        raise AmcTimeWindowError(ZONE_FIELD, f"expected an IANA time zone name such as 'UTC', got {value!r}")
    try:
        return name, ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise AmcTimeWindowError(
            ZONE_FIELD, f"{value!r} is not a known IANA time zone (e.g. 'UTC', 'America/New_York')"
        ) from exc


def _parse(field: str, value: Any) -> datetime:
    """A bound as a datetime: naive = wall time in the window's zone, aware = an instant."""
    if isinstance(value, datetime):  # pendulum.DateTime included
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        text = value.strip()
        if _DATE_TIME_PATTERN.match(text):
            try:
                return datetime.fromisoformat(text.upper())
            except ValueError:
                pass  # e.g. month 13: reported below with the accepted formats
    raise AmcTimeWindowError(field, f"cannot read {value!r} as a date/time; accepted: {ACCEPTED_FORMATS}")


def _wall_time(field: str, moment: datetime, zone: tzinfo, *, naive_zone: tzinfo | None = None) -> str:
    """``moment`` as an AMC wall-time string in ``zone``.

    Naive values are wall times already, unless ``naive_zone`` says which zone they are in.
    Fractions of a second are dropped (AMC's format has none).
    """
    if moment.tzinfo is None and naive_zone is not None:
        moment = moment.replace(tzinfo=naive_zone)
    try:
        local = moment.astimezone(zone) if moment.tzinfo is not None else moment
    except (OverflowError, ValueError) as exc:
        raise AmcTimeWindowError(field, f"{moment.isoformat()} is out of range in this time zone") from exc
    return local.replace(tzinfo=None, microsecond=0).isoformat()


def _checked(start: str, end: str, time_zone: str, origin: str = "") -> AmcTimeWindow:
    # ISO strings of the same shape sort like the wall times they denote.
    if end <= start:
        raise AmcTimeWindowError(
            END_FIELD,
            f"the end {end} must be after the start {start}{origin} (local times in {time_zone}; the "
            "end is exclusive, so a one-day window ends at the next midnight)",
        )
    return AmcTimeWindow(EXPLICIT, time_zone, start, end)


def default_window(zone: tzinfo, days: int, now: datetime | None = None) -> tuple[str, str]:
    """The ``days`` calendar days ending at the latest local midnight in ``zone`` before ``now``.

    Calendar arithmetic on local dates keeps DST changes out of it: a week is 7 local days
    (167 or 169 hours across a change).
    """
    current = now or datetime.now(UTC)
    if current.tzinfo is None:
        current = current.replace(tzinfo=UTC)
    end_day = current.astimezone(zone).date()
    start_day = end_day - timedelta(days=days)
    return f"{start_day.isoformat()}T00:00:00", f"{end_day.isoformat()}T00:00:00"


def _default_days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AmcTimeWindowError(DAYS_FIELD, f"must be a whole number of days >= 1, got {value!r}")
    return value


def resolve_time_window(
    *,
    start: Any = None,
    end: Any = None,
    time_zone: Any = DEFAULT_TIME_ZONE,
    window_type: Any = EXPLICIT,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
    default_days: int = DEFAULT_WINDOW_DAYS,
    now: datetime | None = None,
) -> AmcTimeWindow:
    """Work out the AMC window of one run.

    * ``EXPLICIT`` with both bounds: those bounds (strings, dates or datetimes; naive = local time
      in ``time_zone``, aware = converted into it).
    * ``EXPLICIT`` with neither: the run's data interval converted into ``time_zone`` when it is
      usable (both ends present, start < end; naive ends are taken as UTC like Airflow's), else the
      last ``default_days`` days ending at the latest local midnight (relative to ``now``).
    * A relative type: no bounds (giving one is an error).

    Raises :class:`AmcTimeWindowError` (a ``ValueError``) whose ``field`` names the bad argument.
    """
    kind = _window_type(window_type)
    zone_name, zone = _zone(time_zone)
    days = _default_days(default_days)
    has_start, has_end = _given(start), _given(end)

    if kind != EXPLICIT:
        if has_start or has_end:
            field = START_FIELD if has_start else END_FIELD
            raise AmcTimeWindowError(
                field,
                f"{kind} is a relative window type and takes no start/end; clear {field} "
                f"or use time_window_type='{EXPLICIT}'",
            )
        return AmcTimeWindow(kind, zone_name)

    if has_start != has_end:
        missing = END_FIELD if has_start else START_FIELD
        given = START_FIELD if has_start else END_FIELD
        raise AmcTimeWindowError(
            missing, f"is required when {given} is given (an EXPLICIT window takes both bounds or neither)"
        )

    if has_start:
        return _checked(
            _wall_time(START_FIELD, _parse(START_FIELD, start), zone),
            _wall_time(END_FIELD, _parse(END_FIELD, end), zone),
            zone_name,
        )

    if (
        isinstance(data_interval_start, datetime)
        and isinstance(data_interval_end, datetime)
        and _as_utc(data_interval_start) < _as_utc(data_interval_end)
    ):
        return _checked(
            _wall_time(START_FIELD, data_interval_start, zone, naive_zone=UTC),
            _wall_time(END_FIELD, data_interval_end, zone, naive_zone=UTC),
            zone_name,
            " (from the run's data interval; a clock change can make local times repeat)",
        )

    return AmcTimeWindow(EXPLICIT, zone_name, *default_window(zone, days, now))


def local_instant(local: str, time_zone: str) -> datetime:
    """An AMC local wall time (``YYYY-MM-DDTHH:MM:SS``) in ``time_zone`` as an aware UTC datetime."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(time_zone)).astimezone(UTC)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


__all__ = [
    "TIME_WINDOW_TYPES",
    "AmcTimeWindow",
    "AmcTimeWindowError",
    "default_window",
    "local_instant",
    "resolve_time_window",
]
