"""An AMC execution's story, in one place: its status, the request it answers, what it submitted.

* :class:`AmcStatus` — AMC's status values and what they mean here (normalised status, terminal,
  succeeded). The client hands AMC's raw text through; only this module interprets it.
* :class:`RequestIdentity` — what makes two executions "the same request": instance, workflow,
  the window as UTC instants, parameter values, output format. Defined once
  (:func:`identity_fields`) and used by the three decisions that need it: the at-most-once
  fingerprint, the lookup of a lost submission and the load's "replace" decision.
* :class:`Submission` — what the create operator asked AMC for (JSON-native, validated once),
  stored in the task state store, pushed to XCom, carried by the trigger.
* :class:`ExecutionEvent` — the one event the trigger sends and ``execute_complete`` reads.

No Airflow import: the operators, sensor, trigger and loader build on these types.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from airflow_provider_amc.client.models import (
    OUTPUT_FORMAT_FIELD,
    CreateExecutionRequest,
    WorkflowExecution,
)
from airflow_provider_amc.time_window import local_instant

log = logging.getLogger(__name__)

NormalisedStatus = Literal["pending", "running", "completed", "failed"]
#: The normalised statuses, in lifecycle order (the execution table's CHECK constraint).
NORMALISED_STATUSES: Final[tuple[NormalisedStatus, ...]] = ("pending", "running", "completed", "failed")

_unknown_seen: set[str] = set()
_unknown_lock = threading.Lock()


class AmcStatus(StrEnum):
    """An AMC execution status (amc-api.md §4); compare and parse through :meth:`parse`.

    AMC's values are upper case; :meth:`parse` accepts any case. A value AMC may add later (or a
    legacy one such as ``PUBLISHING``) is not a member: :meth:`parse` answers ``RUNNING`` for it
    and logs it once per process, so a wait goes on rather than ending on a status nobody knows.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"

    @classmethod
    def parse(cls, value: str | None) -> AmcStatus:
        """AMC's status text as a member (case-insensitive); unknown -> ``RUNNING`` (logged once)."""
        text = (value or "").strip().upper()
        try:
            return cls(text)
        except ValueError:
            with _unknown_lock:
                first = text not in _unknown_seen
                _unknown_seen.add(text)
            if first:
                log.warning("Unknown AMC execution status %r; treating it as still running", value)
            return cls.RUNNING

    @property
    def normalised(self) -> NormalisedStatus:
        """pending / running / completed / failed (the execution table's ``status``)."""
        return _NORMALISED[self]

    @property
    def is_terminal(self) -> bool:
        """Whether AMC will never change this execution again."""
        return self.normalised in ("completed", "failed")

    @property
    def succeeded(self) -> bool:
        return self is AmcStatus.SUCCEEDED


_NORMALISED: Final[dict[AmcStatus, NormalisedStatus]] = {
    AmcStatus.PENDING: "pending",
    AmcStatus.RUNNING: "running",
    AmcStatus.SUCCEEDED: "completed",
    AmcStatus.FAILED: "failed",
    AmcStatus.CANCELLED: "failed",
    AmcStatus.REJECTED: "failed",
}


def normalise_status(value: str | None) -> NormalisedStatus:
    """AMC's status text -> pending/running/completed/failed (unknown -> running, logged once)."""
    return AmcStatus.parse(value).normalised


# ---- times as AMC reports them ---------------------------------------------------------------------
EXPLICIT: Final = "EXPLICIT"
DEFAULT_OUTPUT_FORMAT: Final = "CSV"
_UTC_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


