"""measure_results: rows and bytes of streamed result parts, Parquet, gzip, and saving copies."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_amc.result_reader import read_part
from airflow_provider_amc.results import (
    CsvDialect,
    ResultFile,
    ResultSummary,
    location_of,
    measure_results,
    object_storage_sink,
)

TRICKY_VALUES = [
    "plain",
    "with, comma",
    'say "hi"',
    "two\nlines",
    "crlf\r\ninside",
    "",
    '"',
    '""',
    "trailing\n",
    "\n",
    "ünïcödé ✓",
]


def csv_bytes(rows: list[list[str]], header: list[str] | None = None, terminator: str = "\r\n") -> bytes:
    """CSV written by the standard library (quotes as needed, "" escapes)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=terminator)
    writer.writerow(header or [f"c{i}" for i in range(len(rows[0]) if rows else 2)])
    writer.writerows(rows)
    return buffer.getvalue().encode()


def reference_rows(data: bytes) -> int:
    """Data rows by the standard csv module (blank lines are not records), minus the header."""
    records = [row for row in csv.reader(io.StringIO(data.decode(), newline="")) if row]
    return max(len(records) - 1, 0)


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def tricky_rows() -> list[list[str]]:
    return [
        [TRICKY_VALUES[(i + j) % len(TRICKY_VALUES)] for j in range(3)] for i in range(len(TRICKY_VALUES))
    ]


def parquet_bytes(rows: int) -> bytes:
    sink = io.BytesIO()
    table = pa.table({"campaign": [f"c{i}" for i in range(rows)], "impressions": list(range(rows))})
    pq.write_table(table, sink, row_group_size=7)
    return sink.getvalue()


def measure_one(data: bytes, chunk_size: int = 1 << 16, **kwargs: object) -> ResultFile:
    summary = measure_results([("part.csv", chunked(data, chunk_size))], **kwargs)  # type: ignore[arg-type]
    assert len(summary.files) == 1
    return summary.files[0]


# ---- CSV ----------------------------------------------------------------------------------------
def test_single_part() -> None:
    data = b"campaign,impressions\nA,1\nB,2\nC,3\n"
    summary = measure_results([("result.csv", iter([data[:10], data[10:]]))])
    assert summary == ResultSummary(
        row_count=3,
        size_bytes=len(data),
        files=[ResultFile("result.csv", len(data), 3, "CSV", None)],
        output_format="CSV",
        output_location=None,
    )
    assert summary.as_dict() == {
        "row_count": 3,
        "size_bytes": len(data),
        "output_format": "CSV",
        "output_location": None,
        "files": [
            {"name": "result.csv", "size_bytes": len(data), "row_count": 3, "format": "CSV", "location": None}
        ],
    }


def test_multi_part_each_with_header() -> None:
    parts = [csv_bytes([["a", str(i)] for i in range(n)]) for n in (5, 0, 12)]
    summary = measure_results([(f"part-{i}.csv", chunked(p, 3)) for i, p in enumerate(parts)])
    assert [f.row_count for f in summary.files] == [5, 0, 12]
    assert summary.row_count == 17
    assert summary.size_bytes == sum(len(p) for p in parts)
    assert [f.size_bytes for f in summary.files] == [len(p) for p in parts]


@pytest.mark.parametrize("data", [b"a,b\n", b"a,b", b"a,b\r\n", b"", b"\n", b"a,b\n\n\r\n"])
def test_header_only_and_empty(data: bytes) -> None:
    part = measure_one(data, 1)
    assert (part.row_count, part.size_bytes) == (0, len(data))


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 5, 6, 7, 1 << 20])
@pytest.mark.parametrize("terminator", ["\n", "\r\n"])
def test_quoted_fields_split_at_every_boundary(chunk_size: int, terminator: str) -> None:
    data = csv_bytes(tricky_rows(), terminator=terminator)
    assert b'""' in data and b'"two\nlines"' in data  # the fixture really exercises quoting
    assert measure_one(data, chunk_size).row_count == reference_rows(data) == len(TRICKY_VALUES)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 1 << 20])
