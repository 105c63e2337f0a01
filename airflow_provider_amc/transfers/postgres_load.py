"""Load AMC result files into a Postgres table with ``COPY``, idempotently per execution.

One transaction per load: create the table if missing, take a per-(table, execution) advisory
lock, delete that execution's rows, then ``COPY`` every part. Reloading an execution therefore
replaces its rows, and a failed load leaves the table as it was.

Every row gets the execution id in the ``amc_execution_id`` column without touching the data:
the column's default is ``current_setting('airflow_provider_amc.execution_id')``, set with
``set_config(..., is_local => true)`` for the load's transaction only. So CSV parts stream
byte for byte into ``COPY ... FROM STDIN (FORMAT csv, HEADER true)``; each part's own header line
names the columns it holds (the column list of its ``COPY``). Parquet parts are spooled to a
temporary file, read one record batch at a time with pyarrow and written to ``COPY`` as CSV.
Memory stays constant whatever the result size; gzip parts (``1f 8b``) are inflated on the fly.
"""

from __future__ import annotations

import csv
import io
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from psycopg import sql

from airflow_provider_amc.transfers.postgres_types import EXECUTION_ID_COLUMN, TableColumn

if TYPE_CHECKING:
    from psycopg import Connection, Cursor

#: The transaction-local setting that the ``amc_execution_id`` column defaults to.
EXECUTION_ID_SETTING: Final = "airflow_provider_amc.execution_id"
EXECUTION_ID_DEFAULT: Final = sql.SQL("current_setting({})").format(sql.Literal(EXECUTION_ID_SETTING))
GZIP_MAGIC: Final = b"\x1f\x8b"
PARQUET_MAGIC: Final = b"PAR1"
MAX_HEADER_BYTES: Final = 1 << 20
PARQUET_BATCH_ROWS: Final = 65536
_SPOOL_CHUNK: Final = 1 << 20


class ResultLoadError(ValueError):
    """A result file does not fit the table (unknown column, unreadable file)."""


# ---- byte streams -------------------------------------------------------------------------------
def peek(chunks: Iterable[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """The first ``size`` bytes (fewer if the stream is shorter) and an iterator over all bytes."""
    iterator = iter(chunks)
    head = b""
    for chunk in iterator:
        head += chunk
        if len(head) >= size:
            break

    def everything() -> Iterator[bytes]:
        if head:
            yield head
        yield from iterator

    return head[:size], everything()


def gunzip(chunks: Iterable[bytes], name: str) -> Iterator[bytes]:
    """Inflate a (multi-member) gzip stream chunk by chunk."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        for chunk in chunks:
            data = chunk
            while data:
                out = inflater.decompress(data, _SPOOL_CHUNK)
                if out:
                    yield out
                data = inflater.unconsumed_tail
                if inflater.eof and not data and inflater.unused_data:
                    data = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        tail = inflater.flush()
    except zlib.error as exc:
        raise ResultLoadError(f"result file {name!r} is not valid gzip: {exc}") from exc
    if tail:
        yield tail


def read_header(chunks: Iterable[bytes], name: str) -> tuple[list[str] | None, Iterator[bytes]]:
    """The CSV header's column names (``None`` for an empty file) and an iterator over all bytes."""
    iterator = iter(chunks)
    buffered = b""
    for chunk in iterator:
        buffered += chunk
        if b"\n" in buffered or len(buffered) > MAX_HEADER_BYTES:
            break
    line = buffered.split(b"\n", 1)[0]
    if len(line) > MAX_HEADER_BYTES:
        raise ResultLoadError(
            f"result file {name!r}: no CSV header line in its first {MAX_HEADER_BYTES} bytes"
        )

    def everything() -> Iterator[bytes]:
        if buffered:
            yield buffered
        yield from iterator

    if not line.strip():
        return None, everything()
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise ResultLoadError(f"result file {name!r}: the CSV header is not UTF-8 ({exc})") from exc
    return next(csv.reader([text])), everything()


# ---- the table ----------------------------------------------------------------------------------
def _qualified(table: Sequence[str]) -> sql.Identifier:
    return sql.Identifier(*table)


def _lock(cur: Cursor[Any], key: str) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))


def _existing_columns(cur: Cursor[Any], regclass: str) -> dict[str, str | None] | None:
    """Column name -> default expression of an existing table, or ``None`` if it does not exist."""
    cur.execute("SELECT to_regclass(%s)::oid", (regclass,))
    row = cur.fetchone()
    if row is None or row[0] is None:
        return None
    cur.execute(
        "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped",
        (row[0],),
    )
    return {str(name): default for name, default in cur.fetchall()}


def create_table_sql(table: Sequence[str], columns: Sequence[TableColumn]) -> sql.Composed:
    """``CREATE TABLE`` with ``amc_execution_id`` first, then the data columns (types are constants)."""
    definitions = [
        sql.SQL("{} text NOT NULL DEFAULT {}").format(
            sql.Identifier(EXECUTION_ID_COLUMN), EXECUTION_ID_DEFAULT
        ),
        *(sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns),
    ]
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
        _qualified(table), sql.SQL(", ").join(definitions)
    )


