"""Deterministic result data, streamed as CSV or Parquet parts with constant memory.

Rows are produced one part at a time from a ``random.Random`` seeded by (result seed, part
index), so every part can be regenerated on its own, byte for byte, at any time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal

OutputFormat = Literal["CSV", "PARQUET"]
Row = tuple[Any, ...]

COLUMNS: Final[dict[str, dict[str, Any]]] = {
    "campaign": {"columnType": "DIMENSION", "dataType": "STRING"},
    "event_date": {"columnType": "DIMENSION", "dataType": "DATE"},
    "impressions": {"columnType": "METRIC", "dataType": "LONG"},
    "spend": {"columnType": "METRIC", "dataType": "DECIMAL", "precision": 38, "scale": 2},
    "last_seen": {"columnType": "DIMENSION", "dataType": "TIMESTAMP"},
}
DEFAULT_COLUMNS: Final = tuple(COLUMNS)
CAMPAIGNS: Final = (
    "Brand Awareness Q1",
    'Spring Sale, "Big" Deals',
    "Prime Day, US",
    'Back "to" School',
    "Retargeting - Cart Abandoners",
    "Holiday Gift Guide",
    "Always-On Search",
)
NULL_PROBABILITY: Final = 0.06
CSV_CHUNK_ROWS: Final = 2000
PARQUET_ROW_GROUP: Final = 16384


def output_columns(columns: Sequence[str]) -> list[dict[str, Any]]:
    """The execution's ``outputColumns`` for the chosen columns (spec + §3.2.2 shape)."""
    return [{"name": name, **COLUMNS[name]} for name in columns]


def result_seed(
    workflow_id: str, window: tuple[datetime, datetime], params: dict[str, Any], seed: int
) -> int:
    """A stable 64-bit seed from everything that defines a result."""
    material = json.dumps(
        [workflow_id, window[0].isoformat(), window[1].isoformat(), params, seed], sort_keys=True, default=str
    )
    return int.from_bytes(hashlib.sha256(material.encode()).digest()[:8], "big")


def default_row_count(seed: int) -> int:
    """Deterministic default row count in 5..50."""
    return 5 + seed % 46


@dataclass(frozen=True)
class ResultSpec:
    """Everything needed to (re)generate the result files of one execution."""

    seed: int
    rows: int
    parts: int
    columns: tuple[str, ...]
    window_start: datetime  # naive UTC
    window_end: datetime  # naive UTC
    output_format: OutputFormat = "CSV"

    @property
    def part_count(self) -> int:
        """An empty result is one header-only file; never more parts than rows."""
        return max(1, min(self.parts, self.rows))

    def part_rows(self) -> list[int]:
        base, rest = divmod(self.rows, self.part_count)
        return [base + (1 if index < rest else 0) for index in range(self.part_count)]

    @property
    def extension(self) -> str:
        return "parquet" if self.output_format == "PARQUET" else "csv"

    def iter_part(self, index: int) -> Iterator[bytes]:
        """Bytes of part ``index`` (0-based), in chunks."""
        if not 0 <= index < self.part_count:
            raise IndexError(f"part {index} out of range 0..{self.part_count - 1}")
        rows = self._rows(index, self.part_rows()[index])
        if self.output_format == "PARQUET":
            return _parquet_chunks(self.columns, rows)
        return _csv_chunks(self.columns, rows)

    def summary(self) -> dict[str, Any]:
        """Expected rows/bytes/parts, computed by generating (never buffering) every part."""
        sizes = [sum(len(chunk) for chunk in self.iter_part(index)) for index in range(self.part_count)]
        return {
            "rows": self.rows,
            "parts": self.part_count,
            "part_rows": self.part_rows(),
            "part_bytes": sizes,
            "bytes": sum(sizes),
            "format": self.output_format,
            "columns": output_columns(self.columns),
        }

    def _rows(self, part: int, count: int) -> Iterator[Row]:
        rng = random.Random(self.seed * 31 + part)
        span = max(1.0, (self.window_end - self.window_start).total_seconds())
        picks = {name: index for index, name in enumerate(DEFAULT_COLUMNS)}
        wanted = [picks[name] for name in self.columns]
        for _ in range(count):
            offset = timedelta(seconds=rng.random() * span)
            seen = (self.window_start + offset).replace(microsecond=rng.randrange(1000) * 1000)
            full: Row = (
                _maybe(rng, rng.choice(CAMPAIGNS)),
                seen.date(),
                _maybe(rng, rng.randrange(0, 5_000_000)),
                _maybe(rng, rng.randrange(0, 10_000_000)),  # cents
                _maybe(rng, seen),
            )
            yield tuple(full[i] for i in wanted)


def _maybe(rng: random.Random, value: Any) -> Any:
    return None if rng.random() < NULL_PROBABILITY else value


def _csv_cell(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if name == "spend":
        return f"{value // 100}.{value % 100:02d}"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _csv_chunks(columns: Sequence[str], rows: Iterator[Row]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    pending = 0
    for row in rows:
        writer.writerow([_csv_cell(value, name) for value, name in zip(row, columns, strict=True)])
        pending += 1
        if pending >= CSV_CHUNK_ROWS:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if buffer.tell():
        yield buffer.getvalue().encode()


class _Drain:
    """A write-only file object that hands written bytes back to the generator."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.closed = False
        self._position = 0

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def _arrow_schema(columns: Sequence[str]) -> Any:
    import pyarrow as pa

    types = {
        "campaign": pa.string(),
        "event_date": pa.date32(),
        "impressions": pa.int64(),
        "spend": pa.decimal128(38, 2),
        "last_seen": pa.timestamp("ms"),
    }
    return pa.schema([(name, types[name]) for name in columns])


def _arrow_value(value: Any, name: str) -> Any:
    if value is not None and name == "spend":
        return Decimal(value).scaleb(-2)
    return value


def _parquet_chunks(columns: Sequence[str], rows: Iterator[Row]) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema(columns)
    sink = _Drain()
    writer = pq.ParquetWriter(sink, schema)
    try:
        batch: list[Row] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= PARQUET_ROW_GROUP:
                writer.write_table(_table(pa, schema, columns, batch))
                batch = []
                yield sink.take()
        if batch:
            writer.write_table(_table(pa, schema, columns, batch))
    finally:
        writer.close()
    yield sink.take()


def _table(pa: Any, schema: Any, columns: Sequence[str], batch: list[Row]) -> Any:
    arrays = [
        pa.array([_arrow_value(row[i], name) for row in batch], type=schema.field(name).type)
        for i, name in enumerate(columns)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)
