"""The Postgres execution table: one row per AMC execution, keyed by ``execution_id``.

The operator writes the row at submission and the sensor updates it on completion. Every write is
an idempotent partial upsert (``PostgresHook.insert_rows(..., replace=True,
replace_index=["execution_id"])``) that touches only the columns it is given, so a later update
keeps the submitter's ``dag_id``/``run_id``/``created_at``. The table is created on first use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_amc.lifecycle import NORMALISED_STATUSES

if TYPE_CHECKING:
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from psycopg import sql

DEFAULT_TABLE = "amc_executions"
DEFAULT_POSTGRES_CONN_ID = "postgres_default"
TABLE_PART_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
TABLE_RULE = "'name' or 'schema.name', each part matching ^[a-z_][a-z0-9_]{0,62}$"
STATUSES = NORMALISED_STATUSES

#: Column name -> SQL type, in table order.
COLUMNS: dict[str, str] = {
    "execution_id": "text PRIMARY KEY",
    "instance_id": "text",
    "workflow_id": "text",
    "status": "text",
    "amc_status": "text",
    "status_reason": "text",
    "time_window_start": "text",  # AMC local wall time in time_window_time_zone
    "time_window_end": "text",
    "time_window_time_zone": "text",
    "time_window_type": "text",
    "output_format": "text",
    "parameter_values": "jsonb",
    "output_location": "text",
    "row_count": "bigint",
    "size_bytes": "bigint",
    "output_columns": "jsonb",
    "dag_id": "text",
    "run_id": "text",
    "task_id": "text",
    "map_index": "integer",
    "try_number": "integer",
    "created_at": "timestamptz NOT NULL DEFAULT now()",
    "updated_at": "timestamptz NOT NULL DEFAULT now()",
    "completed_at": "timestamptz",
}
JSON_COLUMNS = frozenset(name for name, kind in COLUMNS.items() if kind == "jsonb")
#: Columns the caller may set; the key is the positional argument, the timestamps are managed here.
WRITABLE_COLUMNS = tuple(name for name in COLUMNS if name not in {"execution_id", "created_at", "updated_at"})


def parse_table_name(table: Any) -> tuple[str, ...]:
    """``name`` or ``schema.name`` as its parts; anything else raises ``ValueError`` naming ``table``."""
    parts = tuple(table.split(".")) if isinstance(table, str) else ()
    if not 1 <= len(parts) <= 2 or not all(TABLE_PART_PATTERN.fullmatch(part) for part in parts):
        raise ValueError(f"table {table!r} is not a valid table name: use {TABLE_RULE}")
    return parts


def _create_table_sql(table: sql.Identifier) -> sql.Composed:
    from psycopg import sql  # imported when used: DAG files importing the operators stay light

    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))  # kinds are constants above
        for name, kind in COLUMNS.items()
    )
    status_check = sql.SQL(", ").join(sql.Literal(status) for status in STATUSES)
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, CHECK (status IN ({})))").format(
        table, columns, status_check
    )


class ExecutionRecords:
    """Read and write the execution table ``table`` through ``postgres_conn_id``.

    The table name is checked here, before any connection is made.
    """

    def __init__(self, postgres_conn_id: str = DEFAULT_POSTGRES_CONN_ID, table: str = DEFAULT_TABLE) -> None:
        self.postgres_conn_id = postgres_conn_id
        self.table = table
        self._parts = parse_table_name(table)
        self._ready = False

    @cached_property
    def _identifier(self) -> sql.Identifier:
        from psycopg import sql

        return sql.Identifier(*self._parts)

    @cached_property
    def hook(self) -> PostgresHook:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id=self.postgres_conn_id)

    @property
    def quoted_table(self) -> str:
        """The table name with each part double-quoted (safe: parts are checked identifiers)."""
        return ".".join(f'"{part}"' for part in self._parts)

    # ---- SQL -------------------------------------------------------------------------------
    def _query(self, query: sql.Composable, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Run one SELECT in its own short transaction; rows as dicts whatever the cursor type."""
        conn = self.hook.get_conn()
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                names = [column[0] for column in cur.description or ()]
                rows = [
                    dict(row) if isinstance(row, Mapping) else dict(zip(names, row, strict=True))
                    for row in cur
                ]
            conn.commit()
            return rows
        finally:
            conn.close()

    def table_exists(self) -> bool:
        """Whether the table exists (needs no privilege beyond connecting)."""
        from psycopg import sql

        rows = self._query(sql.SQL("SELECT to_regclass(%s) IS NOT NULL AS present"), (self.quoted_table,))
        return bool(rows[0]["present"])

    def ensure_table(self) -> None:
        """Create the table if it does not exist (idempotent, safe when several workers race)."""
        if self._ready or self.table_exists():
            self._ready = True
            return
        from psycopg import sql

        # CREATE TABLE IF NOT EXISTS alone can fail with a unique violation when two sessions
        # race; a transaction-scoped advisory lock on the table name serialises the creators.
        lock = sql.SQL("SELECT pg_advisory_xact_lock(hashtext(%s));")
        conn = self.hook.get_conn()
        try:
            with conn.cursor() as cur:
                cur.execute(lock, (f"airflow_provider_amc:{self.quoted_table}",))
                cur.execute(_create_table_sql(self._identifier))
            conn.commit()
        finally:
            conn.close()
        self._ready = True

    # ---- writes ---------------------------------------------------------------------------
    @staticmethod
    def _check_fields(fields: dict[str, Any]) -> None:
        unknown = sorted(set(fields) - set(WRITABLE_COLUMNS))
        if unknown:
            raise ValueError(
                f"unknown execution record field(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(WRITABLE_COLUMNS)}"
            )
        status = fields.get("status")
        if status is not None and status not in STATUSES:
            raise ValueError(f"status {status!r} is not a normalised status; allowed: {', '.join(STATUSES)}")

    @staticmethod
    def _cell(name: str, value: Any) -> Any:
        if name in JSON_COLUMNS and value is not None:
            from psycopg.types.json import Jsonb

            return Jsonb(value)
        return value

    def upsert(self, execution_id: str, **fields: Any) -> None:
        """Insert the row or update only ``fields`` (and ``updated_at``) of the existing one."""
        if not isinstance(execution_id, str) or not execution_id:
            raise ValueError(f"execution_id must be a non-empty string, got {execution_id!r}")
        self._check_fields(fields)
        self.ensure_table()
        values = {**fields, "updated_at": datetime.now(UTC)}
        self.hook.insert_rows(  # type: ignore[no-untyped-call]
            self.quoted_table,
            [(execution_id, *(self._cell(name, value) for name, value in values.items()))],
            target_fields=["execution_id", *values],
            replace=True,
            replace_index=["execution_id"],
        )

    # ---- reads ----------------------------------------------------------------------------
    def get(self, execution_id: str) -> dict[str, Any] | None:
        """The row of ``execution_id`` as a dict, or ``None``.

        JSON columns come back decoded (the driver parses ``jsonb``); timestamps are aware datetimes.
        """
        if not self._ready and not self.table_exists():
            return None
        from psycopg import sql

        query = sql.SQL("SELECT * FROM {} WHERE execution_id = %s").format(self._identifier)
        rows = self._query(query, (execution_id,))
        return rows[0] if rows else None

    def same_window(self, execution_id: str) -> list[str]:
        """Other executions recorded for the same instance, workflow and window (zone included).

        Used to replace an earlier run's rows when a day is re-run. Empty when the table or the
        execution's row does not exist, or the window is relative (no bounds).
        """
        if not self._ready and not self.table_exists():
            return []
        from psycopg import sql

        keys = ("instance_id", "workflow_id", "time_window_start", "time_window_end", "time_window_time_zone")
        query = sql.SQL(
            "SELECT other.execution_id FROM {table} AS other JOIN {table} AS this ON {same} "
            "WHERE this.execution_id = %s AND other.execution_id <> this.execution_id "
            "AND this.time_window_start IS NOT NULL ORDER BY other.created_at"
        ).format(
            table=self._identifier,
            same=sql.SQL(" AND ").join(
                sql.SQL("other.{key} = this.{key}").format(key=sql.Identifier(key)) for key in keys
            ),
        )
        return [row["execution_id"] for row in self._query(query, (execution_id,))]


__all__ = ["COLUMNS", "DEFAULT_TABLE", "STATUSES", "ExecutionRecords", "parse_table_name"]
