"""``AmcUpsertWorkflowOperator``: keep a saved AMC workflow in step with SQL kept in the DAG's repository."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from pydantic import ValidationError

from airflow_provider_amc.client import (
    AmcNotFoundError,
    CreateExecutionRequest,
    InputParameter,
    OutputColumn,
    Workflow,
    WorkflowExecution,
)
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.lifecycle import AmcStatus
from airflow_provider_amc.lineage import AmcLineageMixin, ExecutionLineage
from airflow_provider_amc.validation import validate_identifier, validate_parameter_values
from airflow_provider_amc.workflows import (
    ALWAYS_MANAGED,
    EXTRA_WORKFLOW_FIELDS,
    UpsertAction,
    check_parameters,
    normalise_sql,
    reconcile,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


def _model_list(field: str, value: Any, model: type[InputParameter] | type[OutputColumn]) -> list[Any]:
    """A list of dicts (snake_case or camelCase keys) or models, validated; errors name the item."""
    if value is None or value == []:
        return []
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise AirflowFailException(f"{field} must be a list of objects, got {type(value).__name__}")
    items = []
    for index, item in enumerate(value):
        try:
            items.append(item if isinstance(item, model) else model.model_validate(item))
        except ValidationError as exc:
            raise AirflowFailException(f"{field}[{index}] is not valid: {exc}") from exc
    return items


class AmcUpsertWorkflowOperator(AmcLineageMixin, BaseOperator):
    """
    Create a saved AMC workflow, or update it when its definition changed ("workflows as code").

    Returns ``"created"``, ``"updated"`` or ``"unchanged"``. The saved workflow is read first and
    written only when a managed field differs. The SQL is sent in the single-line form AMC asks for
    (comments removed, whitespace outside string literals collapsed, no trailing ``;``) and compared
    in that form, so re-indenting or commenting a query is not a change. Managed fields are the
    SQL, ``input_parameters``, ``output_columns`` and the Workflow fields given as keyword
    arguments; other fields of the saved workflow are kept on update.

    Before any HTTP call the SQL's ``CUSTOM_PARAMETER('…')`` uses are checked against the declared
    input parameters: an undeclared use fails the task (AMC would refuse to compile it), a declared
    but unused parameter is logged as a warning.

    :param workflow_id: the saved workflow's id (templated).
    :param sql: the AMC SQL (templated); a value ending in ``.sql`` is read from the DAG folder or
        ``template_searchpath`` and rendered. Exactly one of ``sql`` and ``sql_file``.
    :param sql_file: path of a ``.sql`` file, relative to the DAG folder / ``template_searchpath``.
    :param input_parameters: declared parameters (templated): dicts with ``name``, ``data_type``
        (or ``dataType``), ``column_type``, ``default_value``, ``description``, ``display_name``.
    :param output_columns: optional expected output schema (AMC then checks the query matches it).
    :param instance_id: the AMC instance (templated); default: the connection's ``instance_id``.
    :param amc_conn_id: the ``amc`` connection (templated).
    :param dry_run: after the upsert, validate the workflow with a ``dryRun`` execution and fail the
        task with AMC's reason when it ends REJECTED or FAILED.
    :param dry_run_parameter_values: parameter values for the dry run (templated).
    :param dry_run_timeout: seconds to wait for the dry run's result.
    :param dry_run_poll_interval: seconds between dry-run status polls.
    :param workflow_fields: any other ``Workflow`` field as a keyword argument, e.g.
        ``filtered_metrics_discriminator_column="filtered"``, ``privacy_filtering_behavior=…``.
    """

    template_fields: Sequence[str] = (
        "workflow_id",
        "sql",
        "input_parameters",
        "output_columns",
        "workflow_fields",
        "instance_id",
        "amc_conn_id",
        "dry_run_parameter_values",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "input_parameters": "json", "output_columns": "json"}
    ui_color = "#ff9900"

    def __init__(
        self,
        *,
        workflow_id: str,
        sql: str | None = None,
        sql_file: str | None = None,
        input_parameters: Sequence[Mapping[str, Any] | InputParameter] | None = None,
        output_columns: Sequence[Mapping[str, Any] | OutputColumn] | None = None,
        instance_id: str | None = None,
        amc_conn_id: str = AmcHook.default_conn_name,
        dry_run: bool = False,
        dry_run_parameter_values: Mapping[str, Any] | str | None = None,
        dry_run_timeout: float = 300.0,
        dry_run_poll_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        workflow_fields = {name: kwargs.pop(name) for name in EXTRA_WORKFLOW_FIELDS if name in kwargs}
        super().__init__(**kwargs)
        if (sql is None) == (sql_file is None):
            raise ValueError("AmcUpsertWorkflowOperator needs exactly one of sql= and sql_file=")
        if sql_file is not None and not (isinstance(sql_file, str) and sql_file.endswith(".sql")):
            raise ValueError(f"sql_file {sql_file!r} must be the path of a .sql file")
        self.workflow_id = workflow_id
        self.sql = sql if sql is not None else sql_file
        self.input_parameters = input_parameters
        self.output_columns = output_columns
        self.workflow_fields = workflow_fields
        self.instance_id = instance_id
        self.amc_conn_id = amc_conn_id
        # Not ``self.dry_run``: that name is BaseOperator's dry_run() method (render-only runs).
        self.dry_run_after_upsert = dry_run
        self.dry_run_parameter_values = dry_run_parameter_values
        self.dry_run_timeout = dry_run_timeout
        self.dry_run_poll_interval = dry_run_poll_interval

    @cached_property
    def hook(self) -> AmcHook:
        return AmcHook(amc_conn_id=self.amc_conn_id)

    # ---- validation (after templating, before any HTTP call) ---------------------------------
    def build_workflow(self) -> Workflow:
        """The wanted definition; raises AirflowFailException naming the bad field."""
        try:
            workflow_id = validate_identifier("workflow_id", self.workflow_id)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        sql = normalise_sql(self.sql) if isinstance(self.sql, str) else ""
        if not sql:
            raise AirflowFailException("sql is empty: the workflow needs an AMC SQL query")
        parameters = _model_list("input_parameters", self.input_parameters, InputParameter)
        columns = _model_list("output_columns", self.output_columns, OutputColumn)
        check = check_parameters(sql, (parameter.name for parameter in parameters))
        if check.undeclared:
            undeclared = ", ".join(map(repr, check.undeclared))
            declared = ", ".join(repr(p.name) for p in parameters) or "none"
            raise AirflowFailException(
                f"Workflow {workflow_id}: the SQL uses CUSTOM_PARAMETER {undeclared} but input_parameters "
                f"does not declare it (declared: {declared})"
            )
        if check.unused:
            self.log.warning(
                "Workflow %s declares input parameter(s) %s that the SQL never uses",
                workflow_id,
                ", ".join(map(repr, check.unused)),
            )
        try:
            return Workflow(
                workflow_id=workflow_id,
                sql_query=sql,
                input_parameters=parameters or None,
                output_columns=columns or None,
                **self.workflow_fields,
            )
        except ValidationError as exc:
            raise AirflowFailException(f"Invalid workflow field: {exc}") from exc

    @property
    def managed_fields(self) -> tuple[str, ...]:
        return (*ALWAYS_MANAGED, *self.workflow_fields)

    # ---- execution ------------------------------------------------------------------------
    def execute(self, context: Context) -> UpsertAction:
        wanted = self.build_workflow()
        instance_id = self.instance_id or self.hook.default_instance_id
        try:
            instance_id = validate_identifier("instance_id", instance_id)
            dry_run_values = validate_parameter_values(self.dry_run_parameter_values)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        action = self.upsert(wanted, instance_id)
        self.amc_lineage = ExecutionLineage(sql=wanted.sql_query)  # SQLJobFacet; dry run id below
        self.log.info("AMC workflow %s on %s: %s", wanted.workflow_id, instance_id, action)
        if self.dry_run_after_upsert:
            self.validate_by_dry_run(wanted.workflow_id, instance_id, dry_run_values)
        return action

    def upsert(self, wanted: Workflow, instance_id: str) -> UpsertAction:
        """GET the saved workflow, then create it, update it, or leave it as it is."""
        try:
            current: Workflow | None = self.hook.get_workflow(wanted.workflow_id, instance_id=instance_id)
        except AmcNotFoundError:
            current = None
        target = reconcile(current, wanted, self.managed_fields)
        if target is None:
            return "unchanged"
        if current is None:
            self.hook.create_workflow(target, instance_id=instance_id)
            return "created"
        self.hook.update_workflow(target, instance_id=instance_id)
        return "updated"

    def validate_by_dry_run(
        self, workflow_id: str, instance_id: str, parameter_values: dict[str, Any]
    ) -> None:
        """Run a ``dryRun`` execution of the saved workflow; REJECTED/FAILED fails the task."""
        request = CreateExecutionRequest(
            workflow_id=workflow_id, dry_run=True, parameter_values=parameter_values or None
        )
        execution = self.hook.create_execution(request, instance_id=instance_id)
        execution_id = execution.workflow_execution_id
        self.log.info("Dry run %s of workflow %s submitted", execution_id, workflow_id)
        if self.amc_lineage is not None:
            self.amc_lineage.execution_id = execution_id
        execution = self._wait_for(execution, instance_id)
        if not AmcStatus.parse(execution.status).succeeded:
            reason = execution.status_reason or "no reason given by AMC"
            raise AirflowFailException(
                f"Dry run {execution_id} of AMC workflow {workflow_id} ended {execution.status}: {reason}"
            )
        self.log.info("Dry run %s of workflow %s succeeded", execution_id, workflow_id)

    def _wait_for(self, execution: WorkflowExecution, instance_id: str) -> WorkflowExecution:
        deadline = time.monotonic() + self.dry_run_timeout
        while not AmcStatus.parse(execution.status).is_terminal:
            if time.monotonic() >= deadline:
                raise AirflowException(
                    f"Dry run {execution.workflow_execution_id} was still {execution.status} after "
                    f"{self.dry_run_timeout:g} s"
                )
            time.sleep(self.dry_run_poll_interval)
            execution = self.hook.get_execution(execution.workflow_execution_id, instance_id=instance_id)
        return execution


__all__ = ["AmcUpsertWorkflowOperator"]
