"""The data-lag guard: do not query a window before AMC's data for it is complete.

AMC's data is complete about 48 hours after the fact (amc-api.md §6): a daily run at midnight
would query a day that is not complete yet. With ``min_data_age``, the operator submits only once
``window end + min_data_age`` has passed, and waits (deferred) until then otherwise. Relative
window types (``MOST_RECENT_DAY`` …) have no end the operator knows: AMC picks a window it has data
for, so they are never held back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow_provider_amc.client import AmcConfigError
from airflow_provider_amc.time_window import EXPLICIT, RETENTION_DAYS, AmcTimeWindow, local_instant

#: The longest ``min_data_age``: AMC keeps about 13 months of data, so a window older than that is
#: empty when the wait ends (and ``timedelta.max`` would overflow the date waited for).
MAX_MIN_DATA_AGE = timedelta(days=RETENTION_DAYS)


def validate_min_data_age(value: Any) -> timedelta | None:
    """``min_data_age``: ``None`` (off) or a ``timedelta`` from 0 to :data:`MAX_MIN_DATA_AGE`."""
    if value is None:
        return None
    if not isinstance(value, timedelta) or not timedelta(0) <= value <= MAX_MIN_DATA_AGE:
        raise AmcConfigError(
            f"min_data_age must be a non-negative datetime.timedelta (e.g. timedelta(hours=48)) of at "
            f"most {RETENTION_DAYS} days (AMC keeps about 13 months of data), or None, got {value!r}"
        )
    return value


def window_end_utc(window: AmcTimeWindow) -> datetime | None:
    """The window's (exclusive) end as an aware UTC datetime; ``None`` for relative window types."""
    if window.window_type != EXPLICIT or not window.end:
        return None
    return local_instant(window.end, window.time_zone)


def data_ready_at(window: AmcTimeWindow, min_data_age: timedelta | None) -> datetime | None:
    """When the window's data is old enough to query; ``None`` when there is nothing to wait for."""
    end = window_end_utc(window)
    if min_data_age is None or end is None:
        return None
    return end + min_data_age


__all__ = ["MAX_MIN_DATA_AGE", "data_ready_at", "validate_min_data_age", "window_end_utc"]
