"""AMC's daily ad-hoc quota: how many executions an instance started in the current quota day.

AMC allows about 30 ad-hoc executions per instance per day, across all workflows (amc-api.md §6).
It does not document when its quota day starts, nor what a create over the quota answers: the
quota day here starts at ``quota_day_start`` UTC (default midnight) and any create refused with a
message about a daily limit or quota counts as a quota answer.

Counting lists the instance's executions created since the start of the quota day (cancelled ones
included; executions whose ``executionCategory`` says they are not ad hoc are left out). The
count is cached per (API base URL, instance) in the process for ``QUOTA_CACHE_TTL`` seconds and
raised by one for every create made through :func:`note_created`, so many tasks in one process
(``dag.test()``, a backfill in one worker) make one list call, not one each. The cache can only
let a create through: a count at or over the limit is always confirmed by a fresh list call before
anyone waits, so a stale entry (an emulator reset between two test runs, a quota day that rolled
over) never makes a task wait. Past the limit despite a stale count, AMC refuses the create and the
caller treats that answer like a count at the limit.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import time as day_time
from typing import TYPE_CHECKING, Any

from airflow_provider_amc.client import AmcApiError, AmcConfigError
from airflow_provider_amc.lifecycle import amc_instant

if TYPE_CHECKING:
    from airflow_provider_amc.hooks.amc import AmcHook

#: ``quota_policy`` values: defer until the quota day rolls over, fail at once, or do not check.
QUOTA_POLICIES = ("wait", "fail", "ignore")
DEFAULT_QUOTA_POLICY = "wait"
#: AMC's documented ad-hoc limit per instance per day.
DEFAULT_DAILY_QUOTA = 30
DEFAULT_QUOTA_DAY_START = "00:00"
#: Seconds a count is reused by other tasks of the process (see the module doc).
QUOTA_CACHE_TTL = 10.0
#: A task waiting for the quota day resumes this long after the rollover: a worker clock slightly
#: ahead of AMC's would otherwise ask a moment too early and be sent to wait a whole day more.
ROLLOVER_GRACE = timedelta(seconds=5)

_DAY_START_PATTERN = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
#: What a refused create says when the daily quota is used up (AMC's wording is undocumented).
_QUOTA_ANSWER = re.compile(r"\bquota\b|\bdaily\b.*\blimit\b|\blimit\b.*\bper day\b", re.IGNORECASE)
_NOT_AD_HOC = frozenset({"SCHEDULED", "SCHEDULE"})


@dataclass(frozen=True)
class QuotaSettings:
    """Validated quota arguments of an operator."""

    policy: str = DEFAULT_QUOTA_POLICY
    daily_quota: int = DEFAULT_DAILY_QUOTA
    day_start: day_time = day_time(0, 0)

    @property
    def enabled(self) -> bool:
        return self.policy != "ignore"


def _is_utc(zone: tzinfo) -> bool:
    """Whether ``zone`` is UTC all year. A named zone (``ZoneInfo``) gives a bare time no offset
    (``utcoffset()`` is None): its offset is read on dates in winter and summer instead."""
    probes = [datetime(year, month, 1, 12, tzinfo=zone) for year in (2000, 2025) for month in (1, 7)]
    return all(probe.utcoffset() == timedelta(0) for probe in probes)


def parse_day_start(value: Any) -> day_time:
    """``quota_day_start``: ``HH:MM[:SS]`` (UTC) or a ``datetime.time``."""
    if isinstance(value, day_time):
        if value.tzinfo is not None and not _is_utc(value.tzinfo):
            raise AmcConfigError(
                f"quota_day_start must be a UTC time of day ('HH:MM[:SS]' or a datetime.time without "
                f"a zone or in UTC), got {value!r}"
            )
        return value.replace(tzinfo=None, microsecond=0)
    match = _DAY_START_PATTERN.fullmatch(value.strip()) if isinstance(value, str) else None
    if match:
        hour, minute, second = (int(part or 0) for part in match.groups())
        if hour < 24 and minute < 60 and second < 60:
            return day_time(hour, minute, second)
    raise AmcConfigError(
        f"quota_day_start {value!r} is not a time of day: use 'HH:MM' or 'HH:MM:SS' (UTC), "
        "e.g. '00:00', or a datetime.time"
    )


def quota_settings(policy: Any, daily_quota: Any, day_start: Any) -> QuotaSettings:
    """Validate the operator's quota arguments; each error names the argument."""
    if policy not in QUOTA_POLICIES:
        raise AmcConfigError(
            f"quota_policy {policy!r} is not supported: allowed values are {', '.join(QUOTA_POLICIES)}"
        )
    if isinstance(daily_quota, bool) or not isinstance(daily_quota, int) or daily_quota < 1:
        raise AmcConfigError(f"daily_quota must be a positive integer, got {daily_quota!r}")
    return QuotaSettings(policy, daily_quota, parse_day_start(day_start))