def test_no_trailing_newline_and_crlf(chunk_size: int) -> None:
    assert measure_one(b"h1,h2\r\nx,1\r\ny,2", chunk_size).row_count == 2
    assert measure_one(b'h1,h2\nx,"open\nquote', chunk_size).row_count == 1  # unclosed quote: one record
    assert measure_one(b'h\n"ends quoted"', chunk_size).row_count == 1


def test_blank_lines_are_not_records() -> None:
    data = b"h1,h2\n\nx,1\r\n\r\n\n\ny,2\n\n"
    assert measure_one(data, 1).row_count == reference_rows(data) == 2
    assert measure_one(data).row_count == 2


def test_single_empty_column_value_is_a_record() -> None:
    data = csv_bytes([[""], ["x"], [""]], header=["only"])
    assert data == b'only\r\n""\r\nx\r\n""\r\n'
    assert measure_one(data, 2).row_count == 3


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.lists(
            st.sampled_from(TRICKY_VALUES)
            | st.text(st.characters(exclude_characters="\r", exclude_categories=("Cs",)), max_size=6),
            min_size=1,
            max_size=4,
        ),
        max_size=12,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    terminator=st.sampled_from(["\n", "\r\n"]),
)
def test_property_matches_csv_module(rows: list[list[str]], cuts: list[int], terminator: str) -> None:
    # A lone CR is a line end to the csv module but is only quoted by it with a CRLF terminator,
    # so generated text has none (TRICKY_VALUES still carries a quoted CRLF).
    rows = rows or [["x"]]
    data = csv_bytes(rows, header=["h"], terminator=terminator)
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    summary = measure_results([("p.csv", iter(chunks))])
    assert summary.row_count == reference_rows(data)
    assert summary.size_bytes == len(data)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.lists(
            st.sampled_from(TRICKY_VALUES)
            | st.text(st.characters(exclude_characters="\r", exclude_categories=("Cs",)), max_size=6),
            min_size=3,
            max_size=3,
        ),
        max_size=12,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    terminator=st.sampled_from(["\n", "\r\n"]),
)
def test_property_counter_parser_and_csv_module_agree(
    rows: list[list[str]], cuts: list[int], terminator: str
) -> None:
    """Multi-column data (the counter's fast path): counted == parsed by the loader == csv module."""
    data = csv_bytes(rows, header=["a", "b", "c"], terminator=terminator)
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    expected = reference_rows(data)
    assert measure_results([("p.csv", iter(chunks))]).row_count == expected
    with read_part("p.csv", iter(chunks), None, ["a", "b", "c"]) as part:
        parsed = [row for batch in part.batches for row in batch.to_pylist()]
    assert part.rows == len(parsed) == expected
    # Values too (NULL for an unquoted empty field: the csv module writes "" only when quoting it).
    reference = [r for r in csv.reader(io.StringIO(data.decode(), newline="")) if r][1:]
    assert [[row[k] or "" for k in "abc"] for row in parsed] == reference


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 1 << 20])
def test_backslash_escaped_quotes(chunk_size: int) -> None:
    data = b'h1,h2\n"say \\"hi\\"\nthere",1\n"back\\\\",2\n"x\\\\\\"y\n",3\n'
    assert measure_one(data, chunk_size, dialect=CsvDialect(escape="\\")).row_count == 3


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"separator": "\n"}, "separator"),
        ({"quote": "ab"}, "quote"),
        ({"escape": "\r"}, "escape"),
        ({"separator": '"'}, "must differ"),
        ({"separator": "é"}, "ASCII"),
    ],
)
def test_dialect_refuses_characters_it_cannot_read_exactly(fields: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CsvDialect(**fields)


def test_dialect_from_workflow_output_format() -> None:
    dialect = CsvDialect.from_output_format(
        {"separatorCharacter": ";", "quoteCharacter": "'", "escapeCharacter": "\\"}
    )
    assert dialect == CsvDialect(separator=";", quote="'", escape="\\")
    assert CsvDialect.from_output_format(None) == CsvDialect()
    assert CsvDialect.from_output_format({"escapeCharacter": '"'}).escape is None


# ---- gzip and Parquet ---------------------------------------------------------------------------
@pytest.mark.parametrize("chunk_size", [1, 3, 1 << 20])
def test_gzip_is_counted_decompressed(chunk_size: int) -> None:
    plain = csv_bytes(tricky_rows())
    packed = gzip.compress(plain[:40]) + gzip.compress(plain[40:])  # two gzip members
    part = measure_one(packed, chunk_size)
    assert (part.row_count, part.size_bytes, part.format) == (len(TRICKY_VALUES), len(packed), "CSV")


def test_truncated_gzip_is_an_error() -> None:
    packed = gzip.compress(csv_bytes(tricky_rows()))
    with pytest.raises(ValueError, match=r"'part.csv'.*truncated"):
        measure_one(packed[:-12])


@pytest.mark.parametrize("chunk_size", [1, 1000, 1 << 20])
def test_parquet_without_saving(chunk_size: int) -> None:
    data = parquet_bytes(50)
    summary = measure_results([("part.csv", chunked(data, chunk_size))], output_format="csv")
    assert (summary.row_count, summary.size_bytes, summary.output_format) == (50, len(data), "PARQUET")
    assert summary.files[0].format == "PARQUET"


def test_parquet_saved(tmp_path: Path) -> None:
    data = parquet_bytes(23)
    summary = measure_results(
        [("p1.parquet", chunked(data, 999)), ("p2.parquet", iter([parquet_bytes(4)]))],
        output_format="PARQUET",
        save_to=object_storage_sink(str(tmp_path / "out")),
    )
    assert (summary.row_count, summary.output_format) == (27, "PARQUET")
    saved = tmp_path / "out" / "p1.parquet"
    assert saved.read_bytes() == data
    assert pq.read_metadata(saved).num_rows == 23
    assert summary.files[0].location == str(saved)


def test_corrupt_parquet_is_an_error() -> None:
    with pytest.raises(ValueError, match="starts like Parquet"):
        measure_one(b"PAR1 not really")


def test_missing_pyarrow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"airflow-provider-amc\[parquet\]"):
        measure_one(parquet_bytes(1))


