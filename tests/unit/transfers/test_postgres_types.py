"""outputColumns -> Postgres types, and the byte-stream helpers of the loader (no database)."""

from __future__ import annotations

import gzip

import pytest

from airflow_provider_amc.client import OutputColumn
from airflow_provider_amc.result_reader import ResultReadError, inflate, peek
from airflow_provider_amc.transfers.postgres_types import TableColumn, holds, postgres_type, table_columns


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ({"dataType": "DECIMAL", "dataTypePrecision": 38, "dataTypeScale": 17}, "numeric(38,17)"),
        ({"dataType": "DECIMAL", "precision": 38, "scale": 2}, "numeric(38,2)"),
        ({"dataType": "DECIMAL", "precision": 10}, "numeric(10)"),
        ({"dataType": "DECIMAL"}, "numeric"),
        ({"dataType": "DECIMAL", "precision": 5, "scale": 9}, "numeric"),
        ({"dataType": "DECIMAL", "precision": 0, "scale": 0}, "numeric"),
        ({"dataType": "LONG"}, "bigint"),
        ({"dataType": "INTEGER"}, "integer"),
        ({"dataType": "DOUBLE"}, "double precision"),
        ({"dataType": "DATE"}, "date"),
        ({"dataType": "TIMESTAMP"}, "timestamp"),
        ({"dataType": "BOOLEAN"}, "boolean"),
        ({"dataType": "STRING"}, "text"),
        ({"dataType": "long"}, "bigint"),
        ({"dataType": "CALENDAR_INTERVAL"}, "text"),
        ({"dataType": {"type": "ARRAY", "elementDataType": "STRING"}}, "text"),
        ({}, "text"),
    ],
)
def test_postgres_type(column: dict[str, object], expected: str) -> None:
    assert postgres_type(OutputColumn.model_validate({"name": "c", **column})) == expected


def test_table_columns_keeps_order() -> None:
    assert table_columns([{"name": "b", "dataType": "LONG"}, {"name": "A b", "dataType": "DATE"}]) == [
        TableColumn("b", "bigint"),
        TableColumn("A b", "date"),
    ]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([], "no outputColumns"),
        ([{"name": "x"}, {"name": "x"}], r"outputColumns\[1\].name 'x' appears twice"),
        ([{"name": "amc_execution_id"}], "reserved"),
        (
            [{"name": "x"}, {"name": "amc_instance_id"}],
            r"outputColumns\[1\].name 'amc_instance_id' is reserved",
        ),
        ([{"name": "n" * 64}], "63-byte"),
        ([{"name": ""}], "non-empty"),
    ],
)
def test_table_columns_rejects(columns: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        table_columns(columns)


def test_peek_returns_head_and_all_bytes() -> None:
    head, data = peek([b"P", b"AR", b"1rest", b"more"], 4)
    assert head == b"PAR1"
    assert b"".join(data) == b"PAR1restmore"


def test_inflate_multi_member_in_small_chunks() -> None:
    blob = gzip.compress(b"a,b\n1,2\n") + gzip.compress(b"3,4\n")
    assert b"".join(inflate([blob[i : i + 3] for i in range(0, len(blob), 3)], "p")) == b"a,b\n1,2\n3,4\n"


def test_inflate_rejects_garbage() -> None:
    with pytest.raises(ResultReadError, match="not valid gzip"):
        list(inflate([b"\x1f\x8bnot gzip at all"], "p"))


@pytest.mark.parametrize("cut", [1, 4, 8, 12])
def test_inflate_rejects_a_truncated_stream(cut: int) -> None:
    blob = gzip.compress(b"a,b\n" + b"1,2\n" * 1000)
    with pytest.raises(ResultReadError, match="truncated"):
        list(inflate([blob[:-cut]], "p"))


@pytest.mark.parametrize(
    ("container", "value", "expected"),
    [
        ("numeric(38,2)", "numeric(38,2)", True),
        ("numeric(38,2)", "numeric(38,4)", False),  # scale would be rounded away
        ("numeric(38,4)", "numeric(38,2)", False),  # 36 integer digits do not fit in 34
        ("numeric(40,4)", "numeric(38,2)", True),
        ("numeric", "numeric(38,17)", True),
        ("numeric(38,2)", "numeric", False),
        ("numeric(20,0)", "bigint", True),
        ("numeric(18,0)", "bigint", False),
        ("bigint", "integer", True),
        ("integer", "bigint", False),
        ("date", "timestamp", False),  # a timestamp into a date loses the time
        ("timestamp without time zone", "date", True),
        ("double precision", "real", True),
        ("real", "double precision", False),
        ("double precision", "bigint", False),
        ("text", "numeric(38,2)", True),
        ("bigint", "text", False),
        ("boolean", "boolean", True),
    ],
)
def test_holds(container: str, value: str, expected: bool) -> None:
    assert holds(container, value) is expected


def test_a_copy_that_writes_another_number_of_rows_fails_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    """COPY's own row count is checked against the records parsed (a fake cursor lies about it)."""
    from contextlib import contextmanager
    from typing import Any

    from airflow_provider_amc.transfers import postgres_load
    from airflow_provider_amc.transfers.postgres_load import ResultLoadError, copy_part

    monkeypatch.setattr(postgres_load, "QueuedLibpqWriter", lambda cursor: None)

    class LyingCursor:
        rowcount = 0
        sent: list[bytes] = []

        @contextmanager
        def copy(self, statement: Any, **kwargs: Any) -> Any:
            class Copy:
                def write(self, data: Any) -> None:
                    LyingCursor.sent.append(bytes(data))

            yield Copy()
            self.rowcount = 1  # the server says one row, the file holds two

    with pytest.raises(ResultLoadError, match=r"COPY wrote 1 rows, the file holds 2"):
        copy_part(LyingCursor(), ("t",), ["term"], "p.csv", [b"term\na\nb\n"])  # type: ignore[arg-type]
    assert b"".join(LyingCursor.sent) == b'"a"\n"b"\n'  # every value quoted, never the raw bytes
