"""The Postgres execution table: one row per AMC execution, keyed by ``execution_id``.

The operator writes the row at submission and the sensor updates it on completion. Every write is
an idempotent partial upsert (``INSERT … ON CONFLICT (execution_id) DO UPDATE``) that touches only
the columns it is given. The owner (``dag_id``, ``run_id``, ``task_id``, ``map_index``,
``try_number``) is written once, by the first write that names one, and never reassigned. The
table is created on first use; columns added by later versions are added to an existing table.

The table is written, never read back to build results: XCom comes from the ``Submission`` and
AMC's answer. It is read for two decisions only: which task instance owns an execution (a
lost-submission lookup never adopts another's), and which executions of the same request a load
replaces (``request_key``, ``amc_created_at``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_amc.lifecycle import (
    NORMALISED_STATUSES,
    AmcStatus,
    amc_instant,
    completed_at,
    executed_identity,
    reported_window,
)

if TYPE_CHECKING:
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from psycopg import sql

    from airflow_provider_amc.client import WorkflowExecution

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
    "window_start_utc": "timestamptz",  # the window as AMC ran it (relative windows resolved)
    "window_end_utc": "timestamptz",
    "request_key": "text",  # lifecycle.RequestIdentity.key (NULL until the window is resolved)
    "amc_created_at": "timestamptz",  # AMC's createTime: "newest" means this
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
#: Who submitted the execution: written once, never reassigned.
OWNER_COLUMNS = ("dag_id", "run_id", "task_id", "map_index", "try_number")
#: The owner columns that name a task instance (``try_number`` only says which try submitted).
TASK_INSTANCE_COLUMNS = OWNER_COLUMNS[:4]


class ExecutionOwnedElsewhere(ValueError):
    """The execution is recorded as submitted by another task instance."""

    def __init__(self, execution_id: str, owner: Mapping[str, Any]) -> None:
        super().__init__(
            f"AMC execution {execution_id} belongs to another task instance ({describe_owner(owner)}); "
            "it is not taken over"
        )
        self.execution_id = execution_id
        self.owner = dict(owner)


def amc_fields(
    execution: WorkflowExecution, instance_id: str | None, output_format: str | None
) -> dict[str, Any]:
    """The row fields AMC's answer about ``execution`` gives: status, the window it ran (UTC),
    its creation time, when it finished (AMC's time, so re-measuring never moves it) and the
    request key once the window is resolved. A field AMC did not send is left out, so a write
    never erases what an earlier one knew."""
    start_utc, end_utc = reported_window(execution)
    identity = executed_identity(instance_id or "", execution, output_format)
    fields = {
        "workflow_id": execution.workflow_id,
        "status": AmcStatus.parse(execution.status).normalised,
        "amc_status": execution.status,
        "status_reason": execution.status_reason,
        "window_start_utc": amc_instant(start_utc),
        "window_end_utc": amc_instant(end_utc),
        "amc_created_at": amc_instant(execution.create_time),
        "completed_at": completed_at(execution),
        "request_key": identity.key if identity.resolved and instance_id and output_format else None,
    }
    return {name: value for name, value in fields.items() if value is not None}


def describe_owner(owner: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={owner.get(name)!r}" for name in TASK_INSTANCE_COLUMNS)


def same_task_instance(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    return all(first.get(name) == second.get(name) for name in TASK_INSTANCE_COLUMNS)


#: What a NUL character in AMC's own text (statusReason, column descriptions) is recorded as.
NUL_REPLACEMENT = "\ufffd"


def without_nul(value: Any) -> Any:
    """``value`` with every NUL character (which Postgres text and jsonb refuse) replaced by U+FFFD,
    in strings, keys and nested lists/dicts: AMC's text is recorded, never blocking the sensor."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_REPLACEMENT) if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(item) for item in value]
    return value


def parse_table_name(table: Any) -> tuple[str, ...]:
    """``name`` or ``schema.name`` as its parts; anything else raises ``ValueError`` naming ``table``."""
    parts = tuple(table.split(".")) if isinstance(table, str) else ()
    if not 1 <= len(parts) <= 2 or not all(TABLE_PART_PATTERN.fullmatch(part) for part in parts):
        raise ValueError(f"table {table!r} is not a valid table name: use {TABLE_RULE}")
    return parts


def _request_index_sql(table: sql.Identifier, parts: tuple[str, ...]) -> sql.Composed:
    from psycopg import sql

    index = f"{parts[-1][:40]}_request_key_idx"
    return sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (request_key, amc_created_at)").format(
        sql.Identifier(index), table
    )


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
        """Connections bounded in time (connect, lock and statement timeouts: postgres_bounds)."""
        from airflow_provider_amc.postgres_bounds import RECORD_STATEMENT_TIMEOUT_MS, bounded_hook

        return bounded_hook(self.postgres_conn_id, statement_timeout_ms=RECORD_STATEMENT_TIMEOUT_MS)

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

    def _missing_columns(self) -> list[str]:
        """Columns of :data:`COLUMNS` an existing table lacks (it was created by an older version)."""
        from psycopg import sql

        rows = self._query(
            sql.SQL(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
                "AND NOT attisdropped"
            ),
            (self.quoted_table,),
        )
        present = {row["attname"] for row in rows}
        return [name for name in COLUMNS if name not in present]

    def _add_columns(self, missing: list[str]) -> None:
        from psycopg import sql

        conn = self.hook.get_conn()
        try:
            with conn.cursor() as cur:
                for name in missing:  # kinds are the constants above; none is NOT NULL without default
                    cur.execute(
                        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                            self._identifier, sql.Identifier(name), sql.SQL(COLUMNS[name])
                        )
                    )
                cur.execute(_request_index_sql(self._identifier, self._parts))
            conn.commit()
        finally:
            conn.close()

    def ensure_table(self) -> None:
        """Create the table (and its schema) if it does not exist (idempotent, safe when several
        workers race); add the columns an older version's table lacks. The operator calls it
        before the create call, so a table Postgres would refuse fails the task before AMC runs."""
        if self._ready:
            return
        if self.table_exists():
            missing = self._missing_columns()
            if missing:
                self._add_columns(missing)
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
                if len(self._parts) == 2:
                    cur.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._parts[0]))
                    )
                cur.execute(_create_table_sql(self._identifier))
                cur.execute(_request_index_sql(self._identifier, self._parts))
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
        value = without_nul(value)
        if name in JSON_COLUMNS and value is not None:
            from psycopg.types.json import Jsonb

            return Jsonb(value)
        return value

    def upsert(self, execution_id: str, **fields: Any) -> dict[str, Any]:
        """Insert the row or update only ``fields`` (and ``updated_at``) of the existing one.

        Owner columns are set only while the row has no owner (never reassigned), or when the row
        is of another execution that had the same id (``amc_created_at`` differs: an emulator
        restarted with the same seed) or predates owner tracking (no ``amc_created_at``). Returns
        the row's owner after the write (``dag_id`` … ``try_number``; ``None`` values when unowned).
        """
        if not isinstance(execution_id, str) or not execution_id:
            raise ValueError(f"execution_id must be a non-empty string, got {execution_id!r}")
        self._check_fields(fields)
        self.ensure_table()
        from psycopg import sql

        values = {**fields, "updated_at": datetime.now(UTC)}
        names = ["execution_id", *values]
        unowned = "{table}.dag_id IS NULL"
        if "amc_created_at" in values:
            unowned += (
                " OR {table}.amc_created_at IS NULL OR {table}.amc_created_at <> EXCLUDED.amc_created_at"
            )
        updates = [
            sql.SQL(f"{{name}} = CASE WHEN {unowned} THEN EXCLUDED.{{name}} ELSE {{table}}.{{name}} END")
            if name in OWNER_COLUMNS
            else sql.SQL("{name} = EXCLUDED.{name}")
            for name in values
        ]
        target = sql.Identifier(self._parts[-1])
        query = sql.SQL(
            "INSERT INTO {table} AS {alias} ({names}) VALUES ({placeholders}) "
            "ON CONFLICT (execution_id) DO UPDATE SET {updates} RETURNING {owner}"
        ).format(
            table=self._identifier,
            alias=target,
            names=sql.SQL(", ").join(map(sql.Identifier, names)),
            placeholders=sql.SQL(", ").join(sql.Placeholder() * len(names)),
            updates=sql.SQL(", ").join(
                update.format(name=sql.Identifier(name), table=target)
                for update, name in zip(updates, values, strict=True)
            ),
            owner=sql.SQL(", ").join(map(sql.Identifier, OWNER_COLUMNS)),
        )
        params = (execution_id, *(self._cell(name, value) for name, value in values.items()))
        rows = self._query(query, params)
        return rows[0]

    def claim(self, execution_id: str, owner: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
        """Record ``execution_id`` as submitted by ``owner`` (a task instance), with ``fields``.

        Raises :class:`ExecutionOwnedElsewhere` when another task instance owns it already (a
        later try of the same task instance is the same owner).
        """
        stored = self.upsert(execution_id, **fields, **{name: owner.get(name) for name in OWNER_COLUMNS})
        if not same_task_instance(stored, owner):
            raise ExecutionOwnedElsewhere(execution_id, stored)
        return stored

    def owners(self, created: Mapping[str, datetime | None]) -> dict[str, dict[str, Any]]:
        """The recorded owner of each execution id in ``created`` (id -> AMC's creation time) whose
        row is of that very execution (same ``amc_created_at``) and has an owner."""
        ids = [execution_id for execution_id, when in created.items() if when is not None]
        if not ids or (not self._ready and not self.table_exists()):
            return {}
        self.ensure_table()  # an older version's table gets the columns queried here
        from psycopg import sql

        query = sql.SQL(
            "SELECT execution_id, amc_created_at, {owner} FROM {table} "
            "WHERE execution_id = ANY(%s) AND dag_id IS NOT NULL"
        ).format(owner=sql.SQL(", ").join(map(sql.Identifier, OWNER_COLUMNS)), table=self._identifier)
        found = {}
        for row in self._query(query, (ids,)):
            execution_id, when = row.pop("execution_id"), row.pop("amc_created_at")
            if when is not None and when == created[execution_id]:
                found[execution_id] = row
        return found

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

    def same_request_sql(self) -> sql.Composed:
        """``(execution_id, amc_created_at)`` of the executions recorded with request key ``%s``,
        other than ``%s`` (run inside the caller's transaction: the load's, under its lock)."""
        from psycopg import sql

        return sql.SQL(
            "SELECT execution_id, amc_created_at FROM {} WHERE request_key = %s AND execution_id <> %s"
        ).format(self._identifier)


__all__ = [
    "COLUMNS",
    "DEFAULT_TABLE",
    "OWNER_COLUMNS",
    "STATUSES",
    "ExecutionOwnedElsewhere",
    "ExecutionRecords",
    "amc_fields",
    "parse_table_name",
]
