"""Load AMC result files into a Postgres table with ``COPY``: exactly the records, or nothing.

One transaction per load: create the table if missing (or check its columns against the
execution's ``outputColumns``: see :func:`ensure_table`), take a per-(table, execution) advisory
lock, delete that execution's rows (and those of the executions it replaces) of its AMC instance,
then ``COPY`` every part. Any error rolls the whole transaction back: the table keeps its previous rows.

Every part is decoded by :mod:`airflow_provider_amc.result_reader` (the reader the sensor counts
with): CSV is parsed into text columns (unquoted empty = NULL, quoted empty = empty string) and
re-written for ``COPY ... (FORMAT csv)`` with every non-NULL value quoted, so no value can be
mistaken for framing (``\\.``, a BOM, a blank line, embedded quotes, CR or newlines). Raw bytes are
never forwarded. Each part is verified: records parsed == records counted by the fast counter ==
rows ``COPY`` reports (== the row count saved in the manifest, when loading saved files).

Every row gets the execution id in the ``amc_execution_id`` column and the AMC instance in the
``amc_instance_id`` column without touching the data: each column's default is
``current_setting('airflow_provider_amc.execution_id')`` (``….instance_id``), set with
``set_config(..., is_local => true)`` for the load's transaction only. Deletes are scoped to the
load's instance: AMC addresses an execution by (instance, execution id), so two instances' rows
never replace each other. Rows of a table migrated from a version without ``amc_instance_id``
have no instance (NULL): they are matched by execution id alone, as they were when loaded. A
table created by the load is filled with ``COPY ... FREEZE`` and indexed after the copy.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from airflow_provider_amc.result_reader import CsvDialect, ResultReadError, read_part
from airflow_provider_amc.transfers.postgres_types import (
    EXECUTION_ID_COLUMN,
    INSTANCE_ID_COLUMN,
    PROVIDER_COLUMNS,
    TableColumn,
    holds,
)

if TYPE_CHECKING:
    from psycopg import Connection, Cursor

log = logging.getLogger(__name__)

#: The transaction-local settings that the provider's columns default to.
EXECUTION_ID_SETTING: Final = "airflow_provider_amc.execution_id"
INSTANCE_ID_SETTING: Final = "airflow_provider_amc.instance_id"
COLUMN_SETTINGS: Final = {EXECUTION_ID_COLUMN: EXECUTION_ID_SETTING, INSTANCE_ID_COLUMN: INSTANCE_ID_SETTING}
ON_SCHEMA_CHANGE: Final = ("fail", "migrate")


class ResultLoadError(ValueError):
    """A result cannot be loaded exactly (unknown column, schema drift, counts that disagree)."""


# ---- the table ----------------------------------------------------------------------------------
def _qualified(table: Sequence[str]) -> sql.Identifier:
    return sql.Identifier(*table)


def instance_rows_sql() -> sql.Composed:
    """``WHERE`` condition: the rows of instance ``%s`` (and rows loaded before the instance column
    existed, which have none: they were loaded by execution id alone)."""
    column = sql.Identifier(INSTANCE_ID_COLUMN)
    return sql.SQL("({column} = %s OR {column} IS NULL)").format(column=column)


def _lock(cur: Cursor[Any], key: str) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))


def _created_in_this_transaction(cur: Cursor[Any], regclass: str) -> bool:
    """Whether the table's catalog row was written by this transaction (CREATE really created it)."""
    cur.execute(
        "SELECT xmin = xid(pg_current_xact_id()) FROM pg_class WHERE oid = to_regclass(%s)", (regclass,)
    )
    row = cur.fetchone()
    return bool(row and row[0])


def _existing_columns(cur: Cursor[Any], regclass: str) -> dict[str, tuple[str, str | None]] | None:
    """Column name -> (type, default expression) of an existing table, or ``None`` if it does not exist."""
    cur.execute("SELECT to_regclass(%s)::oid", (regclass,))
    row = cur.fetchone()
    if row is None or row[0] is None:
        return None
    cur.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid) "
        "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (row[0],),
    )
    return {str(name): (str(kind), default) for name, kind, default in cur.fetchall()}