def ensure_table(cur: Cursor[Any], table: Sequence[str], columns: Sequence[TableColumn]) -> None:
    """Create the table (and an index on ``amc_execution_id``) if missing; check an existing one."""
    regclass = _qualified(table).as_string(cur)
    existing = _existing_columns(cur, regclass)
    if existing is None:
        _lock(cur, f"airflow_provider_amc:create:{regclass}")
        existing = _existing_columns(cur, regclass)  # another load may have created it meanwhile
    if existing is None:
        cur.execute(create_table_sql(table, columns))
        cur.execute(
            sql.SQL("CREATE INDEX ON {} ({})").format(_qualified(table), sql.Identifier(EXECUTION_ID_COLUMN))
        )
        return
    missing = [c.name for c in columns if c.name not in existing]
    if EXECUTION_ID_COLUMN not in existing:
        missing.insert(0, EXECUTION_ID_COLUMN)
    if missing:
        raise ResultLoadError(
            f"table {'.'.join(table)} exists but lacks column(s) {', '.join(map(repr, missing))}: "
            "drop it or add them"
        )
    if EXECUTION_ID_SETTING not in (existing[EXECUTION_ID_COLUMN] or ""):
        cur.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
                _qualified(table), sql.Identifier(EXECUTION_ID_COLUMN), EXECUTION_ID_DEFAULT
            )
        )


# ---- COPY -----------------------------------------------------------------------------------------
def _checked_columns(names: Sequence[str], known: set[str], part: str) -> list[str]:
    unknown = [name for name in names if name not in known]
    if unknown or len(set(names)) != len(names):
        raise ResultLoadError(
            f"result file {part!r} has columns {list(names)}; expected distinct names from the "
            f"execution's outputColumns {sorted(known)}"
        )
    return list(names)


def _copy_sql(table: Sequence[str], names: Sequence[str], header: bool) -> sql.Composed:
    options = "FORMAT csv, HEADER true" if header else "FORMAT csv"
    return sql.SQL("COPY {} ({}) FROM STDIN WITH ({})").format(
        _qualified(table), sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(options)
    )


def copy_csv(
    cur: Cursor[Any], table: Sequence[str], known: set[str], name: str, chunks: Iterable[bytes]
) -> int:
    """Stream one CSV part (its own header names its columns) into ``COPY``; returns the rows copied."""
    header, data = read_header(chunks, name)
    if header is None:
        return 0
    columns = _checked_columns(header, known, name)
    with cur.copy(_copy_sql(table, columns, header=True)) as copy:
        for chunk in data:
            copy.write(chunk)
    return max(cur.rowcount, 0)


def copy_parquet(
    cur: Cursor[Any], table: Sequence[str], known: set[str], name: str, chunks: Iterable[bytes]
) -> int:
    """Spool one Parquet part to disk, then ``COPY`` it record batch by record batch."""
    try:
        import pyarrow.csv as pa_csv
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(
            f"result file {name!r} is Parquet, which needs pyarrow: "
            "pip install 'airflow-provider-amc[parquet]'"
        ) from exc
    with tempfile.TemporaryFile() as spool:
        for chunk in chunks:
            spool.write(chunk)
        spool.seek(0)
        try:
            parquet = pq.ParquetFile(spool)
        except Exception as exc:  # ArrowInvalid / OSError for a bad footer
            raise ResultLoadError(
                f"result file {name!r} starts like Parquet but cannot be read: {exc}"
            ) from exc
        columns = _checked_columns(parquet.schema_arrow.names, known, name)
        options = pa_csv.WriteOptions(include_header=False)
        with cur.copy(_copy_sql(table, columns, header=False)) as copy:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                buffer = io.BytesIO()
                pa_csv.write_csv(batch, buffer, write_options=options)
                copy.write(buffer.getbuffer())
    return max(cur.rowcount, 0)


def copy_part(
    cur: Cursor[Any], table: Sequence[str], known: set[str], name: str, chunks: Iterable[bytes]
) -> int:
    """``COPY`` one result part, picking the reader by magic bytes (gzip, Parquet, else CSV)."""
    head, data = peek(chunks, len(PARQUET_MAGIC))
    if head.startswith(GZIP_MAGIC):
        head, data = peek(gunzip(data, name), len(PARQUET_MAGIC))
    if head.startswith(PARQUET_MAGIC):
        return copy_parquet(cur, table, known, name, data)
    return copy_csv(cur, table, known, name, data)


def load_execution(
    conn: Connection[Any],
    table: Sequence[str],
    columns: Sequence[TableColumn],
    execution_id: str,
    parts: Iterable[tuple[str, Iterable[bytes]]],
    replaces: Sequence[str] | Callable[[Cursor[Any]], Sequence[str]] = (),
    lock_key: str | None = None,
) -> int:
    """Replace ``execution_id``'s rows in ``table`` by the rows of ``parts``, in one transaction.

    Loads with the same ``lock_key`` (the request key: every execution of one request) serialise
    on a transaction-scoped advisory lock; without one, loads of the same execution do. Rows of
    the executions in ``replaces`` (older executions of the same request) are deleted in the same
    transaction; a callable is asked under the lock, with the load's cursor, and may raise to
    refuse the load. Returns the number of rows loaded. ``conn`` must be idle.
    """
    conn.autocommit = True  # explicit transaction below, committed or rolled back as one
    known = {column.name for column in columns}
    with conn.transaction(), conn.cursor() as cur:
        ensure_table(cur, table, columns)
        regclass = _qualified(table).as_string(cur)
        _lock(cur, f"airflow_provider_amc:load:{regclass}:{lock_key or execution_id}")
        older = replaces(cur) if callable(replaces) else replaces
        cur.execute("SELECT set_config(%s, %s, true)", (EXECUTION_ID_SETTING, execution_id))
        cur.execute(
            sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
                _qualified(table), sql.Identifier(EXECUTION_ID_COLUMN)
            ),
            ([execution_id, *older],),
        )
        return sum(copy_part(cur, table, known, name, chunks) for name, chunks in parts)


__all__ = [
    "EXECUTION_ID_SETTING",
    "ResultLoadError",
    "copy_part",
    "create_table_sql",
    "ensure_table",
    "load_execution",
    "read_header",
]
