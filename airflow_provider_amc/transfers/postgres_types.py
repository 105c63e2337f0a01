"""AMC ``outputColumns`` -> Postgres column definitions (pure; no database access).

DECIMAL keeps its precision and scale (``numeric(p,s)``: exact, never float); unknown or
structured types (arrays, intervals, binary) land as ``text``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from airflow_provider_amc.client import OutputColumn

#: The column added to every loaded table: the execution the row came from.
EXECUTION_ID_COLUMN: Final = "amc_execution_id"
#: The column added to every loaded table: the AMC instance that ran that execution.
INSTANCE_ID_COLUMN: Final = "amc_instance_id"
#: The provider's own columns, first in every loaded table; no output column may take their names.
PROVIDER_COLUMNS: Final = (EXECUTION_ID_COLUMN, INSTANCE_ID_COLUMN)
#: Postgres truncates longer identifiers silently, which could merge two columns.
MAX_IDENTIFIER_BYTES: Final = 63
#: Postgres ``numeric`` limits for a declared precision and scale.
MAX_NUMERIC_PRECISION: Final = 1000

SIMPLE_TYPES: Final[Mapping[str, str]] = {
    "LONG": "bigint",
    "INTEGER": "integer",
    "SHORT": "smallint",
    "BYTE": "smallint",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean",
    "STRING": "text",
}


@dataclass(frozen=True)
class TableColumn:
    """One column of the target table: its name and Postgres type (a constant of this module)."""

    name: str
    pg_type: str


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def postgres_type(column: OutputColumn) -> str:
    """The Postgres type of one AMC output column."""
    data_type = column.data_type
    name = data_type.strip().upper() if isinstance(data_type, str) else None
    if name == "DECIMAL":
        precision = _int_or_none(column.data_type_precision)
        precision = precision if precision is not None else _int_or_none(column.precision)
        scale = _int_or_none(column.data_type_scale)
        scale = scale if scale is not None else _int_or_none(column.scale)
        if precision is None or not 1 <= precision <= MAX_NUMERIC_PRECISION:
            return "numeric"
        if scale is None or not 0 <= scale <= precision:
            return f"numeric({precision})" if scale is None else "numeric"
        return f"numeric({precision},{scale})"
    return SIMPLE_TYPES.get(name or "", "text")


def _checked_name(index: int, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"outputColumns[{index}].name must be a non-empty string, got {name!r}")
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise ValueError(
            f"outputColumns[{index}].name {name!r} is longer than Postgres' {MAX_IDENTIFIER_BYTES}-byte "
            "identifier limit"
        )
    if name in PROVIDER_COLUMNS:
        raise ValueError(
            f"outputColumns[{index}].name {name!r} is reserved (the provider's columns are "
            f"{', '.join(PROVIDER_COLUMNS)})"
        )
    return name


def table_columns(output_columns: Iterable[OutputColumn | Mapping[str, Any]]) -> list[TableColumn]:
    """The data columns of the target table, in the execution's ``outputColumns`` order."""
    columns: list[TableColumn] = []
    seen: set[str] = set()
    for index, raw in enumerate(output_columns):
        column = raw if isinstance(raw, OutputColumn) else OutputColumn.model_validate(raw)
        name = _checked_name(index, column.name)
        if name in seen:
            raise ValueError(f"outputColumns[{index}].name {name!r} appears twice")
        seen.add(name)
        columns.append(TableColumn(name, postgres_type(column)))
    if not columns:
        raise ValueError("the execution has no outputColumns: cannot derive the table's columns")
    return columns


# ---- comparing types (schema drift) -------------------------------------------------------------------
#: Decimal digits every value of an integer type fits in.
_INTEGER_DIGITS: Final[Mapping[str, int]] = {"smallint": 5, "integer": 10, "bigint": 19}
#: Types each type holds exactly, besides itself (numeric and text handled in :func:`holds`).
_ALSO_HOLDS: Final[Mapping[str, frozenset[str]]] = {
    "double precision": frozenset({"real", "smallint", "integer"}),
    "real": frozenset({"smallint"}),
    "timestamp": frozenset({"date"}),
}
_NUMERIC = re.compile(r"numeric(?:\((\d+)(?:,\s*(\d+))?\))?")
_ALIASES: Final[Mapping[str, str]] = {
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
}


def normalise_type(pg_type: str) -> str:
    """A Postgres type as ``format_type`` prints it, in this module's spelling."""
    text = " ".join(pg_type.strip().lower().split())
    return _ALIASES.get(text, text)


def _numeric(pg_type: str) -> tuple[int | None, int] | None:
    """``(precision or None for unconstrained, scale)`` of a numeric type, else ``None``."""
    match = _NUMERIC.fullmatch(pg_type)
    if match is None:
        return None
    precision, scale = match.groups()
    return (int(precision) if precision else None, int(scale) if scale else 0)


def holds(container: str, value: str) -> bool:
    """Whether every value of type ``value`` is stored exactly by a column of type ``container``."""
    container, value = normalise_type(container), normalise_type(value)
    if container == value or container == "text" or value in _ALSO_HOLDS.get(container, ()):
        return True
    if container in _INTEGER_DIGITS and value in _INTEGER_DIGITS:
        return _INTEGER_DIGITS[container] >= _INTEGER_DIGITS[value]
    outer = _numeric(container)
    if outer is None:
        return False
    precision, scale = outer
    if value in _INTEGER_DIGITS:
        return precision is None or precision - scale >= _INTEGER_DIGITS[value]
    inner = _numeric(value)
    if inner is None:
        return False
    if precision is None:
        return True
    if inner[0] is None:
        return False
    return scale >= inner[1] and precision - scale >= inner[0] - inner[1]


__all__ = [
    "EXECUTION_ID_COLUMN",
    "INSTANCE_ID_COLUMN",
    "PROVIDER_COLUMNS",
    "SIMPLE_TYPES",
    "TableColumn",
    "holds",
    "normalise_type",
    "postgres_type",
    "table_columns",
]