def _setting_default(column: str) -> sql.Composed:
    """A provider column's default: its transaction-local setting."""
    return sql.SQL("current_setting({})").format(sql.Literal(COLUMN_SETTINGS[column]))


def create_table_sql(table: Sequence[str], columns: Sequence[TableColumn]) -> sql.Composed:
    """``CREATE TABLE`` with ``amc_execution_id`` and ``amc_instance_id`` first, then the data
    columns (types are constants)."""
    definitions = [
        *(
            sql.SQL("{} text NOT NULL DEFAULT {}").format(sql.Identifier(name), _setting_default(name))
            for name in PROVIDER_COLUMNS
        ),
        *(sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns),
    ]
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
        _qualified(table), sql.SQL(", ").join(definitions)
    )


def _index_sql(table: Sequence[str]) -> sql.Composed:
    return sql.SQL("CREATE INDEX ON {} ({}, {})").format(
        _qualified(table), sql.Identifier(EXECUTION_ID_COLUMN), sql.Identifier(INSTANCE_ID_COLUMN)
    )


def schema_changes(
    existing: Mapping[str, tuple[str, str | None]], columns: Sequence[TableColumn]
) -> tuple[list[str], list[sql.Composable], list[str]]:
    """Compare a table with the execution's columns: ``(lossless widenings as log lines, their
    ALTERs, changes that need opting in)``; the changes' ALTERs are :func:`migration_sql`'s."""
    logged: list[str] = []
    widen: list[sql.Composable] = []
    refused: list[str] = []
    declared = {column.name: column for column in columns}
    for column in columns:
        if column.name not in existing:
            refused.append(f"{column.name!r} is new in the execution ({column.pg_type}), not in the table")
            continue
        current = existing[column.name][0]
        if holds(current, column.pg_type):
            continue
        if holds(column.pg_type, current):
            logged.append(f"column {column.name!r} widened from {current} to {column.pg_type} (lossless)")
            widen.append(_alter_type_sql(column))
        else:
            refused.append(
                f"{column.name!r} is {current} in the table but {column.pg_type} in the execution "
                "(loading would lose precision or data)"
            )
    for name, (kind, _) in existing.items():
        if name not in PROVIDER_COLUMNS and name not in declared:
            refused.append(f"{name!r} ({kind}) is in the table but not in the execution's outputColumns")
    return logged, widen, refused


def _alter_type_sql(column: TableColumn) -> sql.Composable:
    return sql.SQL("ALTER COLUMN {name} TYPE {kind} USING {name}::{kind}").format(
        name=sql.Identifier(column.name), kind=sql.SQL(column.pg_type)
    )


def migration_sql(
    existing: Mapping[str, tuple[str, str | None]], columns: Sequence[TableColumn]
) -> list[sql.Composable]:
    """ALTERs that make the table take the execution's columns: new columns added, changed types
    converted (a column the execution no longer has is kept; its new rows are NULL)."""
    actions: list[sql.Composable] = []
    for column in columns:
        if column.name not in existing:
            actions.append(
                sql.SQL("ADD COLUMN {} {}").format(sql.Identifier(column.name), sql.SQL(column.pg_type))
            )
        elif not holds(existing[column.name][0], column.pg_type):
            actions.append(_alter_type_sql(column))
    return actions


