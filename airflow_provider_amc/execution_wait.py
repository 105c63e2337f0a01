"""Waiting for an AMC execution and finishing it: the one path shared by the sensor and the operator.

``ExecutionWaitMixin`` gives an operator the deferral to :class:`AmcExecutionTrigger`, the
``execute_complete`` callback, the completion step (stream the result files once, push the output
metadata, upsert the execution row) and ``on_kill``. ``AmcExecutionSensor`` uses it for all three
sensor modes; ``AmcCreateExecutionOperator(wait_for_completion=True)`` uses the same code.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, cast

from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from airflow_provider_amc.client import WorkflowExecution
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.lifecycle import (
    AmcStatus,
    ExecutionEvent,
    Submission,
    amc_instant,
    window_view,
)
from airflow_provider_amc.publishing import publish_completion, publish_links
from airflow_provider_amc.records import ExecutionRecords, amc_fields
from airflow_provider_amc.results import (
    ResultSummary,
    execution_folder,
    measure_results,
    object_storage_sink,
)
from airflow_provider_amc.triggers.amc import AmcExecutionTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class OperatorSurface(Protocol):
    """What the mixin uses of the operator it is mixed into (``BaseOperator`` provides both)."""

    @property
    def log(self) -> logging.Logger: ...

    def defer(
        self,
        *,
        trigger: AmcExecutionTrigger,
        method_name: str,
        kwargs: dict[str, Any] | None = None,
        timeout: timedelta | None = None,
    ) -> NoReturn: ...


#: Airflow's trigger timeout comes this many seconds after the trigger's own deadline.
BACKSTOP_SECONDS = 60.0


class AmcExecutionFailed(AirflowFailException):
    """The AMC execution ended FAILED, CANCELLED or REJECTED (retrying the wait cannot help)."""


class ExecutionWaitMixin:
    """Wait for an execution (deferred, poke or reschedule) and finish it on the worker."""

    # Set by the operator's __init__.
    amc_conn_id: str
    instance_id: str | None
    postgres_conn_id: str | None
    table: str
    output_path: str | None
    max_poll_interval: float | None
    cancel_on_kill: bool
    cancel_on_timeout: bool

    if TYPE_CHECKING:  # plain attributes in the operator, properties in the sensor

        @property
        def poll_interval(self) -> float: ...

        @property
        def wait_timeout(self) -> float | None: ...

    @property
    def _operator(self) -> OperatorSurface:
        """``self`` as the operator it is mixed into (typed: no ``type: ignore`` for log/defer)."""
        return cast(OperatorSurface, self)

    # ---- collaborators ------------------------------------------------------------------
    @cached_property
    def hook(self) -> AmcHook:
        return AmcHook(amc_conn_id=self.amc_conn_id)

    @cached_property
    def records(self) -> ExecutionRecords | None:
        if not self.postgres_conn_id:
            return None
        return ExecutionRecords(postgres_conn_id=self.postgres_conn_id, table=self.table)

    # ---- deferral -----------------------------------------------------------------------
    def defer_until_done(
        self, execution_id: str, instance_id: str | None, submission: Submission | None = None
    ) -> None:
        """Hand the waiting to the triggerer (raises ``TaskDeferred``); the trigger carries the
        ``submission`` (when this task made it) back to :meth:`execute_complete`."""
        end_time = None if self.wait_timeout is None else time.time() + self.wait_timeout
        self._amc_execution_id = execution_id
        self._operator.defer(
            trigger=AmcExecutionTrigger(
                execution_id=execution_id,
                instance_id=instance_id,
                **self.polling_kwargs(),
                end_time=end_time,
                cancel_on_kill=self.cancel_on_kill and self.may_cancel,
                first_poll_delay=self.poll_interval,
                submission=submission.as_dict() if submission is not None else None,
            ),
            method_name="execute_complete",
            timeout=self.backstop_timeout(),
        )

    def polling_kwargs(self) -> dict[str, Any]:
        """The trigger arguments taken from the operator's settings (both ways of deferring)."""
        return {
            "amc_conn_id": self.amc_conn_id,
            "poll_interval": self.poll_interval,
            "max_poll_interval": self.max_poll_interval,
            "poll_backoff": 1.5 if self.max_poll_interval else 1.0,
        }

    def backstop_timeout(self) -> timedelta | None:
        """Airflow's trigger timeout: a backstop only, ``BACKSTOP_SECONDS`` after the deadline the
        trigger enforces itself (its ``timeout`` event lets ``cancel_on_timeout`` apply)."""
        return None if self.wait_timeout is None else timedelta(seconds=self.wait_timeout + BACKSTOP_SECONDS)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume on the worker with the trigger's event."""
        try:
            parsed = ExecutionEvent.parse(event)
        except ValueError as exc:
            raise AirflowException(f"Unexpected event from AmcExecutionTrigger: {exc}") from exc
        execution_id = parsed.execution_id
        instance_id = parsed.instance_id or self.instance_id
        self._amc_execution_id = execution_id
        if parsed.status == "timeout":
            self.handle_timeout(execution_id, instance_id, str(parsed.message))
        if parsed.status == "error":
            raise AirflowException(f"Waiting for AMC execution {execution_id} failed: {parsed.message}")
        return self.finish(context, parsed.workflow_execution(), instance_id, parsed.submission)

    def handle_timeout(self, execution_id: str, instance_id: str | None, message: str) -> None:
        """Cancel the AMC run when configured, then fail as a sensor timeout."""
        if self.cancel_on_timeout:
            self._cancel(execution_id, instance_id)
        raise AirflowSensorTimeout(message)

    # ---- completion (worker) ------------------------------------------------------------
    def finish(
        self,
        context: Context,
        execution: WorkflowExecution,
        instance_id: str | None,
        submission: Submission | None = None,
    ) -> dict[str, Any]:
        """Terminal execution: record it; on success measure the output and return the metadata.

        The metadata is built from AMC's answer, the measured files and the ``submission`` (when
        this task made it), never from the execution table: it is the same with or without one.
        """
        execution_id = execution.workflow_execution_id
        publish_links(  # links, also when the execution failed
            self,
            context,
            execution_id=execution_id,
            instance_id=instance_id,
            workflow_id=execution.workflow_id,
            output_s3_uri=execution.output_s3_uri,
        )
        if not AmcStatus.parse(execution.status).succeeded:
            reason = execution.status_reason or "no reason given by AMC"
            self._record(execution_id, execution, submission, status_reason=reason)
            raise AmcExecutionFailed(f"AMC execution {execution_id} ended {execution.status}: {reason}")
        summary = self.measure_output(execution_id, instance_id, execution.workflow_id)
        metadata = self.output_metadata(execution, instance_id, summary, submission)
        self._record(
            execution_id,
            execution,
            submission,
            output_location=metadata["output_location"],
            row_count=summary.row_count,
            size_bytes=summary.size_bytes,
            output_columns=metadata["output_columns"],
            output_format=metadata["output_format"],
        )
        context["ti"].xcom_push(key="amc_output", value=metadata)
        publish_completion(self, context, metadata)  # links, asset events, lineage
        return metadata

    def measure_output(
        self, execution_id: str, instance_id: str | None, workflow_id: str | None = None
    ) -> ResultSummary:
        """Stream every result file once: count rows and bytes; with ``output_path``, save them to
        ``<output_path>/<execution_id>/`` (complete files only, then the manifest)."""
        dialect = self.hook.get_csv_dialect(workflow_id, instance_id=instance_id)
        parts = self.hook.iter_result_parts(execution_id, instance_id=instance_id)
        folder = execution_folder(self.output_path, execution_id) if self.output_path else None
        save_to = object_storage_sink(folder) if folder else None
        return measure_results(
            parts, save_to=save_to, output_path=folder, dialect=dialect, execution_id=execution_id
        )

    def output_metadata(
        self,
        execution: WorkflowExecution,
        instance_id: str | None,
        summary: ResultSummary,
        submission: Submission | None = None,
    ) -> dict[str, Any]:
        """The XCom / record view of a finished execution (JSON-native)."""
        return {
            "execution_id": execution.workflow_execution_id,
            "instance_id": instance_id or self.hook.default_instance_id,
            "workflow_id": execution.workflow_id,
            "status": AmcStatus.parse(execution.status).normalised,
            "amc_status": execution.status,
            "output_location": summary.output_location or execution.output_s3_uri,
            "output_s3_uri": execution.output_s3_uri,
            "row_count": summary.row_count,
            "size_bytes": summary.size_bytes,
            "output_format": summary.output_format or (submission.output_format if submission else None),
            "output_columns": [
                column.model_dump(mode="json", by_alias=True, exclude_none=True)
                for column in execution.output_columns or []
            ],
            "files": [file.as_dict() for file in summary.files],
            "time_window": window_view(submission, execution),
        }

    def _record(
        self,
        execution_id: str,
        execution: WorkflowExecution,
        submission: Submission | None,
        **fields: Any,
    ) -> None:
        """Update the row with what AMC says now: status, the window it ran, when it finished
        (AMC's time: re-measuring never moves it) and the request key once the window is known."""
        if self.records is None:
            return
        instance_id = (submission.instance_id if submission else None) or self.instance_id
        instance_id = instance_id or self.hook.default_instance_id
        identity_format = (submission.output_format if submission else None) or fields.get("output_format")
        self.records.upsert(
            execution_id,
            instance_id=instance_id,
            **{**amc_fields(execution, instance_id, identity_format), **fields},
        )

    # ---- cancellation -------------------------------------------------------------------
    def _cancel(self, execution_id: str, instance_id: str | None) -> None:
        """Ask AMC to cancel; a failed cancellation is logged (the task's own outcome stands)."""
        try:
            cancelled = self.hook.cancel_execution(execution_id, instance_id=instance_id)
        except Exception as exc:
            self._operator.log.warning("Cancel of AMC execution %s failed: %s", execution_id, exc)
            return
        self._operator.log.info("Cancel of AMC execution %s requested: %s", execution_id, cancelled)

    @property
    def may_cancel(self) -> bool:
        """Whether this task may cancel the execution it watches (``cancel_on_kill`` aside): the
        create operator only once the execution is its own; a sensor only when it was submitted in
        its DAG run (see :meth:`submitted_in_this_run`)."""
        return bool(getattr(self, "_amc_may_cancel", True))

    def submitted_in_this_run(self, context: Context, execution: WorkflowExecution) -> bool:
        """With an execution table: whether ``execution`` is recorded as submitted in this DAG run
        (an execution of another DAG run, or one started outside Airflow, is not this task's to
        cancel). Without a table nothing is known: ``True`` (the user's ``cancel_on_kill`` decides)."""
        if self.records is None:
            return True
        execution_id = execution.workflow_execution_id
        try:
            owner = self.records.owners({execution_id: amc_instant(execution.create_time)}).get(execution_id)
        except Exception as exc:  # the table cannot tell: do not cancel what may be another's
            self._operator.log.warning(
                "Owner of AMC execution %s unknown (%s): it will not be cancelled", execution_id, exc
            )
            return False
        ti = context["ti"]
        return owner is not None and (owner.get("dag_id"), owner.get("run_id")) == (ti.dag_id, ti.run_id)

    def on_kill(self) -> None:
        execution_id = getattr(self, "_amc_execution_id", None)
        if not (execution_id and self.cancel_on_kill):
            return
        if not self.may_cancel:
            self._operator.log.info(
                "Not cancelling AMC execution %s: it was not submitted by this DAG run", execution_id
            )
            return
        self._cancel(execution_id, self.instance_id)