def quota_day(now: datetime, day_start: day_time) -> tuple[datetime, datetime]:
    """The quota day holding ``now``: ``[start, next start)`` as aware UTC datetimes."""
    now = now.astimezone(UTC)
    start = datetime.combine(now.date(), day_start, tzinfo=UTC)
    if start > now:
        start -= timedelta(days=1)
    return start, start + timedelta(days=1)


# ---- counting, with a short per-process cache ---------------------------------------------------
@dataclass
class _Usage:
    day_start: datetime
    fetched_at: float
    execution_ids: set[str] = field(default_factory=set)


_usage: dict[tuple[str, str], _Usage] = {}
_usage_lock = threading.Lock()


def _key(hook: AmcHook, instance_id: str) -> tuple[str, str]:
    return (hook.settings.api_base_url, instance_id)


def list_started(hook: AmcHook, instance_id: str, day_start: datetime) -> set[str]:
    """Ids of the ad-hoc executions the instance started since ``day_start`` (one list call)."""
    started = set()
    for execution in hook.find_executions(
        created_after=day_start, instance_id=instance_id, include_cancelled=True
    ):
        if (execution.execution_category or "AD_HOC").upper() in _NOT_AD_HOC:
            continue
        created = amc_instant(execution.create_time)
        if created is not None and created < day_start:
            continue
        started.add(execution.workflow_execution_id)
    return started


def started_in_quota_day(hook: AmcHook, instance_id: str, day_start: datetime, *, fresh: bool) -> int:
    """How many executions the instance started since ``day_start``: cached unless ``fresh``."""
    key = _key(hook, instance_id)
    with _usage_lock:
        usage = _usage.get(key)
        if (
            not fresh
            and usage is not None
            and usage.day_start == day_start
            and time.monotonic() - usage.fetched_at < QUOTA_CACHE_TTL
        ):
            return len(usage.execution_ids)
    started = list_started(hook, instance_id, day_start)
    with _usage_lock:
        _usage[key] = _Usage(day_start, time.monotonic(), started)
    return len(started)


def note_created(hook: AmcHook, instance_id: str, day_start: datetime, execution_id: str) -> None:
    """Count an execution this process just created in the cached usage of its quota day."""
    with _usage_lock:
        usage = _usage.get(_key(hook, instance_id))
        if usage is not None and usage.day_start == day_start:
            usage.execution_ids.add(execution_id)


@dataclass(frozen=True)
class QuotaExhausted:
    """The instance has no ad-hoc execution left in this quota day."""

    instance_id: str
    used: int | None
    limit: int
    resets_at: datetime
    answer: str | None = None
    """AMC's refusal, when the create itself was refused."""

    @property
    def retry_at(self) -> datetime:
        """When to check again: just after the rollover (``ROLLOVER_GRACE``)."""
        return self.resets_at + ROLLOVER_GRACE

    def describe(self) -> str:
        reset = self.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.answer is not None:
            return (
                f"AMC refused the create on instance {self.instance_id} with a quota answer "
                f"({self.answer}); the quota day rolls over at {reset}"
            )
        return (
            f"AMC instance {self.instance_id} already started {self.used} of its {self.limit} ad-hoc "
            f"executions this quota day; the quota day rolls over at {reset}"
        )


def check_quota(
    hook: AmcHook, instance_id: str, settings: QuotaSettings, now: datetime
) -> tuple[datetime, QuotaExhausted | None]:
    """``(quota day start, None)`` when a create may go ahead, else what is exhausted."""
    start, end = quota_day(now, settings.day_start)
    used = started_in_quota_day(hook, instance_id, start, fresh=False)
    if used >= settings.daily_quota:  # never wait on a cached count: confirm it
        used = started_in_quota_day(hook, instance_id, start, fresh=True)
    if used < settings.daily_quota:
        return start, None
    return start, QuotaExhausted(instance_id, used, settings.daily_quota, end)


def is_quota_answer(exc: BaseException) -> bool:
    """Whether an error from a create call is AMC refusing it over the daily quota."""
    if not isinstance(exc, AmcApiError) or exc.status_code not in (400, 403, 422, 429):
        return False
    return bool(_QUOTA_ANSWER.search(f"{exc.details or ''} {exc.code or ''}"))


def refused(instance_id: str, settings: QuotaSettings, now: datetime, exc: AmcApiError) -> QuotaExhausted:
    """The exhausted quota behind a quota answer from AMC (the day rolls over per ``settings``)."""
    _, end = quota_day(now, settings.day_start)
    return QuotaExhausted(instance_id, None, settings.daily_quota, end, answer=exc.details or str(exc))


__all__ = [
    "DEFAULT_DAILY_QUOTA",
    "DEFAULT_QUOTA_DAY_START",
    "DEFAULT_QUOTA_POLICY",
    "QUOTA_CACHE_TTL",
    "QUOTA_POLICIES",
    "ROLLOVER_GRACE",
    "QuotaExhausted",
    "QuotaSettings",
    "check_quota",
    "is_quota_answer",
    "note_created",
    "parse_day_start",
    "quota_day",
    "quota_settings",
    "refused",
    "started_in_quota_day",
]