def ensure_table(
    cur: Cursor[Any], table: Sequence[str], columns: Sequence[TableColumn], on_schema_change: str = "fail"
) -> bool:
    """Create the table if missing (returns ``True``: index it after the load), else check it.

    An existing table must hold the execution's columns exactly: a type that stores every declared
    value is fine; one the declared type holds losslessly is widened (logged); anything else (a
    narrower numeric, a timestamp into a date, a column added or dropped) fails naming the columns,
    unless ``on_schema_change="migrate"``, which alters the table.
    """
    if on_schema_change not in ON_SCHEMA_CHANGE:
        raise ResultLoadError(
            f"on_schema_change {on_schema_change!r} is not supported: allowed values are "
            f"{', '.join(ON_SCHEMA_CHANGE)}"
        )
    regclass = _qualified(table).as_string(cur)
    existing = _existing_columns(cur, regclass)
    if existing is None:
        _lock(cur, f"airflow_provider_amc:create:{regclass}")
        existing = _existing_columns(cur, regclass)  # another load may have created it meanwhile
    if existing is None:
        cur.execute(create_table_sql(table, columns))
        if _created_in_this_transaction(cur, regclass):
            return True
        # Another load created it first: this session's catalog view was stale (a cached "no such
        # relation"), and CREATE ... IF NOT EXISTS skipped. Check it like any existing table (and
        # never COPY FREEZE into it: only a table created in this transaction may be frozen).
        existing = _existing_columns(cur, regclass)
        if existing is None:
            raise ResultLoadError(f"table {'.'.join(table)} could neither be created nor found")
    name = ".".join(table)
    if EXECUTION_ID_COLUMN not in existing:
        raise ResultLoadError(
            f"table {name} exists but lacks column {EXECUTION_ID_COLUMN!r}: drop it or add it"
        )
    logged, widen, refused = schema_changes(existing, columns)
    if INSTANCE_ID_COLUMN not in existing:  # a table loaded by a version without the column
        refused.append(
            f"{INSTANCE_ID_COLUMN!r} (the AMC instance of each row) is not in the table; migrating "
            "adds it, NULL for the rows already there"
        )
    actions: list[sql.Composable] = list(widen)
    if refused:
        if on_schema_change != "migrate":
            raise ResultLoadError(
                f"table {name} does not match the execution's outputColumns: {'; '.join(refused)}. "
                'Pass on_schema_change="migrate" to alter the table, or load into another table'
            )
        actions = migration_sql(existing, columns)
        logged = [f"migrating table {name}: {'; '.join(refused)}"]
    for column in PROVIDER_COLUMNS:
        if column not in existing:  # no default in ADD COLUMN: the rows already there stay NULL
            actions.append(sql.SQL("ADD COLUMN {} text").format(sql.Identifier(column)))
        if COLUMN_SETTINGS[column] not in (existing.get(column, ("", None))[1] or ""):
            actions.append(
                sql.SQL("ALTER COLUMN {} SET DEFAULT {}").format(
                    sql.Identifier(column), _setting_default(column)
                )
            )
    for line in logged:
        log.info("Table %s: %s", name, line)
    if actions:
        cur.execute(sql.SQL("ALTER TABLE {} {}").format(_qualified(table), sql.SQL(", ").join(actions)))
    return False


# ---- COPY -----------------------------------------------------------------------------------------
def _checked_columns(names: Sequence[str], declared: Sequence[str], part: str) -> list[str]:
    if sorted(names) != sorted(declared):
        missing = [name for name in declared if name not in names]
        unknown = [name for name in names if name not in declared]
        raise ResultLoadError(
            f"result file {part!r} has columns {list(names)}; the execution's outputColumns are "
            f"{list(declared)} (missing: {missing}, unknown or repeated: {unknown or 'repeated names'})"
        )
    return list(names)


def _copy_sql(table: Sequence[str], names: Sequence[str], freeze: bool) -> sql.Composed:
    options = "FORMAT csv, FREEZE true" if freeze else "FORMAT csv"
    return sql.SQL("COPY {} ({}) FROM STDIN WITH ({})").format(
        _qualified(table), sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(options)
    )


