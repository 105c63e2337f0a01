"""``AmcToPostgresOperator``: load an AMC execution's result files into a Postgres table."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_amc.assets import publish_asset_events
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.lifecycle import AmcStatus, RequestIdentity, amc_instant, executed_identity
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
from airflow_provider_amc.result_reader import CsvDialect
from airflow_provider_amc.results import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    execution_folder,
    location_of,
    read_manifest,
    storage_path,
)
from airflow_provider_amc.transfers.postgres_load import (
    ON_SCHEMA_CHANGE,
    ResultLoadError,
    instance_rows_sql,
    load_execution,
)
from airflow_provider_amc.transfers.postgres_types import EXECUTION_ID_COLUMN, PROVIDER_COLUMNS, table_columns
from airflow_provider_amc.validation import validate_identifier

if TYPE_CHECKING:
    import psycopg
    from airflow.sdk import Context
    from psycopg import Cursor

    from airflow_provider_amc.client import WorkflowExecution

READ_CHUNK_BYTES = 1 << 20
#: What a load does when a newer execution of the same request has its rows in the table already.
ON_NEWER_LOADED = ("fail", "skip")


class NewerExecutionLoaded(ResultLoadError):
    """A newer execution of the same request is loaded: loading this one would restore stale rows."""

    def __init__(self, execution_id: str, newer: Sequence[str]) -> None:
        super().__init__(
            f"a newer execution of the same request ({', '.join(newer)}) is loaded in this table; "
            f"loading the older {execution_id} would replace its rows with stale ones"
        )
        self.newer = list(newer)


def replace_plan(
    records: ExecutionRecords,
    table: Sequence[str],
    execution: WorkflowExecution,
    identity: RequestIdentity,
) -> Callable[[Cursor[Any]], list[str]]:
    """The load's replace decision, run under its lock: the executions recorded with the same
    request key (so of the same instance) that AMC created before this one (their rows go); a
    newer one whose rows of this instance are in ``table`` already refuses the load
    (:class:`NewerExecutionLoaded`). Newest = AMC's createTime."""
    from psycopg import sql

    execution_id = execution.workflow_execution_id
    created = amc_instant(execution.create_time)

    def plan(cur: Cursor[Any]) -> list[str]:
        cur.execute(records.same_request_sql(), (identity.key, execution_id))
        others = [(str(other), when) for other, when in cur.fetchall()]
        newer = [other for other, when in others if created and when and when > created]
        if newer:
            cur.execute(
                sql.SQL("SELECT DISTINCT {} FROM {} WHERE {} = ANY(%s) AND {}").format(
                    sql.Identifier(EXECUTION_ID_COLUMN),
                    sql.Identifier(*table),
                    sql.Identifier(EXECUTION_ID_COLUMN),
                    instance_rows_sql(),
                ),
                (newer, identity.instance_id),
            )
            loaded = sorted(str(row[0]) for row in cur.fetchall())
            if loaded:
                raise NewerExecutionLoaded(execution_id, loaded)
        return [other for other, _ in others if other not in newer]

    return plan


@dataclass(frozen=True)
class SavedResult:
    """The files of one execution saved by the sensor, as its manifest lists them."""

    folder: str
    dialect: CsvDialect
    files: list[dict[str, Any]]
    row_count: int

    @property
    def expected_rows(self) -> dict[str, int]:
        return {entry["name"]: int(entry["row_count"]) for entry in self.files}

    def parts(self) -> Iterator[tuple[str, Iterator[bytes]]]:
        """``(name, chunks)`` of exactly the manifest's files; a size that differs raises."""
        for entry in self.files:
            yield entry["name"], _checked_chunks(location_of(self.folder, entry["name"]), entry["size_bytes"])


def _checked_chunks(location: str, size: int) -> Iterator[bytes]:
    path = storage_path(location)
    if not path.is_file():
        raise ResultLoadError(f"saved result file {location} listed in the manifest is missing")
    read = 0
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK_BYTES):
            read += len(chunk)
            yield chunk
    if read != size:
        raise ResultLoadError(f"saved result file {location} has {read} bytes, its manifest says {size}")


