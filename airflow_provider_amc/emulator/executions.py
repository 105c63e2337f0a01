"""Workflow executions and their lazily derived lifecycle (PENDING -> RUNNING -> terminal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from airflow_provider_amc.emulator.defaults import INVALIDATION_OFFSET_SECS
from airflow_provider_amc.emulator.results import ResultSpec, output_columns
from airflow_provider_amc.emulator.scripts import WorkflowScript
from airflow_provider_amc.emulator.windows import LOCAL_FORMAT, Window, utc_millis, utc_z

PENDING: Final = "PENDING"
RUNNING: Final = "RUNNING"
SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
REJECTED: Final = "REJECTED"
CANCELLED: Final = "CANCELLED"
TERMINAL: Final = frozenset({SUCCEEDED, FAILED, REJECTED, CANCELLED})
DRY_RUN_SECONDS: Final = 1.0


@dataclass
class Execution:
    """One execution. Request fields are fixed at creation; status fields move with the clock."""

    execution_id: str
    instance_id: str
    workflow_id: str
    sql_query: str
    seq: int
    create_time: datetime
    window: Window
    explicit_window: bool
    parameter_values: dict[str, Any]
    timeout_seconds: int
    dry_run: bool
    ignore_data_gaps: bool
    require_synthetic_data: bool
    disable_aggregation_controls: bool
    output_format: str
    script: WorkflowScript
    output_bucket: str | None
    result: ResultSpec
    reject_reason: str | None = None
    status: str = PENDING
    status_reason: str | None = None
    last_updated: datetime = field(init=False)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def __post_init__(self) -> None:
        self.last_updated = self.create_time

    @property
    def ready_at(self) -> datetime:
        """When validation is over and the execution may start (or end, if it needs no slot)."""
        seconds = DRY_RUN_SECONDS if self.dry_run else self.script.pending_seconds
        return self.create_time + timedelta(seconds=seconds)

    @property
    def needs_slot(self) -> bool:
        return not (self.dry_run or self.reject_reason or self.script.outcome == "REJECTED")

    @property
    def deadline(self) -> datetime:
        return self.create_time + timedelta(seconds=self.timeout_seconds)

    @property
    def planned_finish(self) -> datetime:
        assert self.started_at is not None
        if self.script.outcome == "HANG":
            return max(self.started_at, self.deadline)
        return min(
            self.started_at + timedelta(seconds=self.script.running_seconds),
            max(self.started_at, self.deadline),
        )

    @property
    def has_output(self) -> bool:
        return self.status == SUCCEEDED and not self.dry_run

    def _set(self, status: str, at: datetime, reason: str | None = None) -> None:
        self.status, self.last_updated, self.status_reason = status, at, reason

    def settle_without_slot(self) -> None:
        if self.reject_reason or self.script.outcome == "REJECTED":
            self._set(REJECTED, self.ready_at, self.reject_reason or self.script.reason())
        else:
            self._set(SUCCEEDED, self.ready_at)
        self.finished_at = self.ready_at

    def start(self, at: datetime) -> None:
        self.started_at = at
        self._set(RUNNING, at)

    def finish(self) -> None:
        at = self.planned_finish
        self.finished_at = at
        timed_out = self.script.outcome == "HANG" or at >= self.deadline
        if timed_out:
            self._set(FAILED, at, f"Workflow execution timed out after {self.timeout_seconds} seconds.")
        elif self.script.outcome == "FAILED":
            self._set(FAILED, at, self.script.reason())
        else:
            self._set(SUCCEEDED, at)

    def cancel(self, at: datetime) -> None:
        self.finished_at = at
        self._set(CANCELLED, at, "Cancelled by user request.")

    @property
    def output_s3_uri(self) -> str:
        if self.output_bucket is None:
            return "N/A"
        assert self.finished_at is not None
        stamp = utc_millis(self.finished_at)
        return (
            f"s3://{self.output_bucket}/workflow={self.workflow_id}/schedule=adhoc/"
            f"{stamp}-{self.workflow_id}.{self.result.extension}"
        )

    def to_json(self, now: datetime, *, include_workflow: bool = False) -> dict[str, Any]:
        """The flat AMC ``WorkflowExecution`` object (no ``outputFormat``: it is not an AMC field)."""
        out: dict[str, Any] = {
            "workflowExecutionId": self.execution_id,
            "workflowId": self.workflow_id,
            "status": self.status,
            "createTime": utc_z(self.create_time),
            "lastUpdatedTime": utc_z(self.last_updated),
            "expireTime": utc_z(self.create_time + timedelta(hours=24)),
            "waitUntil": utc_z(self.create_time - timedelta(hours=1)),
            "executionCategory": "AD_HOC",
            "dataGaps": [],
            "ignoreDataGaps": self.ignore_data_gaps,
            "disableAggregationControls": self.disable_aggregation_controls,
            "requireSyntheticData": self.require_synthetic_data,
            "parameterValues": self.parameter_values,
            "timeWindowTimeZoneOriginal": self.window.tz_name,
            "workflowExecutionTimeoutSeconds": self.timeout_seconds,
            "invalidationOffsetSecs": INVALIDATION_OFFSET_SECS,
            "availableTimeBeforeWindowSecs": 0,
        }
        if self.explicit_window or self.status != PENDING:
            out["timeWindowStart"] = utc_z(self.window.start_utc)
            out["timeWindowEnd"] = utc_z(self.window.end_utc)
        if self.explicit_window:
            out["timeWindowStartOriginal"] = self.window.start_local.strftime(LOCAL_FORMAT)
            out["timeWindowEndOriginal"] = self.window.end_local.strftime(LOCAL_FORMAT)
        if self.status != CANCELLED and now >= self.ready_at:
            out["validatedTime"] = utc_millis(self.ready_at)
        if self.status_reason:
            out["statusReason"] = self.status_reason
        if self.status == SUCCEEDED:
            out["outputS3URI"] = self.output_s3_uri if not self.dry_run else "N/A"
            out["executionTime"] = round(self.script.running_seconds) if not self.dry_run else 0
            out["outputColumns"] = output_columns(self.result.columns) if not self.dry_run else []
        if include_workflow:
            out["sqlQuery"] = self.sql_query
        return out


def advance(active: list[Execution], now: datetime, limit: int) -> list[Execution]:
    """Replay every state change up to ``now`` in time order; return the still-active executions.

    Executions needing no compute slot (dry runs, rejections) settle at ``ready_at``; the rest
    start in (ready_at, creation) order while fewer than ``limit`` run, and finish at their
    planned time, which frees a slot for the next one at that same instant.
    """
    for execution in active:
        if execution.status == PENDING and not execution.needs_slot and execution.ready_at <= now:
            execution.settle_without_slot()
    running = [e for e in active if e.status == RUNNING]
    queue = sorted(
        (e for e in active if e.status == PENDING and e.needs_slot), key=lambda e: (e.ready_at, e.seq)
    )
    clock: datetime | None = None  # time of the last replayed event
    while True:
        first_done = min(running, key=lambda e: (e.planned_finish, e.seq), default=None)
        done_at = first_done.planned_finish if first_done else None
        head = queue[0] if queue else None
        start_at = None
        if head is not None and len(running) < limit:
            start_at = head.ready_at if clock is None else max(head.ready_at, clock)
        if (
            first_done is not None
            and done_at is not None
            and done_at <= now
            and (start_at is None or done_at <= start_at)
        ):
            first_done.finish()
            running.remove(first_done)
            clock = done_at
        elif head is not None and start_at is not None and start_at <= now:
            queue.pop(0)
            head.start(start_at)
            running.append(head)
            clock = start_at
        else:
            break
    return [e for e in active if e.status not in TERMINAL]