def copy_part(
    cur: Cursor[Any],
    table: Sequence[str],
    declared: Sequence[str],
    name: str,
    chunks: Iterable[bytes],
    *,
    dialect: CsvDialect | None = None,
    freeze: bool = False,
    expected_rows: int | None = None,
) -> int:
    """``COPY`` one result part; returns its rows after checking parser, counter, COPY (and
    ``expected_rows``) agree."""
    import pyarrow.csv as pa_csv

    options = pa_csv.WriteOptions(include_header=False, quoting_style="all_valid")
    with read_part(name, chunks, dialect, declared) as part:
        if part.columns is None:  # an empty file: no header, no records
            copied = 0
        else:
            columns = _checked_columns(part.columns, declared, name)
            # QueuedLibpqWriter sends from a thread: parsing the next batch overlaps with the network.
            with cur.copy(_copy_sql(table, columns, freeze), writer=QueuedLibpqWriter(cur)) as copy:
                for batch in part.batches:
                    buffer = io.BytesIO()
                    pa_csv.write_csv(batch, buffer, write_options=options)
                    copy.write(buffer.getbuffer())
            copied = max(cur.rowcount, 0)
        if copied != part.rows:
            raise ResultLoadError(
                f"result file {name!r}: COPY wrote {copied} rows, the file holds {part.rows}"
            )
        if expected_rows is not None and expected_rows != part.rows:
            raise ResultLoadError(
                f"result file {name!r}: holds {part.rows} rows, its recorded row count is {expected_rows}"
            )
    return part.rows


def load_execution(
    conn: Connection[Any],
    table: Sequence[str],
    columns: Sequence[TableColumn],
    execution_id: str,
    parts: Iterable[tuple[str, Iterable[bytes]]],
    replaces: Sequence[str] | Callable[[Cursor[Any]], Sequence[str]] = (),
    lock_key: str | None = None,
    *,
    instance_id: str,
    dialect: CsvDialect | None = None,
    expected_rows: Mapping[str, int] | None = None,
    expected_total: int | None = None,
    on_schema_change: str = "fail",
) -> int:
    """Replace the rows of ``execution_id`` in AMC instance ``instance_id`` in ``table`` by the
    rows of ``parts``, in one transaction.

    Loads with the same ``lock_key`` (the request key: every execution of one request) serialise
    on a transaction-scoped advisory lock; without one, loads of the same execution do. Rows of
    the executions in ``replaces`` (older executions of the same request, so of the same
    instance) are deleted in the same transaction; a callable is asked under the lock, with the
    load's cursor, and may raise to refuse the load. Every delete is scoped to ``instance_id``
    (rows without an instance, from before the column existed, match by execution id alone).
    ``expected_rows`` (file name -> rows) and ``expected_total`` are what was recorded when the
    result was measured; any disagreement fails the load and commits nothing.
    Returns the number of rows loaded. ``conn`` must be idle.
    """
    conn.autocommit = True  # explicit transaction below, committed or rolled back as one
    declared = [column.name for column in columns]
    with conn.transaction(), conn.cursor() as cur:
        created = ensure_table(cur, table, columns, on_schema_change)
        regclass = _qualified(table).as_string(cur)
        own = f"{instance_id}:{execution_id}"
        _lock(cur, f"airflow_provider_amc:load:{regclass}:{lock_key or own}")
        older = replaces(cur) if callable(replaces) else replaces
        cur.execute(
            "SELECT set_config(%s, %s, true), set_config(%s, %s, true)",
            (EXECUTION_ID_SETTING, execution_id, INSTANCE_ID_SETTING, instance_id),
        )
        if not created:
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE {} = ANY(%s) AND {}").format(
                    _qualified(table), sql.Identifier(EXECUTION_ID_COLUMN), instance_rows_sql()
                ),
                ([execution_id, *older], instance_id),
            )
        total = 0
        for name, chunks in parts:
            expected = None if expected_rows is None else expected_rows.get(name)
            try:
                total += copy_part(
                    cur,
                    table,
                    declared,
                    name,
                    chunks,
                    dialect=dialect,
                    freeze=created,
                    expected_rows=expected,
                )
            except ResultReadError as exc:
                raise ResultLoadError(str(exc)) from exc
        if expected_total is not None and total != expected_total:
            raise ResultLoadError(
                f"the files hold {total} rows but {expected_total} were recorded for execution "
                f"{execution_id}: nothing loaded"
            )
        if created:
            cur.execute(_index_sql(table))
        return total


__all__ = [
    "EXECUTION_ID_SETTING",
    "INSTANCE_ID_SETTING",
    "ON_SCHEMA_CHANGE",
    "ResultLoadError",
    "copy_part",
    "create_table_sql",
    "ensure_table",
    "instance_rows_sql",
    "load_execution",
    "migration_sql",
    "schema_changes",
]