def saved_result(source_path: str, execution_id: str) -> SavedResult:
    """The saved files of ``execution_id``: ``source_path`` is the sensor's ``output_path`` (the
    execution's folder below it is used) or that folder itself; its manifest must name the execution."""
    candidates = [execution_folder(source_path, execution_id), location_of(source_path)]
    for folder in candidates:
        manifest = read_manifest(folder)
        if manifest is None:
            continue
        if manifest.get("version") != MANIFEST_VERSION or manifest.get("execution_id") != execution_id:
            raise ResultLoadError(
                f"{location_of(folder, MANIFEST_NAME)} is a manifest of execution "
                f"{manifest.get('execution_id')!r} (version {manifest.get('version')!r}), "
                f"not of {execution_id}"
            )
        try:
            dialect = CsvDialect(**manifest["csv"])
            files = [dict(entry) for entry in manifest["files"]]
            return SavedResult(folder, dialect, files, int(manifest["row_count"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultLoadError(
                f"{location_of(folder, MANIFEST_NAME)} is not a valid manifest: {exc}"
            ) from exc
    raise ResultLoadError(
        f"no complete saved result of execution {execution_id} under {source_path!r}: expected "
        f"{location_of(candidates[0], MANIFEST_NAME)} (written by AmcExecutionSensor(output_path=...) "
        "once every file is saved)"
    )


class AmcToPostgresOperator(AmcLineageMixin, BaseOperator):
    """
    Load the result of a SUCCEEDED AMC execution into a Postgres table with ``COPY``.

    Columns and types come from the execution's ``outputColumns`` (DECIMAL -> ``numeric(p,s)``,
    LONG -> ``bigint``, INTEGER -> ``integer``, DOUBLE -> ``double precision``, DATE -> ``date``,
    TIMESTAMP -> ``timestamp``, BOOLEAN -> ``boolean``, STRING and anything else -> ``text``), plus
    ``amc_execution_id`` and ``amc_instance_id`` (the execution and the AMC instance each row came
    from). The table is created if missing. Loads are idempotent per execution: in one transaction
    the execution's rows (of its instance) are deleted and its files copied, so re-running the task
    replaces them. CSV (each part with its header) and Parquet files are read in constant memory.

    Exactly the records AMC produced, or nothing: every part is parsed by the same reader that
    counted it, the rows ``COPY`` wrote are checked against the records in the file and against the
    row counts recorded by the sensor (manifest and execution table); any difference rolls the
    whole load back and fails the task naming both numbers.

    Across executions, a load replaces only the rows of older executions of the same request
    (``lifecycle.RequestIdentity``: instance, workflow, the window as UTC instants, parameter
    values, output format), never another parameter set's, and loads of one request serialise on
    a lock on that key. The instance is part of the request, and every delete is scoped to it: two
    instances' executions of the same workflow and window never replace each other's rows, so one
    table can collect a fan-out over instances. Newest wins by AMC's creation time: loading an
    older execution after a newer one's rows are in fails (``on_newer_loaded="fail"``) or is
    skipped with a log line (``"skip"``).

    :param execution_id: the AMC execution (templated; e.g. ``submit.output``).
    :param table: target table, ``name`` or ``schema.name`` (templated).
    :param instance_id: the AMC instance (templated); default: the connection's ``instance_id``.
    :param amc_conn_id: the ``amc`` connection (templated).
    :param postgres_conn_id: the Postgres connection (templated).
    :param source_path: read the result files saved here instead of downloading them (templated):
        the sensor's ``output_path`` (the execution's folder ``<output_path>/<execution_id>`` is
        used) or that folder itself, local or any object-storage URI. Exactly the files its
        manifest lists are loaded, each checked against the manifest's size and row count.
    :param replace_same_window: also delete, in the same transaction, the rows of older executions
        of the same request found in ``executions_table`` — so re-running a day replaces that day's
        rows instead of adding a second copy (default ``True``). The name is kept from earlier
        versions; the match is the whole request, parameter values and output format included.
    :param executions_table: the execution table (same Postgres connection) that knows each
        execution's request key, AMC creation time and recorded row count (checked against the
        rows loaded); ``None`` loads per execution only.
    :param on_newer_loaded: ``"fail"`` (default) or ``"skip"``: what to do when a newer execution
        of the same request has its rows in ``table`` already.
    :param on_schema_change: what to do when the existing table's columns do not match the
        execution's ``outputColumns`` in a way that could lose data (narrower numeric, timestamp into
        date, a column added or dropped): ``"fail"`` (default; the message names the columns) or
        ``"migrate"`` (alter the table). Lossless widenings are applied either way and logged. A
        table created before ``amc_instance_id`` existed counts as a change too: ``"migrate"``
        adds the column (NULL for the rows already there, which keep matching by execution id).
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
        on_newer_loaded: str = "fail",
        on_schema_change: str = "fail",
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
        self.on_newer_loaded = on_newer_loaded
        self.on_schema_change = on_schema_change

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
            if self.on_newer_loaded not in ON_NEWER_LOADED:
                raise ValueError(
                    f"on_newer_loaded {self.on_newer_loaded!r} is not supported: allowed values are "
                    f"{', '.join(ON_NEWER_LOADED)}"
                )
            if self.on_schema_change not in ON_SCHEMA_CHANGE:
                raise ValueError(
                    f"on_schema_change {self.on_schema_change!r} is not supported: allowed values are "
                    f"{', '.join(ON_SCHEMA_CHANGE)}"
                )
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        return execution_id, table, instance_id

    @cached_property
    def execution_records(self) -> ExecutionRecords | None:
        if not self.executions_table:
            return None
        return ExecutionRecords(postgres_conn_id=self.postgres_conn_id, table=self.executions_table)

    def recorded_row_count(self, execution_id: str) -> int | None:
        """The row count the sensor recorded for ``execution_id`` in the execution table, if any."""
        records = self.execution_records
        record = records.get(execution_id) if records is not None else None
        value = (record or {}).get("row_count")
        return int(value) if value is not None else None

    def request_identity(self, execution: WorkflowExecution, instance_id: str) -> RequestIdentity:
        """The execution's request as AMC reports it; the output format as recorded at submission."""
        records = self.execution_records
        row = records.get(execution.workflow_execution_id) if records is not None else None
        return executed_identity(instance_id, execution, (row or {}).get("output_format"))

    def execute(self, context: Context) -> dict[str, Any]:
        execution_id, table, instance_id = self._validated()
        execution = self.hook.get_execution(execution_id, instance_id=instance_id)
        if not AmcStatus.parse(execution.status).succeeded:
            raise AirflowFailException(
                f"AMC execution {execution_id} is {execution.status}, not SUCCEEDED: nothing to load"
            )
        try:
            columns = table_columns(execution.output_columns or [])
            if self.source_path:
                saved = saved_result(self.source_path, execution_id)
                dialect, expected_rows = saved.dialect, saved.expected_rows
                parts: Iterator[tuple[str, Iterator[bytes]]] = saved.parts()
            else:
                dialect = self.hook.get_csv_dialect(execution.workflow_id, instance_id=instance_id)
                expected_rows = None
                parts = self.hook.iter_result_parts(execution_id, instance_id=instance_id)
        except ValueError as exc:  # ResultLoadError, a bad outputColumns or outputFormat
            raise AirflowFailException(f"AMC execution {execution_id}: {exc}") from exc
        from airflow_provider_amc.postgres_bounds import bounded_hook

        identity = self.request_identity(execution, instance_id)
        records = self.execution_records
        plan = None
        if self.replace_same_window and records is not None and identity.resolved and records.table_exists():
            records.ensure_table()  # a table of an older version gets the request columns
            plan = replace_plan(records, table, execution, identity)
        qualified = ".".join(table)
        # connect/lock timeouts; the provider needs psycopg 3 (postgres provider >= 6 uses it by default)
        connection = cast("psycopg.Connection[Any]", bounded_hook(self.postgres_conn_id).get_conn())
        with closing(connection) as conn:
            try:
                rows = load_execution(
                    conn,
                    table,
                    columns,
                    execution_id,
                    parts,
                    replaces=self._logged(plan) if plan else (),
                    lock_key=f"request:{identity.key}",
                    instance_id=instance_id,
                    dialect=dialect,
                    expected_rows=expected_rows,
                    expected_total=self.recorded_row_count(execution_id),
                    on_schema_change=self.on_schema_change,
                )
            except NewerExecutionLoaded as exc:
                if self.on_newer_loaded != "skip":
                    raise AirflowFailException(f"AMC execution {execution_id}: {exc}") from exc
                self.log.warning(
                    "Skipped the load of AMC execution %s into %s: %s", execution_id, qualified, exc
                )
                return {"table": qualified, "execution_id": execution_id, "rows": 0, "skipped": True}
            except ResultLoadError as exc:
                raise AirflowFailException(f"AMC execution {execution_id}: {exc}") from exc
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
        schema = [LineageColumn(name, "text") for name in PROVIDER_COLUMNS]
        schema += [LineageColumn(column.name, column.pg_type) for column in columns]
        return ExecutionLineage(
            execution_id=execution_id,
            inputs=[LineageDataset(namespace=named[0], name=named[1])] if named else [],
            outputs=[postgres_table_dataset(self.postgres_conn_id, table, schema, rows)],
        )

    def _logged(self, plan: Callable[[Cursor[Any]], list[str]]) -> Callable[[Cursor[Any]], list[str]]:
        def logged(cur: Cursor[Any]) -> list[str]:
            older = plan(cur)
            if older:
                self.log.info("Replacing the rows of older executions of the same request: %s", older)
            return older

        return logged


__all__ = ["AmcToPostgresOperator", "NewerExecutionLoaded", "SavedResult", "saved_result"]
