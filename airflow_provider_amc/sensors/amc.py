"""``AmcExecutionSensor``: wait for an AMC execution, then record its output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, XComArg
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout
from airflow.triggers.base import StartTriggerArgs

from airflow_provider_amc.config import default_deferrable
from airflow_provider_amc.execution_wait import BACKSTOP_SECONDS, ExecutionWaitMixin
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.lifecycle import AmcStatus
from airflow_provider_amc.lineage import AmcLineageMixin
from airflow_provider_amc.links import AmcExecutionLink, AmcResultsLink
from airflow_provider_amc.publishing import publish_links
from airflow_provider_amc.records import DEFAULT_TABLE
from airflow_provider_amc.triggers.amc import AmcExecutionTrigger
from airflow_provider_amc.validation import validate_identifier

if TYPE_CHECKING:
    from airflow.sdk import Context


def triggerer_template(field: str, value: Any) -> Any:
    """``value`` as the triggerer can render it (``start_from_trigger``), checked at parse time.

    ``task.output`` becomes the Jinja pull of that one XCom. Airflow 3.3.2's triggerer answers only
    single-XCom reads: an ``xcom_pull`` without ``map_indexes`` asks for all map indexes
    (``GetXComSequenceSlice``), which the triggerer's supervisor cannot decode and never answers, so
    the trigger would hang until its timeout (the gap apache/airflow#55464 closed for the DAG
    processor). Such templates, mapped upstreams and other XCom arguments (``.map``, ``.zip``) are
    refused here instead.
    """
    if isinstance(value, XComArg):
        operator, key = getattr(value, "operator", None), getattr(value, "key", None)
        if operator is None or key is None or operator.is_mapped:
            raise ValueError(
                f"{field}: with start_from_trigger=True use a string or the `.output` of a task "
                f"that is not mapped, not {type(value).__name__}: the triggerer pulls one XCom"
            )
        return (
            f"{{{{ task_instance.xcom_pull(task_ids={operator.task_id!r}, dag_id={operator.dag_id!r}, "
            f"key={key!r}, map_indexes=-1) }}}}"
        )
    if isinstance(value, str) and "xcom_pull(" in value and "map_indexes" not in value:
        raise ValueError(
            f"{field}: with start_from_trigger=True an xcom_pull needs map_indexes=-1 (Airflow 3.3.2's "
            f"triggerer never answers a pull of all map indexes), e.g. "
            f"\"{{{{ ti.xcom_pull(task_ids='submit', map_indexes=-1) }}}}\", or pass `submit.output`"
        )
    return value


class AmcExecutionSensor(AmcLineageMixin, ExecutionWaitMixin, BaseSensorOperator):
    """
    Wait for an AMC workflow execution to end; on success stream its result files once and publish
    the output metadata (XCom return value and the Postgres execution table).

    Deferrable by default: the waiting happens in the triggerer, no worker slot is held. With
    ``deferrable=False`` the classic ``mode="poke"`` or ``mode="reschedule"`` apply.

    :param execution_id: the ``workflowExecutionId`` (templated; e.g. ``create.output``).
    :param instance_id: the AMC instance (templated); default: the connection's ``instance_id``.
    :param amc_conn_id: the ``amc`` connection (templated).
    :param postgres_conn_id: Postgres connection of the execution table; ``None`` skips the table.
    :param table: execution table name, ``name`` or ``schema.name`` (created if missing).
    :param output_path: save the result files here (templated): a local directory or any
        object-storage URI Airflow's ``ObjectStoragePath`` understands (``s3://…``, ``file://…``).
    :param deferrable: wait in the triggerer; default: ``[amc] default_deferrable``, else
        ``[operators] default_deferrable`` when the deployment sets it, else ``True``.
    :param poke_interval: seconds between status checks (default 60).
    :param max_poll_interval: when set, deferred polling backs off from ``poke_interval`` up to this.
    :param timeout: give up after this many seconds (AirflowSensorTimeout).
    :param cancel_on_timeout: cancel the AMC execution when the sensor times out.
    :param cancel_on_kill: cancel the AMC execution when the task is killed, cleared or marked —
        with an execution table, only an execution recorded as submitted in this DAG run.
    :param start_from_trigger: start in the triggerer: the scheduler creates the trigger directly,
        no worker try before it (needs ``deferrable``; the triggerer renders the templated ids).
        Skips the worker's first check and the links shown while waiting; with an execution table
        the waiting trigger does not cancel on kill (ownership is checked on a worker only).
        Mapped sensors (``.partial().expand()``) defer from the worker as usual (Airflow 3.3).
    """

    template_fields: Sequence[str] = ("execution_id", "instance_id", "amc_conn_id", "output_path", "table")
    ui_color = "#ff9900"
    operator_extra_links = (AmcExecutionLink(), AmcResultsLink())

    def __init__(
        self,
        *,
        execution_id: str,
        instance_id: str | None = None,
        amc_conn_id: str = AmcHook.default_conn_name,
        postgres_conn_id: str | None = "postgres_default",
        table: str = DEFAULT_TABLE,
        output_path: str | None = None,
        deferrable: bool | None = None,
        max_poll_interval: float | None = None,
        cancel_on_timeout: bool = False,
        cancel_on_kill: bool = True,
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 60)
        super().__init__(**kwargs)
        self.execution_id = execution_id
        self.instance_id = instance_id
        self.amc_conn_id = amc_conn_id
        self.postgres_conn_id = postgres_conn_id
        self.table = table
        self.output_path = output_path
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.max_poll_interval = max_poll_interval
        self.cancel_on_timeout = cancel_on_timeout
        self.cancel_on_kill = cancel_on_kill
        self.start_from_trigger = start_from_trigger
        if start_from_trigger:
            self.start_trigger_args = self._start_trigger_args()

    # ``start_trigger_args`` stays None on the class (unlike the standard provider's sensors): a
    # mapped sensor is never __init__-ed at parse time, so it keeps None and Airflow runs it on a
    # worker first, instead of starting a trigger without an execution id.
    def _start_trigger_args(self) -> StartTriggerArgs:
        """The trigger the scheduler creates for ``start_from_trigger`` (kwargs are JSON; the
        templated ones are rendered by the triggerer, they are template fields of both classes)."""
        if not self.deferrable:
            raise ValueError(
                "start_from_trigger=True needs deferrable=True (got deferrable=False): "
                "only a deferrable sensor can start in the triggerer"
            )
        return StartTriggerArgs(
            trigger_cls=f"{AmcExecutionTrigger.__module__}.{AmcExecutionTrigger.__qualname__}",
            trigger_kwargs={
                **self.polling_kwargs(),
                "execution_id": triggerer_template("execution_id", self.execution_id),
                "instance_id": triggerer_template("instance_id", self.instance_id),
                "amc_conn_id": triggerer_template("amc_conn_id", self.amc_conn_id),
                # No worker can read the execution table first: without one, the user decides.
                "cancel_on_kill": self.cancel_on_kill and not self.postgres_conn_id,
                "deadline_margin": BACKSTOP_SECONDS,
            },
            next_method="execute_complete",
            timeout=self.backstop_timeout(),
        )

    @property
    def poll_interval(self) -> float:  # the trigger's name for poke_interval
        return float(self.poke_interval)

    @property
    def wait_timeout(self) -> float | None:
        return float(self.timeout) if self.timeout is not None else None

    def validate_inputs(self) -> None:
        """Check ids and the table name before any HTTP call (templates are rendered by now)."""
        try:
            validate_identifier("execution_id", self.execution_id)
            if self.instance_id or self.hook.default_instance_id:
                validate_identifier("instance_id", self.instance_id or self.hook.default_instance_id)
            _ = self.records  # validates the table name
            _ = self.hook.console_url_template  # the link's template (connection extra)
        except ValueError as exc:
            raise AirflowFailException(f"Invalid AmcExecutionSensor input: {exc}") from exc

    def poke(self, context: Context) -> bool | PokeReturnValue:
        self._amc_execution_id = self.execution_id
        execution = self.hook.get_execution(self.execution_id, instance_id=self.instance_id)
        self.log.info("AMC execution %s is %s", self.execution_id, execution.status)
        if not AmcStatus.parse(execution.status).is_terminal:
            if not hasattr(self, "_amc_may_cancel"):  # once: is this run's execution ours to cancel?
                self._amc_may_cancel = self.submitted_in_this_run(context, execution)
            if not getattr(
                self, "_amc_links_published", False
            ):  # before deferring (finish() does it at the end)
                publish_links(
                    self,
                    context,
                    execution_id=self.execution_id,
                    instance_id=self.instance_id,
                    workflow_id=execution.workflow_id,
                    output_s3_uri=execution.output_s3_uri,
                )
                self._amc_links_published = True
            return False
        return PokeReturnValue(is_done=True, xcom_value=self.finish(context, execution, self.instance_id))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.start_from_trigger:  # execute() never ran: the rendered inputs are checked here
            self.validate_inputs()
        return super().execute_complete(context, event)

    def execute(self, context: Context) -> Any:
        self.validate_inputs()
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout as exc:
                self.handle_timeout(self.execution_id, self.instance_id, str(exc))
        done = self.poke(context)  # one cheap check on the worker first: it may be over already
        if isinstance(done, PokeReturnValue):
            return done.xcom_value
        self.defer_until_done(self.execution_id, self.instance_id)
        return None
