"""OpenLineage facets of the AMC operators (optional: ``pip install 'airflow-provider-amc[openlineage]'``).

Nothing here imports OpenLineage at module level: the operators call :meth:`AmcLineageMixin.
get_openlineage_facets_on_complete` only when the OpenLineage provider's listener runs, and that
method imports the facet classes inside itself (as Airflow's official providers do). Without the
extra the provider never touches this code path.

The operators record what lineage needs in ``self.amc_lineage`` (an :class:`ExecutionLineage`)
while they run — in ``execute`` or, for a deferred task, in ``execute_complete``, because a
resumed task is a new operator instance that has lost anything ``execute`` set.

Naming (the OpenLineage dataset naming spec): an S3 location is namespace ``s3://<bucket>``, name
``<key>``; a Postgres table is namespace ``postgres://<host>:<port>``, name
``<database>.<schema>.<table>`` (as ``PostgresHook.get_openlineage_database_info`` names it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: ``ExternalQueryRunFacet.source`` of every AMC execution.
SOURCE = "amc"


@dataclass
class LineageColumn:
    name: str
    type: str | None = None


@dataclass
class LineageDataset:
    """One dataset of a run; ``row_count`` / ``size_bytes`` become an ``outputStatistics`` facet."""

    namespace: str
    name: str
    columns: list[LineageColumn] = field(default_factory=list)
    row_count: int | None = None
    size_bytes: int | None = None
    file_count: int | None = None


@dataclass
class ExecutionLineage:
    """What a finished AMC task tells OpenLineage."""

    execution_id: str | None = None
    sql: str | None = None
    inputs: list[LineageDataset] = field(default_factory=list)
    outputs: list[LineageDataset] = field(default_factory=list)


def s3_dataset_name(uri: str | None) -> tuple[str, str] | None:
    """``(namespace, name)`` of an ``s3://bucket/key`` URI; ``None`` for ``N/A``, empty or other schemes."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return None
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        return None
    return f"s3://{bucket}", key.rstrip("/") or "/"


def column_type(column: dict[str, Any]) -> str | None:
    value = column.get("dataType", column.get("data_type"))
    if isinstance(value, dict):  # AMC may describe a type as an object
        return str(value.get("name") or value.get("type") or value)
    return None if value is None else str(value)


def columns_of(output_columns: list[dict[str, Any]] | None) -> list[LineageColumn]:
    """Schema fields from an execution's ``outputColumns`` (JSON form, as in the output metadata)."""
    return [LineageColumn(str(column["name"]), column_type(column)) for column in output_columns or []]


def s3_output(metadata: dict[str, Any]) -> LineageDataset | None:
    """The result location of a finished execution (from the output metadata) as a dataset."""
    named = s3_dataset_name(metadata.get("output_s3_uri"))
    if named is None:
        return None
    return LineageDataset(
        namespace=named[0],
        name=named[1],
        columns=columns_of(metadata.get("output_columns")),
        row_count=metadata.get("row_count"),
        size_bytes=metadata.get("size_bytes"),
        file_count=len(metadata.get("files") or []) or None,
    )


def execution_lineage(metadata: dict[str, Any]) -> ExecutionLineage:
    """Lineage of a finished execution: its id and its S3 result location (when AMC has one)."""
    output = s3_output(metadata)
    return ExecutionLineage(execution_id=metadata.get("execution_id"), outputs=[output] if output else [])


def postgres_table_dataset(
    postgres_conn_id: str, table: tuple[str, ...], columns: list[LineageColumn], rows: int
) -> LineageDataset:
    """The loaded Postgres table, named the way ``PostgresHook`` names it for OpenLineage."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=postgres_conn_id)
    conn = hook.get_connection(postgres_conn_id)
    authority = f"{conn.host or 'localhost'}:{conn.port or 5432}"
    database = hook.database or conn.schema or "postgres"
    schema, name = table if len(table) == 2 else ("public", table[0])
    return LineageDataset(
        namespace=f"postgres://{authority}",
        name=f"{database}.{schema}.{name}",
        columns=columns,
        row_count=rows,
    )


def _dataset(dataset: LineageDataset, *, output: bool) -> Any:
    from airflow.providers.common.compat.openlineage.facet import (
        InputDataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )

    facets: dict[str, Any] = {}
    if dataset.columns:
        facets["schema"] = SchemaDatasetFacet(
            fields=[
                SchemaDatasetFacetFields(name=column.name, type=column.type) for column in dataset.columns
            ]
        )
    if not output:
        return InputDataset(namespace=dataset.namespace, name=dataset.name, facets=facets)
    statistics: dict[str, Any] = {}
    if dataset.row_count is not None or dataset.size_bytes is not None:
        statistics["outputStatistics"] = OutputStatisticsOutputDatasetFacet(
            rowCount=dataset.row_count, size=dataset.size_bytes, fileCount=dataset.file_count
        )
    return OutputDataset(
        namespace=dataset.namespace, name=dataset.name, facets=facets, outputFacets=statistics
    )


def operator_lineage(lineage: ExecutionLineage | None) -> Any:
    """An ``OperatorLineage`` (imports the OpenLineage provider: call only from the OL hooks)."""
    from airflow.providers.common.compat.openlineage.facet import ExternalQueryRunFacet, SQLJobFacet
    from airflow.providers.openlineage.extractors import OperatorLineage

    if lineage is None:
        return OperatorLineage()
    run_facets: dict[str, Any] = {}
    if lineage.execution_id:
        run_facets["externalQuery"] = ExternalQueryRunFacet(
            externalQueryId=lineage.execution_id, source=SOURCE
        )
    job_facets: dict[str, Any] = {}
    if lineage.sql:
        job_facets["sql"] = SQLJobFacet(query=lineage.sql)
    return OperatorLineage(
        inputs=[_dataset(dataset, output=False) for dataset in lineage.inputs],
        outputs=[_dataset(dataset, output=True) for dataset in lineage.outputs],
        run_facets=run_facets,
        job_facets=job_facets,
    )


class AmcLineageMixin:
    """``get_openlineage_facets_on_complete`` from ``self.amc_lineage`` (set while the task runs)."""

    amc_lineage: ExecutionLineage | None = None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return operator_lineage(self.amc_lineage)


__all__ = [
    "SOURCE",
    "AmcLineageMixin",
    "ExecutionLineage",
    "LineageColumn",
    "LineageDataset",
    "columns_of",
    "execution_lineage",
    "operator_lineage",
    "postgres_table_dataset",
    "s3_dataset_name",
]
