"""``AmcCreateExecutionOperator``: run a saved AMC workflow over a (templated) time window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_amc.client import (
    OUTPUT_FORMATS,
    AmcApiError,
    AmcResponseError,
    AmcServerError,
    AmcTransportError,
    CreateExecutionRequest,
    WorkflowExecution,
)
from airflow_provider_amc.data_lag import validate_min_data_age
from airflow_provider_amc.execution_wait import ExecutionWaitMixin
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.lifecycle import (
    AmcStatus,
    Submission,
    amc_instant,
)
from airflow_provider_amc.lineage import AmcLineageMixin
from airflow_provider_amc.links import AmcExecutionLink, AmcResultsLink
from airflow_provider_amc.publishing import publish_links
from airflow_provider_amc.quota import (
    DEFAULT_DAILY_QUOTA,
    DEFAULT_QUOTA_DAY_START,
    DEFAULT_QUOTA_POLICY,
    quota_settings,
)
from airflow_provider_amc.records import (
    DEFAULT_TABLE,
    ExecutionOwnedElsewhere,
    amc_fields,
    describe_owner,
    same_task_instance,
)
from airflow_provider_amc.submission_guard import SubmissionGuardMixin
from airflow_provider_amc.time_window import AmcTimeWindow, resolve_time_window, window_length_warning
from airflow_provider_amc.validation import (
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


def task_owner(context: Context) -> dict[str, Any]:
    """The task instance (and try) submitting now: the owner recorded in the execution table."""
    ti = context["ti"]
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index,
        "try_number": ti.try_number,
    }


class AmcCreateExecutionOperator(SubmissionGuardMixin, AmcLineageMixin, ExecutionWaitMixin, BaseOperator):
    """
    Submit a run of a saved AMC workflow and return its ``workflowExecutionId``.

    The time window defaults to the DAG run's data interval, converted into
    ``time_window_time_zone``; a run without a usable interval (manual run without logical date,
    zero-length interval) gets the last ``default_window_days`` days ending at midnight in that zone.
    Every input is validated after templating and before any HTTP call.

    At most once: the execution id is stored in the task instance's ``task_state_store`` right after
    the create call; a retry of the same task instance that finds that execution still PENDING or
    RUNNING (for the same request) reattaches to it instead of submitting again. A terminal one (for
    example after the user cleared the task to re-run the day) leads to exactly one new submission
    (and the old execution's row gets its terminal status).

    Ownership: the execution table records the submitting task instance (never reassigned). When a
    create call fails in a way that may have reached AMC, only an execution that is certainly this
    request's, did not exist before the call, and is not recorded for another task instance is
    taken as this task's; several, or an uncertain one (a relative window), fail the task naming
    them. ``on_kill`` never cancels an execution this task did not create.

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
    :param quota_policy: before a create, count the executions the instance started in the current
        quota day: ``wait`` (default) defers until the quota day rolls over when ``daily_quota`` are
        used (or AMC answers the create with a quota refusal), ``fail`` fails the task at once,
        ``ignore`` skips the check.
    :param daily_quota: ad-hoc executions per instance per quota day (AMC's limit: 30).
    :param quota_day_start: when the quota day starts, ``HH:MM[:SS]`` UTC (default ``00:00``; AMC
        does not document it).
    :param min_data_age: a ``timedelta`` (default ``None``: off); submit only once the window's end
        is at least this old (AMC's data is complete after about 48 h), waiting deferred until then.
    """

    # Plain attributes here (the sensor derives them from poke_interval/timeout as properties).
    poll_interval: float
    wait_timeout: float | None

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
        quota_policy: str = DEFAULT_QUOTA_POLICY,
        daily_quota: int = DEFAULT_DAILY_QUOTA,
        quota_day_start: str | day_time = DEFAULT_QUOTA_DAY_START,
        min_data_age: timedelta | None = None,
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
        # Not templated: checked here, so a bad value is a DAG import error naming the argument.
        self.quota_settings = quota_settings(quota_policy, daily_quota, quota_day_start)
        self.min_data_age = validate_min_data_age(min_data_age)

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

    def build_submission(self, context: Context) -> Submission:
        """Validate every input into the :class:`Submission`. Raises AirflowFailException."""
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
            return Submission.of(instance_id, request)
        except ValueError as exc:  # AmcConfigError, AmcTimeWindowError, pydantic ValidationError
            raise AirflowFailException(f"Invalid AMC execution request: {exc}") from exc

    # ---- submission (at most once) ------------------------------------------------------
    def _live(
        self, execution: WorkflowExecution, origin: str, submission: Submission
    ) -> WorkflowExecution | None:
        if AmcStatus.parse(execution.status).is_terminal:
            self.log.info(
                "Execution %s (%s) ended %s; submitting a new one",
                execution.workflow_execution_id,
                origin,
                execution.status,
            )
            self.record_status(execution, submission)
            return None
        self.log.info(
            "Reattaching to execution %s (%s), which is %s",
            execution.workflow_execution_id,
            origin,
            execution.status,
        )
        return execution

    def live_candidates(self, submission: Submission, since: datetime) -> list[WorkflowExecution]:
        """Live executions created since ``since`` that may be ``submission``'s (AMC's view)."""
        return [
            execution
            for execution in self.hook.find_executions(
                workflow_id=submission.workflow_id, created_after=since, instance_id=submission.instance_id
            )
            if not AmcStatus.parse(execution.status).is_terminal and submission.may_match(execution)
        ]

    def find_lost_submission(
        self, submission: Submission, state: Mapping[str, Any], owner: Mapping[str, Any]
    ) -> WorkflowExecution | None:
        """This task's execution whose create answer was lost, if AMC has it and it is certainly ours.

        Candidates: live executions of the same request created since the marker's
        ``submitted_at`` (minus a margin for clocks) that were not there before the create call
        (``seen_before``) and that no other task instance owns in the execution table.
        """
        since = datetime.fromisoformat(state["submitted_at"]) - LOST_SUBMISSION_MARGIN
        seen_before = set(state.get("seen_before") or ())
        found = [
            e for e in self.live_candidates(submission, since) if e.workflow_execution_id not in seen_before
        ]
        created = {e.workflow_execution_id: amc_instant(e.create_time) for e in found}
        owners = self.records.owners(created) if self.records else {}
        others = {
            execution_id: stored
            for execution_id, stored in owners.items()
            if not same_task_instance(stored, owner)
        }
        for execution_id, stored in others.items():
            self.log.info(
                "Execution %s matches this request but belongs to %s: not taken over",
                execution_id,
                describe_owner(stored),
            )
        unclaimed = [e for e in found if e.workflow_execution_id not in others]
        if not unclaimed:
            return None
        ids = ", ".join(e.workflow_execution_id for e in unclaimed)
        if len(unclaimed) > 1:
            raise AirflowFailException(
                f"Several live AMC executions may be this task's lost submission ({ids}); an earlier "
                "try's create call may have reached AMC more than once, or another tool submitted the "
                "same request. Inspect them, cancel the extra ones, then clear this task."
            )
        if not submission.matches(unclaimed[0]):
            raise AirflowFailException(
                f"AMC execution {ids} may be this task's lost submission, but AMC does not report "
                f"enough to be sure ({submission.time_window_type} window: AMC does not echo the window "
                "type). Inspect it: cancel it or let it end, then clear this task."
            )
        return unclaimed[0]

    def _reattachable(
        self, stored: Any, submission: Submission, owner: Mapping[str, Any]
    ) -> WorkflowExecution | None:
        """The execution of an earlier try of this task instance, if it is the same request and live."""
        if not (
            self.reattach and isinstance(stored, dict) and stored.get("fingerprint") == submission.fingerprint
        ):
            return None
        if stored.get("execution_id"):
            execution = self.hook.get_execution(stored["execution_id"], instance_id=stored["instance_id"])
            return self._live(execution, "an earlier try", submission)
        if stored.get("refused"):  # AMC refused the earlier try's create: nothing of it to find
            return None
        # An earlier try was submitting when it died or lost the answer: the create may have reached AMC.
        lost = self.find_lost_submission(submission, stored, owner)
        if lost is None:
            return None
        return self._live(lost, "submitted by an earlier try whose answer was lost", submission)

    def submit(self, store: Any, submission: Submission, owner: Mapping[str, Any]) -> WorkflowExecution:
        """Create the execution; the task state store holds a marker before and the id right after."""
        now = datetime.now(UTC)
        seen_before = (
            [e.workflow_execution_id for e in self.live_candidates(submission, now - LOST_SUBMISSION_MARGIN)]
            if self.reattach
            else []
        )
        state = {
            "instance_id": submission.instance_id,
            "fingerprint": submission.fingerprint,
            "submission": submission.as_dict(),
            "submitted_at": now.isoformat(),
            "seen_before": seen_before,
        }
        if store is not None:
            store.set(STATE_KEY, state)
        request = submission.create_request()
        self.log.info(
            "Submitting AMC workflow %s on %s: %s",
            request.workflow_id,
            submission.instance_id,
            request.to_body(),
        )
        try:
            execution = self.hook.create_execution(request, instance_id=submission.instance_id)
        except (AmcTransportError, AmcServerError) as exc:  # the POST may have reached AMC anyway
            lost = self.find_lost_submission(submission, state, owner) if self.reattach else None
            if lost is None:
                raise
            self.log.warning("Create call failed (%s) but AMC has the execution: using it", exc)
            execution = lost
        except AmcApiError as exc:
            # AMC answered with a refusal (429, a quota answer, any 4xx): nothing was created, so a
            # later try (after a wait of hours) has no lost answer to look for, and must not take a
            # live execution of the same request that someone else created meanwhile for one.
            if store is not None and not isinstance(exc, AmcResponseError):  # 2xx, unreadable body
                store.set(STATE_KEY, {**state, "refused": True})
            raise
        if store is not None:  # first thing after the create call: a retry must find it
            store.set(STATE_KEY, {**state, "execution_id": execution.workflow_execution_id})
        return execution

    def ensure_records_table(self) -> None:
        """Create/verify the execution table before the create call: a run must never start that
        Postgres would then refuse to record."""
        if self.records is None:
            return
        try:
            self.records.ensure_table()
        except ValueError as exc:  # a table of that name without the execution columns
            raise AirflowFailException(f"Invalid AMC execution request: {exc}") from exc

    def execute(self, context: Context) -> Any:
        submission = self.build_submission(context)
        self.ensure_records_table()
        owner = task_owner(context)
        store = context.get("task_state_store")
        stored = store.get(STATE_KEY) if store is not None else None
        execution = self._reattachable(stored, submission, owner)
        if execution is None:
            execution = self.guarded_create(submission, lambda: self.submit(store, submission, owner))
        execution_id = execution.workflow_execution_id
        try:
            self.record_submission(execution, submission, owner)
        except ExecutionOwnedElsewhere as exc:
            raise AirflowFailException(str(exc)) from exc
        self._amc_execution_id = execution_id  # ours: on_kill may cancel it from now on
        self.log.info("AMC execution %s is %s", execution_id, execution.status)
        context["ti"].xcom_push(key="amc_execution_id", value=execution_id)
        context["ti"].xcom_push(key="amc_submission", value=submission.as_dict())
        publish_links(
            self,
            context,
            execution_id=execution_id,
            instance_id=submission.instance_id,
            workflow_id=submission.workflow_id,
            output_s3_uri=execution.output_s3_uri,
        )
        if self.wait_for_completion:
            self.instance_id = submission.instance_id
            self.defer_until_done(execution_id, submission.instance_id, submission)
        return execution_id

    def record_submission(
        self, execution: WorkflowExecution, submission: Submission, owner: Mapping[str, Any]
    ) -> None:
        """The execution row with its owner (kept if already set by an earlier try of this task)."""
        if self.records is None:
            return
        requested = {
            "instance_id": submission.instance_id,
            "workflow_id": submission.workflow_id,
            "time_window_start": submission.time_window_start,
            "time_window_end": submission.time_window_end,
            "time_window_time_zone": submission.time_window_time_zone,
            "time_window_type": submission.time_window_type,
            "output_format": submission.output_format,
            "parameter_values": submission.parameter_values,
        }
        answered = amc_fields(execution, submission.instance_id, submission.output_format)
        self.records.claim(execution.workflow_execution_id, owner, **{**answered, **requested})

    def record_status(self, execution: WorkflowExecution, submission: Submission) -> None:
        """A terminal status learned on the way (a retry finding its execution over): recorded."""
        if self.records is None:
            return
        self.records.upsert(
            execution.workflow_execution_id,
            instance_id=submission.instance_id,
            **amc_fields(execution, submission.instance_id, submission.output_format),
        )


__all__ = ["OUTPUT_FORMATS", "STATE_KEY", "AmcCreateExecutionOperator", "task_owner"]
