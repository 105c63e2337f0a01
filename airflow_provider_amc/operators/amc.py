"""``AmcCreateExecutionOperator``: run a saved AMC workflow over a (templated) time window."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_amc.client import (
    AmcServerError,
    AmcTransportError,
    CreateExecutionRequest,
    WorkflowExecution,
)
from airflow_provider_amc.execution_wait import ExecutionWaitMixin
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.lifecycle import AmcStatus
from airflow_provider_amc.lineage import AmcLineageMixin
from airflow_provider_amc.links import AmcExecutionLink, AmcResultsLink
from airflow_provider_amc.publishing import publish_links
from airflow_provider_amc.records import DEFAULT_TABLE
from airflow_provider_amc.time_window import AmcTimeWindow, resolve_time_window, window_length_warning
from airflow_provider_amc.validation import (
    OUTPUT_FORMATS,
    validate_identifier,
    validate_output_format,
    validate_parameter_values,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

#: task_state_store key holding the submitted execution (shared by the retries of one task instance).
STATE_KEY = "amc_execution"


#: How far before an earlier try's submission to look for an execution whose create answer was lost.
LOST_SUBMISSION_MARGIN = timedelta(minutes=10)


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat()


def same_request(execution: WorkflowExecution, request: CreateExecutionRequest) -> bool:
    """Whether an execution AMC reports was created from ``request`` (workflow, window, zone, values)."""
    if execution.workflow_id != request.workflow_id:
        return False
    if (execution.parameter_values or {}) != (request.parameter_values or {}):
        return False
    if (execution.time_window_time_zone_original or "UTC") != (request.time_window_time_zone or "UTC"):
        return False
    if request.time_window_type != "EXPLICIT":
        return True
    return (execution.time_window_start_original, execution.time_window_end_original) == (
        request.time_window_start,
        request.time_window_end,
    )


def request_fingerprint(instance_id: str, body: Mapping[str, Any]) -> str:
    """Identifies 'the same submission': same instance and same create-execution body."""
    canonical = json.dumps({"instance_id": instance_id, "body": body}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class AmcCreateExecutionOperator(AmcLineageMixin, ExecutionWaitMixin, BaseOperator):
    """
    Submit a run of a saved AMC workflow and return its ``workflowExecutionId``.

    The time window defaults to the DAG run's data interval, converted into
    ``time_window_time_zone``; a run without a usable interval (manual run without logical date,
    zero-length interval) gets the last ``default_window_days`` days ending at midnight in that zone.
    Every input is validated after templating and before any HTTP call.

    At most once: the execution id is stored in the task instance's ``task_state_store`` right after
    the create call; a retry of the same task instance that finds that execution still PENDING or
    RUNNING (for the same request) reattaches to it instead of submitting again. A terminal one (for
    example after the user cleared the task to re-run the day) leads to exactly one new submission.

    :param workflow_id: the saved workflow to run (templated, required).
    :param instance_id: the AMC instance (templated); default: the connection's ``instance_id``.
    :param amc_conn_id: the ``amc`` connection (templated).
    :param time_window_start: window start (templated): ``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM:SS``, ISO with
        offset, or a datetime; empty = the run's data interval.
    :param time_window_end: window end, exclusive (templated); same forms.
    :param time_window_time_zone: IANA zone of the window (templated), default ``UTC``.
    :param time_window_type: ``EXPLICIT`` (default) or a relative type (``MOST_RECENT_DAY``,
        ``MOST_RECENT_WEEK``, ``CURRENT_MONTH``, ``PREVIOUS_MONTH``, ``ALL``), which sends no bounds.
    :param output_format: ``CSV`` (default) or ``PARQUET`` (templated).
    :param parameter_values: values of the workflow's input parameters (templated, nested).
    :param default_window_days: length of the fallback window when the run has no usable interval.
    :param workflow_execution_timeout_seconds: AMC-side timeout (900-86400); default AMC's.
    :param postgres_conn_id: Postgres connection of the execution table; ``None`` skips the table.
    :param table: execution table name, ``name`` or ``schema.name`` (created if missing).
    :param reattach: reattach a retry to the still-running execution of an earlier try (default True).
    :param wait_for_completion: also wait (deferred, in the triggerer) and finish like
        ``AmcExecutionSensor``; the return value is then the output metadata.
    :param poll_interval: with ``wait_for_completion``: seconds between status polls.
    :param max_poll_interval: with ``wait_for_completion``: polling backs off up to this.
    :param wait_timeout: with ``wait_for_completion``: give up after this many seconds.
    :param output_path: with ``wait_for_completion``: where to save the result files (templated).
    :param cancel_on_kill: cancel the AMC execution when the task is killed, cleared or marked.
    :param cancel_on_timeout: with ``wait_for_completion``: cancel it when the wait times out.
    """

    template_fields: Sequence[str] = (
        "workflow_id",
        "instance_id",
        "amc_conn_id",
        "time_window_start",
        "time_window_end",
        "time_window_time_zone",
        "time_window_type",
        "output_format",
        "parameter_values",
        "table",
        "output_path",
    )
    template_fields_renderers = {"parameter_values": "json"}
    ui_color = "#ff9900"
    operator_extra_links = (AmcExecutionLink(), AmcResultsLink())

    def __init__(
        self,
        *,
        workflow_id: str,
        instance_id: str | None = None,
        amc_conn_id: str = AmcHook.default_conn_name,
        time_window_start: Any = None,
        time_window_end: Any = None,
        time_window_time_zone: str = "UTC",
        time_window_type: str = "EXPLICIT",
        output_format: str = "CSV",
        parameter_values: Mapping[str, Any] | str | None = None,
        default_window_days: int = 7,
        workflow_execution_timeout_seconds: int | None = None,
        postgres_conn_id: str | None = "postgres_default",
        table: str = DEFAULT_TABLE,
        reattach: bool = True,
        wait_for_completion: bool = False,
        poll_interval: float = 60.0,
        max_poll_interval: float | None = None,
        wait_timeout: float | None = 7 * 24 * 3600,
        output_path: str | None = None,
        cancel_on_kill: bool = True,
        cancel_on_timeout: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.workflow_id = workflow_id
        self.instance_id = instance_id
        self.amc_conn_id = amc_conn_id
        self.time_window_start = time_window_start
        self.time_window_end = time_window_end
        self.time_window_time_zone = time_window_time_zone
        self.time_window_type = time_window_type
        self.output_format = output_format
        self.parameter_values = parameter_values
        self.default_window_days = default_window_days
        self.workflow_execution_timeout_seconds = workflow_execution_timeout_seconds
        self.postgres_conn_id = postgres_conn_id
        self.table = table
        self.reattach = reattach
        self.wait_for_completion = wait_for_completion
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.wait_timeout = wait_timeout
        self.output_path = output_path
        self.cancel_on_kill = cancel_on_kill
        self.cancel_on_timeout = cancel_on_timeout

    # ---- validation (after templating, before any HTTP call) ---------------------------------
    def resolve_window(self, context: Context) -> AmcTimeWindow:
        return resolve_time_window(
            start=self.time_window_start,
            end=self.time_window_end,
            time_zone=self.time_window_time_zone,
            window_type=self.time_window_type,
            data_interval_start=context.get("data_interval_start"),
            data_interval_end=context.get("data_interval_end"),
            default_days=self.default_window_days,
        )

    def build_request(self, context: Context) -> tuple[str, CreateExecutionRequest, AmcTimeWindow]:
        """Validate every input; returns (instance_id, request, window). Raises AirflowFailException."""
        try:
            workflow_id = validate_identifier("workflow_id", self.workflow_id)
            output_format = validate_output_format(self.output_format)
            parameter_values = validate_parameter_values(self.parameter_values)
            window = self.resolve_window(context)
            if warning := window_length_warning(window):
                self.log.warning("%s", warning)
            instance_id = validate_identifier(
                "instance_id", self.instance_id or self.hook.default_instance_id
            )
            _ = self.records  # validates the table name before anything reaches AMC
            _ = self.hook.console_url_template  # the link's template (connection extra)
            request = CreateExecutionRequest(
                workflow_id=workflow_id,
                time_window_type=window.window_type,
                time_window_start=window.start,
                time_window_end=window.end,
                time_window_time_zone=window.time_zone,
                output_format=output_format,
                parameter_values=parameter_values or None,
                workflow_execution_timeout_seconds=self.workflow_execution_timeout_seconds,
            )
        except ValueError as exc:  # AmcConfigError, AmcTimeWindowError, pydantic ValidationError
            raise AirflowFailException(f"Invalid AMC execution request: {exc}") from exc
        return instance_id, request, window

    # ---- submission (at most once) ------------------------------------------------------
    def _live(self, execution: WorkflowExecution, origin: str) -> WorkflowExecution | None:
        if AmcStatus.parse(execution.status).is_terminal:
            self.log.info(
                "Execution %s (%s) ended %s; submitting a new one",
                execution.workflow_execution_id,
                origin,
                execution.status,
            )
            return None
        self.log.info(
            "Reattaching to execution %s (%s), which is %s",
            execution.workflow_execution_id,
            origin,
            execution.status,
        )
        return execution

    def find_lost_submission(
        self, request: CreateExecutionRequest, instance_id: str, submitted_at: str
    ) -> WorkflowExecution | None:
        """A live execution of this request created since ``submitted_at`` (its create answer was lost)."""
        since = datetime.fromisoformat(submitted_at) - LOST_SUBMISSION_MARGIN
        found = [
            execution
            for execution in self.hook.find_executions(
                workflow_id=request.workflow_id, created_after=since, instance_id=instance_id
            )
            if not AmcStatus.parse(execution.status).is_terminal and same_request(execution, request)
        ]
        if len(found) > 1:
            ids = ", ".join(execution.workflow_execution_id for execution in found)
            raise AirflowFailException(
                f"Several live AMC executions match this request ({ids}); an earlier try's create call "
                "may have reached AMC more than once. Cancel the extra ones, then clear this task."
            )
        return found[0] if found else None

    def _reattachable(
        self, stored: Any, fingerprint: str, request: CreateExecutionRequest, instance_id: str
    ) -> WorkflowExecution | None:
        """The execution of an earlier try of this task instance, if it is the same request and live."""
        if not (self.reattach and isinstance(stored, dict) and stored.get("fingerprint") == fingerprint):
            return None
        if stored.get("execution_id"):
            execution = self.hook.get_execution(stored["execution_id"], instance_id=stored["instance_id"])
            return self._live(execution, "an earlier try")
        # An earlier try was submitting when it died or lost the answer: the create may have reached AMC.
        lost = self.find_lost_submission(request, instance_id, stored["submitted_at"])
        return self._live(lost, "submitted by an earlier try whose answer was lost") if lost else None

    def submit(
        self, store: Any, request: CreateExecutionRequest, instance_id: str, fingerprint: str
    ) -> WorkflowExecution:
        """Create the execution; the task state store holds a marker before and the id right after."""
        state = {"instance_id": instance_id, "fingerprint": fingerprint, "submitted_at": utc_now_iso()}
        if store is not None:
            store.set(STATE_KEY, state)
        self.log.info(
            "Submitting AMC workflow %s on %s: %s", request.workflow_id, instance_id, request.to_body()
        )
        try:
            execution = self.hook.create_execution(request, instance_id=instance_id)
        except (AmcTransportError, AmcServerError) as exc:  # the POST may have reached AMC anyway
            lost = (
                self.find_lost_submission(request, instance_id, state["submitted_at"])
                if self.reattach
                else None
            )
            if lost is None:
                raise
            self.log.warning("Create call failed (%s) but AMC has the execution: using it", exc)
            execution = lost
        if store is not None:  # first thing after the create call: a retry must find it
            store.set(STATE_KEY, {**state, "execution_id": execution.workflow_execution_id})
        return execution

    def execute(self, context: Context) -> Any:
        instance_id, request, window = self.build_request(context)
        fingerprint = request_fingerprint(instance_id, request.to_body())
        store = context.get("task_state_store")
        stored = store.get(STATE_KEY) if store is not None else None
        execution = self._reattachable(stored, fingerprint, request, instance_id)
        if execution is None:
            execution = self.submit(store, request, instance_id, fingerprint)
        execution_id = execution.workflow_execution_id
        self._amc_execution_id = execution_id
        status = execution.status
        self.log.info("AMC execution %s is %s", execution_id, status)
        context["ti"].xcom_push(key="amc_execution_id", value=execution_id)
        self.record_submission(context, execution_id, instance_id, request, window, status)
        publish_links(
            self,
            context,
            execution_id=execution_id,
            instance_id=instance_id,
            workflow_id=request.workflow_id,
            output_s3_uri=execution.output_s3_uri,
        )
        if self.wait_for_completion:
            self.instance_id = instance_id
            self.defer_until_done(execution_id, instance_id)
        return execution_id

    def record_submission(
        self,
        context: Context,
        execution_id: str,
        instance_id: str,
        request: CreateExecutionRequest,
        window: AmcTimeWindow,
        amc_status: str,
    ) -> None:
        if self.records is None:
            return
        ti = context["ti"]
        self.records.upsert(
            execution_id,
            instance_id=instance_id,
            workflow_id=request.workflow_id,
            status=AmcStatus.parse(amc_status).normalised,
            amc_status=amc_status,
            time_window_start=window.start,
            time_window_end=window.end,
            time_window_time_zone=window.time_zone,
            time_window_type=window.window_type,
            output_format=request.output_format,
            parameter_values=request.parameter_values or {},
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=ti.map_index,
            try_number=ti.try_number,
        )


__all__ = ["OUTPUT_FORMATS", "STATE_KEY", "AmcCreateExecutionOperator", "request_fingerprint"]
