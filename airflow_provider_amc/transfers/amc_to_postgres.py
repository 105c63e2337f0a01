"""``AmcToPostgresOperator``: load an AMC execution's result files into a Postgres table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_amc.assets import publish_asset_events
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.lifecycle import AmcStatus
from airflow_provider_amc.lineage import (
    AmcLineageMixin,
    ExecutionLineage,
    LineageColumn,
    LineageDataset,
    postgres_table_dataset,
    s3_dataset_name,
)
from airflow_provider_amc.records import (
    DEFAULT_POSTGRES_CONN_ID,
    DEFAULT_TABLE,
    ExecutionRecords,
    parse_table_name,
)
from airflow_provider_amc.results import location_of
from airflow_provider_amc.transfers.postgres_load import ResultLoadError, load_execution
from airflow_provider_amc.transfers.postgres_types import EXECUTION_ID_COLUMN, table_columns
from airflow_provider_amc.validation import validate_identifier

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

READ_CHUNK_BYTES = 1 << 20


def _storage_path(location: str) -> ObjectStoragePath:
    from airflow.sdk import ObjectStoragePath

    target = location_of(location)
    return ObjectStoragePath(target if "://" in target else f"file://{target}")


def _read_chunks(path: ObjectStoragePath) -> Iterator[bytes]:
    with path.open("rb") as handle:  # type: ignore[no-untyped-call]
        while chunk := handle.read(READ_CHUNK_BYTES):
            yield chunk


def iter_saved_parts(source_path: str) -> Iterator[tuple[str, Iterator[bytes]]]:
    """``(name, chunks)`` of saved result files: the file itself, or a directory's files by name
    (hidden ``.``/``_`` files skipped). Local paths and any object-storage URI work."""
    path = _storage_path(source_path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(
            (child for child in path.iterdir() if child.is_file() and not child.name.startswith((".", "_"))),
            key=lambda child: child.name,
        )
    else:
        raise FileNotFoundError(f"source_path {source_path!r} does not exist")
    for file in files:
        yield file.name, _read_chunks(file)


class AmcToPostgresOperator(AmcLineageMixin, BaseOperator):
    """
    Load the result of a SUCCEEDED AMC execution into a Postgres table with ``COPY``.

    Columns and types come from the execution's ``outputColumns`` (DECIMAL -> ``numeric(p,s)``,
    LONG -> ``bigint``, INTEGER -> ``integer``, DOUBLE -> ``double precision``, DATE -> ``date``,
    TIMESTAMP -> ``timestamp``, BOOLEAN -> ``boolean``, STRING and anything else -> ``text``), plus
    ``amc_execution_id``. The table is created if missing. Loads are idempotent per execution: in
    one transaction the execution's rows are deleted and its files copied, so re-running the task
    replaces them. CSV (each part with its header) and Parquet files are read in constant memory.

    :param execution_id: the AMC execution (templated; e.g. ``submit.output``).
    :param table: target table, ``name`` or ``schema.name`` (templated).
    :param instance_id: the AMC instance (templated); default: the connection's ``instance_id``.
    :param amc_conn_id: the ``amc`` connection (templated).
    :param postgres_conn_id: the Postgres connection (templated).
    :param source_path: read the result files saved here (templated; the sensor's ``output_path``:
        a directory or a single file, local or any object-storage URI) instead of downloading them.
    :param replace_same_window: also delete, in the same transaction, the rows of other executions
        of the same instance, workflow and window found in ``executions_table`` — so re-running a
        day replaces that day's rows instead of adding a second copy (default ``True``).
    :param executions_table: the execution table (same Postgres connection) that knows each
        execution's window; ``None`` loads per execution only.
    """

    template_fields: Sequence[str] = (
        "execution_id",
        "table",
        "instance_id",
        "amc_conn_id",
        "postgres_conn_id",
        "source_path",
    )
    ui_color = "#ff9900"

    def __init__(
        self,
        *,
        execution_id: str,
        table: str,
        instance_id: str | None = None,
        amc_conn_id: str = AmcHook.default_conn_name,
        postgres_conn_id: str = DEFAULT_POSTGRES_CONN_ID,
        source_path: str | None = None,
        replace_same_window: bool = True,
        executions_table: str | None = DEFAULT_TABLE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.execution_id = execution_id
        self.table = table
        self.instance_id = instance_id
        self.amc_conn_id = amc_conn_id
        self.postgres_conn_id = postgres_conn_id
        self.source_path = source_path
        self.replace_same_window = replace_same_window
        self.executions_table = executions_table

    @cached_property
    def hook(self) -> AmcHook:
        return AmcHook(amc_conn_id=self.amc_conn_id)

    def _validated(self) -> tuple[str, tuple[str, ...], str]:
        """(execution_id, table parts, instance_id), or AirflowFailException naming the field."""
        try:
            execution_id = validate_identifier("execution_id", self.execution_id)
            table = parse_table_name(self.table)
            if self.source_path is not None and not (
                isinstance(self.source_path, str) and self.source_path.strip()
            ):
                raise ValueError(f"source_path must be a non-empty path or URI, got {self.source_path!r}")
            instance_id = validate_identifier(
                "instance_id", self.instance_id or self.hook.default_instance_id
            )
            if self.executions_table is not None:
                parse_table_name(self.executions_table)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        return execution_id, table, instance_id

    def replaced_executions(self, execution_id: str) -> list[str]:
        """Earlier executions of the same window (from the execution table) whose rows to replace."""
        if not (self.replace_same_window and self.executions_table):
            return []
        records = ExecutionRecords(postgres_conn_id=self.postgres_conn_id, table=self.executions_table)
        return records.same_window(execution_id)

    def execute(self, context: Context) -> dict[str, Any]:
        execution_id, table, instance_id = self._validated()
        execution = self.hook.get_execution(execution_id, instance_id=instance_id)
        if not AmcStatus.parse(execution.status).succeeded:
            raise AirflowFailException(
                f"AMC execution {execution_id} is {execution.status}, not SUCCEEDED: nothing to load"
            )
        try:
            columns = table_columns(execution.output_columns or [])
        except ValueError as exc:
            raise AirflowFailException(f"AMC execution {execution_id}: {exc}") from exc
        parts = (
            iter_saved_parts(self.source_path)
            if self.source_path
            else self.hook.iter_result_parts(execution_id, instance_id=instance_id)
        )
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        replaces = self.replaced_executions(execution_id)
        if replaces:
            self.log.info("Replacing the rows of earlier executions of the same window: %s", replaces)
        with closing(PostgresHook(postgres_conn_id=self.postgres_conn_id).get_conn()) as conn:
            try:
                rows = load_execution(conn, table, columns, execution_id, parts, replaces=replaces)
            except ResultLoadError as exc:
                raise AirflowFailException(f"AMC execution {execution_id}: {exc}") from exc
        qualified = ".".join(table)
        self.log.info("Loaded %d rows of AMC execution %s into %s", rows, execution_id, qualified)
        self.amc_lineage = self.load_lineage(execution_id, execution.output_s3_uri, table, columns, rows)
        extra = {
            "execution_id": execution_id,
            "instance_id": instance_id,
            "workflow_id": execution.workflow_id,
            "time_window": {
                "start": execution.time_window_start_original,
                "end": execution.time_window_end_original,
                "time_zone": execution.time_window_time_zone_original,
            },
            "output_s3_uri": execution.output_s3_uri,
            "table": qualified,
            "row_count": rows,
        }
        publish_asset_events(self.outlets, context, extra)
        return {"table": qualified, "execution_id": execution_id, "rows": rows}

    def load_lineage(
        self,
        execution_id: str,
        output_s3_uri: str | None,
        table: tuple[str, ...],
        columns: list[Any],
        rows: int,
    ) -> ExecutionLineage:
        """Input: the execution's S3 result location (when AMC has one); output: the loaded table."""
        named = s3_dataset_name(output_s3_uri)
        schema = [LineageColumn(EXECUTION_ID_COLUMN, "text")]
        schema += [LineageColumn(column.name, column.pg_type) for column in columns]
        return ExecutionLineage(
            execution_id=execution_id,
            inputs=[LineageDataset(namespace=named[0], name=named[1])] if named else [],
            outputs=[postgres_table_dataset(self.postgres_conn_id, table, schema, rows)],
        )


__all__ = ["AmcToPostgresOperator", "iter_saved_parts"]
