"""What the create-execution operator checks right before a create: data lag and the daily quota.

:meth:`SubmissionGuardMixin.guarded_create` is the one call the operator makes around its create:

1. ``min_data_age``: the window's data must be that old (window end + age in the past);
2. ``quota_policy``: the instance must have an ad-hoc execution left in this quota day
   (:mod:`airflow_provider_amc.quota`);
3. the create itself; a quota answer from AMC counts like an exhausted quota, and a throttled
   create (or quota count) whose ``Retry-After`` is longer than a call waits is tried again after
   it (both with ``quota_policy="wait"``).

Waiting is a deferral to the standard ``DateTimeTrigger`` (no worker slot while waiting); the task
resumes in :meth:`~SubmissionGuardMixin.resume_submission`, which runs ``execute`` again from the
top, so every check (and the at-most-once bookkeeping) runs again after the wait.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_amc import quota
from airflow_provider_amc.client import AmcApiError, AmcThrottledError, WorkflowExecution
from airflow_provider_amc.client.protocol import RETRY_AFTER_CEILING
from airflow_provider_amc.data_lag import data_ready_at
from airflow_provider_amc.time_window import AmcTimeWindow

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_amc.hooks.amc import AmcHook
    from airflow_provider_amc.lifecycle import Submission

RESUME_METHOD = "resume_submission"


class AmcQuotaExhausted(AirflowFailException):
    """The instance's daily ad-hoc quota is used up and ``quota_policy="fail"``."""


def throttled_until(exc: BaseException, now: datetime) -> datetime | None:
    """When AMC asked to be called again, for a throttled create the client did not retry because
    its ``Retry-After`` is longer than a call waits (``client.protocol.RETRY_AFTER_CEILING``)."""
    if isinstance(exc, AmcThrottledError) and exc.retry_after and exc.retry_after > RETRY_AFTER_CEILING:
        return now + timedelta(seconds=exc.retry_after)
    return None


class SubmissionGuardMixin:
    """Data-lag and quota checks around the create call (see the module doc)."""

    quota_settings: quota.QuotaSettings
    min_data_age: timedelta | None
    hook: AmcHook

    def guarded_create(
        self, submission: Submission, create: Callable[[], WorkflowExecution]
    ) -> WorkflowExecution:
        """Run ``create()`` unless the data is too recent or the quota is used up (defer or fail)."""
        now = datetime.now(UTC)
        instance_id = submission.instance_id
        window = AmcTimeWindow(
            submission.time_window_type,
            submission.time_window_time_zone,
            submission.time_window_start,
            submission.time_window_end,
        )
        ready = data_ready_at(window, self.min_data_age)
        if ready is not None and ready > now:
            self.log.info(  # type: ignore[attr-defined]
                "The window ends %s: its data is %s old only at %s (min_data_age); waiting until then",
                window.end,
                self.min_data_age,
                ready.isoformat(),
            )
            self.wait_until(ready)
        settings = self.quota_settings
        day_start = None
        if settings.enabled:
            try:
                day_start, exhausted = quota.check_quota(self.hook, instance_id, settings, now)
            except AmcApiError as exc:  # the count's list call
                self.wait_if_throttled(exc, "the quota count")
                raise
            if exhausted is not None:
                self.quota_exhausted(exhausted)
        try:
            execution = create()
        except AmcApiError as exc:
            if settings.enabled and quota.is_quota_answer(exc):
                self.quota_exhausted(quota.refused(instance_id, settings, datetime.now(UTC), exc))
            self.wait_if_throttled(exc, "the create")
            raise
        if day_start is not None:
            quota.note_created(self.hook, instance_id, day_start, execution.workflow_execution_id)
        return execution

    def wait_if_throttled(self, exc: AmcApiError, call: str) -> None:
        """With ``quota_policy="wait"``: defer until AMC's time when it throttled ``call`` with a
        ``Retry-After`` longer than a call waits; otherwise return (the caller re-raises)."""
        later = throttled_until(exc, datetime.now(UTC))
        if later is None or self.quota_settings.policy != "wait":
            return
        self.log.warning(  # type: ignore[attr-defined]
            "AMC throttled %s (Retry-After longer than a call waits): deferred until %s",
            call,
            later.isoformat(),
        )
        self.wait_until(later)

    def quota_exhausted(self, exhausted: quota.QuotaExhausted) -> NoReturn:
        """Fail (``quota_policy="fail"``) or wait for the quota day to roll over."""
        if self.quota_settings.policy == "fail":
            raise AmcQuotaExhausted(f"{exhausted.describe()} (quota_policy='fail')")
        self.log.warning("%s: waiting (deferred) until then", exhausted.describe())  # type: ignore[attr-defined]
        self.wait_until(exhausted.retry_at)

    def wait_until(self, moment: datetime) -> NoReturn:
        """Defer to the triggerer until ``moment``, then resume in :meth:`resume_submission`."""
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name=RESUME_METHOD)  # type: ignore[attr-defined]
        raise AssertionError("defer() returned")  # pragma: no cover - defer always raises

    def resume_submission(self, context: Context, event: Any = None) -> Any:
        """Back from a wait: run ``execute`` again (every check runs again)."""
        return self.execute(context)  # type: ignore[attr-defined]


__all__ = ["RESUME_METHOD", "AmcQuotaExhausted", "SubmissionGuardMixin", "throttled_until"]
