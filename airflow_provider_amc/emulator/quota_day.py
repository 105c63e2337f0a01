"""The emulator's quota day: it starts ``quota_day_start_seconds`` after midnight UTC (config).

AMC does not document when its daily ad-hoc quota resets; midnight UTC is the default here and
tests move it (with the provider's ``quota_day_start``) to see a rollover within seconds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def current_quota_day(now: datetime, start_seconds: int) -> tuple[date, datetime]:
    """``(the date the quota day started on, when the next one starts)`` for emulator time ``now``."""
    offset = timedelta(seconds=start_seconds)
    started_on = (now.astimezone(UTC) - offset).date()
    next_start = datetime(started_on.year, started_on.month, started_on.day, tzinfo=UTC) + offset
    return started_on, next_start + timedelta(days=1)