# ---- saving and locations -------------------------------------------------------------------------
def test_saving_to_a_local_directory(tmp_path: Path) -> None:
    parts = [csv_bytes(tricky_rows()), b"h\n1\n2\n"]
    target = tmp_path / "deep" / "er"
    summary = measure_results(
        [("a.csv", chunked(parts[0], 4)), ("b.csv", iter([parts[1]]))],
        save_to=object_storage_sink(str(target)),
    )
    assert [(target / n).read_bytes() for n in ("a.csv", "b.csv")] == parts
    assert summary.output_location == str(target)
    assert [f.location for f in summary.files] == [str(target / "a.csv"), str(target / "b.csv")]
    assert summary.row_count == len(TRICKY_VALUES) + 2


def test_saving_to_a_file_uri(tmp_path: Path) -> None:
    data = gzip.compress(b"h\n1\n")
    uri = f"file://{tmp_path}/uri-out/"
    summary = measure_results([("r.csv.gz", chunked(data, 5))], save_to=object_storage_sink(uri))
    assert (tmp_path / "uri-out" / "r.csv.gz").read_bytes() == data  # saved as downloaded
    assert summary.output_location == f"file://{tmp_path}/uri-out"
    assert summary.files[0].location == f"file://{tmp_path}/uri-out/r.csv.gz"
    assert summary.row_count == 1


def test_duplicate_names_do_not_overwrite(tmp_path: Path) -> None:
    summary = measure_results(
        [("r.csv", iter([b"h\n1\n"])), ("r.csv", iter([b"h\n1\n2\n"]))],
        save_to=object_storage_sink(str(tmp_path)),
    )
    assert [f.name for f in summary.files] == ["r.csv", "r-1.csv"]
    assert (tmp_path / "r-1.csv").read_bytes() == b"h\n1\n2\n"