def amc_instant(value: str | None) -> datetime | None:
    """An AMC UTC time (``2024-09-25T03:11:52Z``, millis allowed) as an aware UTC datetime."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_text(moment: datetime) -> str:
    """An instant as ``YYYY-MM-DDTHH:MM:SSZ`` (how AMC writes UTC times)."""
    return moment.astimezone(UTC).strftime(_UTC_FORMAT)


def local_to_utc(local: str, time_zone: str) -> str:
    """An AMC local wall time (``YYYY-MM-DDTHH:MM:SS``) in ``time_zone`` as a UTC instant text."""
    return utc_text(local_instant(local, time_zone))


def same_zone(first: str | None, second: str | None) -> bool:
    """Whether two IANA names are the same zone (``UTC`` and ``Etc/UTC`` are)."""
    if (first or "UTC") == (second or "UTC"):
        return True
    try:
        a, b = ZoneInfo(first or "UTC"), ZoneInfo(second or "UTC")
    except (ValueError, KeyError):
        return False
    probes = [datetime(year, month, 1, tzinfo=UTC) for year in (2000, 2025) for month in (1, 4, 7, 10)]
    return all(probe.astimezone(a).utcoffset() == probe.astimezone(b).utcoffset() for probe in probes)


# ---- the request identity ---------------------------------------------------------------------------
class RequestIdentity(BaseModel):
    """What makes two AMC executions the same request (frozen, JSON-native).

    ``window_start``/``window_end`` are UTC instants (``…Z``). A relative window that AMC has not
    resolved yet has no bounds; ``unresolved_window`` then says which (``MOST_RECENT_DAY@UTC``,
    or ``RELATIVE@UTC`` when only AMC's answer is known: AMC does not echo the window type).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_id: str
    workflow_id: str
    window_start: str | None = None
    window_end: str | None = None
    unresolved_window: str | None = None
    parameter_values: dict[str, Any] = {}
    output_format: str = DEFAULT_OUTPUT_FORMAT

    @property
    def resolved(self) -> bool:
        return self.window_start is not None and self.window_end is not None

    @property
    def key(self) -> str:
        """A stable digest of :func:`identity_fields`: equal keys = the same request."""
        canonical = json.dumps(identity_fields(self), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


def identity_fields(identity: RequestIdentity) -> dict[str, Any]:
    """THE definition of "the same request" (every decision goes through :attr:`RequestIdentity.key`).

    The window counts as UTC instants, so ``UTC``, ``Etc/UTC`` and ``America/New_York`` spellings
    of the same instants are one request; the zone's name itself is not part of it.
    """
    return {
        "instance_id": identity.instance_id,
        "workflow_id": identity.workflow_id,
        "window": [identity.window_start, identity.window_end]
        if identity.resolved
        else identity.unresolved_window,
        "parameter_values": identity.parameter_values,
        "output_format": (identity.output_format or DEFAULT_OUTPUT_FORMAT).upper(),
    }


def requested_identity(
    instance_id: str,
    workflow_id: str,
    *,
    window_type: str,
    start: str | None,
    end: str | None,
    time_zone: str,
    parameter_values: Mapping[str, Any] | None,
    output_format: str | None,
) -> RequestIdentity:
    """The identity of a request before AMC answers: explicit bounds converted to UTC instants."""
    explicit = window_type == EXPLICIT and start is not None and end is not None
    return RequestIdentity(
        instance_id=instance_id,
        workflow_id=workflow_id,
        window_start=local_to_utc(start, time_zone) if explicit and start else None,
        window_end=local_to_utc(end, time_zone) if explicit and end else None,
        unresolved_window=None if explicit else f"{window_type}@{time_zone}",
        parameter_values=dict(parameter_values or {}),
        output_format=output_format or DEFAULT_OUTPUT_FORMAT,
    )


def reported_window(execution: WorkflowExecution) -> tuple[str | None, str | None]:
    """The window AMC reports it ran, as UTC instants: ``timeWindowStart/End``, else (explicit
    windows) the ``…Original`` local times converted with ``timeWindowTimeZoneOriginal``."""
    bounds: list[str | None] = []
    for utc, original in (
        (execution.time_window_start, execution.time_window_start_original),
        (execution.time_window_end, execution.time_window_end_original),
    ):
        instant = amc_instant(utc)
        if instant is not None:
            bounds.append(utc_text(instant))
        elif original:
            bounds.append(local_to_utc(original, execution.time_window_time_zone_original or "UTC"))
        else:
            bounds.append(None)
    return bounds[0], bounds[1]


def reported_format(execution: WorkflowExecution) -> str | None:
    """The output format AMC reports for an execution, if it reports one (AMC itself does not)."""
    value = (execution.model_extra or {}).get(OUTPUT_FORMAT_FIELD or "")
    return value.upper() if isinstance(value, str) and value else None


def executed_identity(
    instance_id: str, execution: WorkflowExecution, output_format: str | None = None
) -> RequestIdentity:
    """The identity of an execution as AMC reports it (``output_format``: when AMC does not say)."""
    start, end = reported_window(execution)
    zone = execution.time_window_time_zone_original or "UTC"
    return RequestIdentity(
        instance_id=instance_id,
        workflow_id=execution.workflow_id or "",
        window_start=start,
        window_end=end,
        unresolved_window=None if start and end else f"RELATIVE@{zone}",
        parameter_values=dict(execution.parameter_values or {}),
        output_format=reported_format(execution) or output_format or DEFAULT_OUTPUT_FORMAT,
    )


def is_relative(execution: WorkflowExecution) -> bool:
    """AMC echoes ``…Original`` bounds only for EXPLICIT windows."""
    return not (execution.time_window_start_original or execution.time_window_end_original)


# ---- the submission -----------------------------------------------------------------------------------
class Submission(BaseModel):
    """What the create operator asks AMC for: validated once, JSON-native, the same everywhere
    (task state store, XCom ``amc_submission``, the trigger, the execution table)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_id: str
    workflow_id: str
    time_window_type: str
    time_window_start: str | None = None
    time_window_end: str | None = None
    time_window_time_zone: str = "UTC"
    output_format: str = DEFAULT_OUTPUT_FORMAT
    parameter_values: dict[str, Any] = {}
    workflow_execution_timeout_seconds: int | None = None
    fingerprint: str = ""

    @model_validator(mode="after")
    def _checked(self) -> Submission:
        self.create_request()  # the same rules as the request AMC gets (names the field at fault)
        expected = self.identity.key
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", expected)
        elif self.fingerprint != expected:
            raise ValueError("fingerprint does not match the submission's request identity")
        return self

    @classmethod
    def of(cls, instance_id: str, request: CreateExecutionRequest) -> Submission:
        return cls(
            instance_id=instance_id,
            workflow_id=request.workflow_id,
            time_window_type=request.time_window_type or "MOST_RECENT_DAY",
            time_window_start=request.time_window_start,
            time_window_end=request.time_window_end,
            time_window_time_zone=request.time_window_time_zone or "UTC",
            output_format=request.output_format or DEFAULT_OUTPUT_FORMAT,
            parameter_values=dict(request.parameter_values or {}),
            workflow_execution_timeout_seconds=request.workflow_execution_timeout_seconds,
        )

    @classmethod
    def load(cls, data: Any) -> Submission | None:
        """A stored/serialised submission, or ``None`` when absent or not one (older versions)."""
        if not isinstance(data, Mapping):
            return None
        try:
            return cls.model_validate(dict(data))
        except (ValidationError, ValueError):
            return None

    def create_request(self) -> CreateExecutionRequest:
        return CreateExecutionRequest(
            workflow_id=self.workflow_id,
            time_window_type=self.time_window_type,
            time_window_start=self.time_window_start,
            time_window_end=self.time_window_end,
            time_window_time_zone=self.time_window_time_zone,
            output_format=self.output_format,
            parameter_values=self.parameter_values or None,
            workflow_execution_timeout_seconds=self.workflow_execution_timeout_seconds,
        )

    @property
    def identity(self) -> RequestIdentity:
        return requested_identity(
            self.instance_id,
            self.workflow_id,
            window_type=self.time_window_type,
            start=self.time_window_start,
            end=self.time_window_end,
            time_zone=self.time_window_time_zone,
            parameter_values=self.parameter_values,
            output_format=self.output_format,
        )

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def matches(self, execution: WorkflowExecution) -> bool:
        """Whether ``execution`` (as AMC reports it) was created from this submission, for sure.

        Explicit windows: the same request identity (UTC instants, whatever the zone's spelling).
        A relative window is never a sure match (AMC does not report the window type), see
        :meth:`may_match`.
        """
        if self.time_window_type != EXPLICIT or is_relative(execution):
            return False
        return executed_identity(self.instance_id, execution, self.output_format).key == self.fingerprint

    def may_match(self, execution: WorkflowExecution) -> bool:
        """Whether ``execution`` could be this submission's: a sure match, or (relative windows)
        the same workflow, parameter values, output format and zone with no explicit bounds."""
        if self.time_window_type == EXPLICIT:
            return self.matches(execution)
        if not is_relative(execution) or not same_zone(
            execution.time_window_time_zone_original, self.time_window_time_zone
        ):
            return False
        seen = executed_identity(self.instance_id, execution, self.output_format)
        ours = self.identity
        return identity_fields(seen) | {"window": None} == identity_fields(ours) | {"window": None}


def window_view(submission: Submission | None, execution: WorkflowExecution | None) -> dict[str, Any]:
    """The window of an execution for XCom and the execution table: as requested (local times and
    zone, or the relative type) and as AMC ran it (``start_utc``/``end_utc``)."""
    start_utc, end_utc = reported_window(execution) if execution is not None else (None, None)
    if submission is not None:
        requested = {
            "type": submission.time_window_type,
            "start": submission.time_window_start,
            "end": submission.time_window_end,
            "time_zone": submission.time_window_time_zone,
        }
    else:
        explicit = execution is not None and not is_relative(execution)
        requested = {
            "type": EXPLICIT if explicit else None,
            "start": execution.time_window_start_original if execution else None,
            "end": execution.time_window_end_original if execution else None,
            "time_zone": execution.time_window_time_zone_original if execution else None,
        }
    return {**requested, "start_utc": start_utc, "end_utc": end_utc}


def completed_at(execution: WorkflowExecution) -> datetime | None:
    """When AMC finished the execution (its ``lastUpdatedTime`` once terminal), else ``None``."""
    if not AmcStatus.parse(execution.status).is_terminal:
        return None
    return amc_instant(execution.last_updated_time)


# ---- the trigger's event --------------------------------------------------------------------------------
EventStatus = Literal["success", "failed", "timeout", "error"]


class ExecutionEvent(BaseModel):
    """The one event :class:`~airflow_provider_amc.triggers.amc.AmcExecutionTrigger` sends."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: EventStatus
    execution_id: str
    instance_id: str | None = None
    amc_status: str | None = None
    status_reason: str | None = None
    execution: dict[str, Any] | None = None
    message: str | None = None
    submission: Submission | None = None

    @classmethod
    def parse(cls, payload: Any) -> ExecutionEvent:
        """An event payload back into the model; ``ValueError`` naming what is wrong."""
        if not isinstance(payload, Mapping):
            raise ValueError(f"expected an event payload (a mapping), got {payload!r}")
        try:
            return cls.model_validate(dict(payload))
        except ValidationError as exc:
            count = exc.error_count()
            raise ValueError(f"not an AmcExecutionTrigger event ({count} error(s)): {exc}") from exc

    @classmethod
    def terminal(
        cls,
        execution: WorkflowExecution,
        instance_id: str | None,
        submission: Submission | None = None,
    ) -> ExecutionEvent:
        """``success`` or ``failed`` for an execution AMC says is over."""
        return cls(
            status="success" if AmcStatus.parse(execution.status).succeeded else "failed",
            execution_id=execution.workflow_execution_id,
            instance_id=instance_id,
            amc_status=execution.status,
            status_reason=execution.status_reason,
            execution=execution.model_dump(mode="json", by_alias=True, exclude_none=True),
            submission=submission,
        )

    def payload(self) -> dict[str, Any]:
        """JSON-native payload for ``TriggerEvent``."""
        return self.model_dump(mode="json", exclude_none=True)

    def workflow_execution(self) -> WorkflowExecution:
        if self.execution is None:
            raise ValueError(f"event {self.status!r} for {self.execution_id} carries no execution")
        return WorkflowExecution.model_validate(self.execution)


__all__ = [
    "NORMALISED_STATUSES",
    "AmcStatus",
    "ExecutionEvent",
    "NormalisedStatus",
    "RequestIdentity",
    "Submission",
    "completed_at",
    "executed_identity",
    "identity_fields",
    "normalise_status",
    "requested_identity",
    "window_view",
]