def test_explicit_output_path_with_custom_sink() -> None:
    saved: dict[str, io.BytesIO] = {}

    class Keep(io.BytesIO):
        def close(self) -> None:
            saved[self.name] = io.BytesIO(self.getvalue())
            super().close()

    def sink(name: str) -> Keep:
        handle = Keep()
        handle.name = name  # type: ignore[misc]
        return handle

    summary = measure_results(
        [("x.csv", iter([b"h\n", b"1\n"]))], save_to=sink, output_path="s3://bucket/pre/"
    )
    assert saved["x.csv"].getvalue() == b"h\n1\n"
    assert summary.output_location == "s3://bucket/pre"
    assert summary.files[0].location == "s3://bucket/pre/x.csv"


@pytest.mark.parametrize(
    ("output_path", "name", "expected"),
    [
        ("s3://bucket/prefix/", "a.csv", "s3://bucket/prefix/a.csv"),
        ("s3://bucket", "a.csv", "s3://bucket/a.csv"),
        ("gs://b/p", None, "gs://b/p"),
        ("file:///tmp/x", "f", "file:///tmp/x/f"),
        ("/tmp/out/", "f", "/tmp/out/f"),
        ("/", "f", "/f"),
    ],
)
def test_location_of(output_path: str, name: str | None, expected: str) -> None:
    assert location_of(output_path, name) == expected


def test_location_of_relative_path_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert location_of("rel/dir", "f.csv") == f"{tmp_path}/rel/dir/f.csv"


@pytest.mark.parametrize("name", ["../evil.csv", "a/b.csv", "..", ".", "", "a\\b"])
def test_unsafe_file_names_rejected(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        measure_results([(name, iter([b"h\n"]))], save_to=object_storage_sink(str(tmp_path)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["", "  ", None])
def test_bad_output_path(bad: str | None) -> None:
    with pytest.raises(ValueError, match="output_path"):
        object_storage_sink(bad)  # type: ignore[arg-type]


def test_bad_output_format_named() -> None:
    with pytest.raises(ValueError, match=r"output_format 'JSON'.*CSV, PARQUET"):
        measure_results([], output_format="JSON")


def test_no_parts() -> None:
    assert measure_results([], output_format="parquet") == ResultSummary(0, 0, [], "PARQUET", None)


def test_bytes_equal_sum_of_chunk_lengths() -> None:
    chunks = [b"h1,h2\n", b"", b'"a\n', b'b",1\n', bytearray(b"c,2\n"), memoryview(b"d,3")]
    summary = measure_results([("m.csv", iter(chunks))])  # type: ignore[list-item]
    assert summary.size_bytes == sum(len(c) for c in chunks) == 21
    assert summary.row_count == 3


def test_a_failing_write_fails_the_measurement_and_leaves_no_final_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer thread's error reaches the caller; the temporary file is removed."""
    from airflow_provider_amc import results

    class FullDisk(io.BytesIO):
        def write(self, data: Any) -> int:
            raise OSError(28, "No space left on device")

    written: list[bytes] = []
    real = results.background_writer

    def spy(sink: Any, depth: int = 2) -> Any:
        return real(FullDisk() if not written else sink, depth)

    monkeypatch.setattr(results, "background_writer", spy)
    chunks = [b"h\n"] + [b"row\n"] * 50
    with pytest.raises(OSError, match="No space left"):
        measure_results([("p.csv", iter(chunks))], save_to=object_storage_sink(str(tmp_path)))
    assert list(tmp_path.iterdir()) == []


def test_background_writer_keeps_order_and_bounds_the_queue() -> None:
    from airflow_provider_amc.results import background_writer

    sink = io.BytesIO()
    with background_writer(sink, depth=2) as write:
        for index in range(1000):
            write(f"{index},".encode())
    assert sink.getvalue() == b"".join(f"{index},".encode() for index in range(1000))
