"""The one reader of AMC result files: used for counting/saving (sensor) and for loading (Postgres).

A result part is a byte stream. This module decides what it holds and how to read it, for every
caller, with one set of rules:

* **sniffing**: gzip (``1f 8b``) is inflated on the fly, every member, and a stream that ends
  before its gzip trailer is an error (never a silently shorter file); inside, ``PAR1`` means
  Parquet, anything else is CSV in the workflow's :class:`CsvDialect`;
* **counting** (:func:`count_records`): CSV records are counted at C speed (``bytes.translate`` /
  ``bytes.count``: quotes and newlines only, no per-row Python), minus each part's header line;
  blank lines (empty or a lone CR) are not records; Parquet row counts come from the footer;
* **parsing** (:func:`read_part`): CSV is parsed by Arrow's C++ reader with every column as text,
  unquoted empty fields as NULL and quoted empty fields as empty strings; Parquet is read batch by
  batch. While parsing, the same bytes go through the counter: a file whose parsed records differ
  from its counted records is refused (the two views of the bytes must agree).

Memory stays constant whatever the file size. pyarrow is only imported by :func:`read_part` and
for Parquet.
"""

from __future__ import annotations

import importlib
import re
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Final

from airflow_provider_amc.client.models import CSV, OUTPUT_FORMATS, PARQUET

GZIP_MAGIC: Final = b"\x1f\x8b"
PARQUET_MAGIC: Final = b"PAR1"
_INFLATE_BLOCK: Final = 1 << 20  # bound on decompressed bytes held at once (gzip bombs)
PARSE_BLOCK_BYTES: Final = 1 << 20
PARQUET_BATCH_ROWS: Final = 65536

_NEWLINE: Final = b"\n"
_CR: Final = 13
#: An empty line (or a lone CR) between two newlines; the lookahead lets matches overlap.
_EMPTY_LINE = re.compile(rb"\n\r?(?=\n)")
_FORBIDDEN_CSV_CHARACTERS: Final = ("\n", "\r")


class ResultReadError(ValueError):
    """A result file cannot be read exactly (truncated gzip, bad Parquet, records that disagree)."""


# ---- CSV settings -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CsvDialect:
    """The CSV characters of a workflow's output (``Workflow.outputFormat``).

    ``escape`` ``None`` (or equal to ``quote``) means quotes inside quoted fields are doubled
    (``""``); another character means they are escaped (``\\"``, and the escape itself doubled).
    The loader refuses a file where the escape precedes any other character (ambiguous).
    """

    separator: str = ","
    quote: str = '"'
    escape: str | None = None

    def __post_init__(self) -> None:
        for field_name in ("separator", "quote", "escape"):
            value = getattr(self, field_name)
            if field_name == "escape" and value is None:
                continue
            if not isinstance(value, str) or len(value) != 1 or value in _FORBIDDEN_CSV_CHARACTERS:
                raise ValueError(
                    f"outputFormat {field_name} character {value!r} cannot be read exactly: "
                    "allowed values are one character other than a newline or carriage return"
                )
            if not value.isascii():
                raise ValueError(
                    f"outputFormat {field_name} character {value!r} cannot be read exactly: "
                    "allowed values are ASCII characters"
                )
        if self.escape == self.quote:
            object.__setattr__(self, "escape", None)
        used = [self.separator, self.quote] + ([self.escape] if self.escape else [])
        if len(set(used)) != len(used):
            raise ValueError(
                f"outputFormat characters must differ: separator {self.separator!r}, quote "
                f"{self.quote!r}, escape {self.escape!r}"
            )

    @classmethod
    def from_output_format(cls, output_format: Any) -> CsvDialect:
        """From a workflow's ``outputFormat`` (model, dict in camel or snake case, or ``None``)."""
        if output_format is None:
            return cls()
        if not isinstance(output_format, Mapping):
            output_format = output_format.model_dump(by_alias=False)
        names = {
            "separator": ("separator_character", "separatorCharacter", "separator"),
            "quote": ("quote_character", "quoteCharacter", "quote"),
            "escape": ("escape_character", "escapeCharacter", "escape"),
        }
        found: dict[str, Any] = {}
        for field_name, keys in names.items():
            for key in keys:
                if output_format.get(key) not in (None, ""):
                    found[field_name] = output_format[key]
                    break
        return cls(**found)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- byte streams ---------------------------------------------------------------------------------
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


def inflate(chunks: Iterable[bytes], name: str) -> Iterator[bytes]:
    """Inflate a (multi-member) gzip stream chunk by chunk; a truncated stream raises."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        for chunk in chunks:
            data = chunk
            while data:
                out = inflater.decompress(data, _INFLATE_BLOCK)
                if out:
                    yield out
                data = inflater.unconsumed_tail
                if inflater.eof and not data and inflater.unused_data:
                    data = inflater.unused_data  # the next gzip member
                    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        tail = inflater.flush()
    except zlib.error as exc:
        raise ResultReadError(f"result file {name!r} is not valid gzip: {exc}") from exc
    if tail:
        yield tail
    if not inflater.eof:
        raise ResultReadError(f"result file {name!r} is a truncated gzip stream (no end of stream)")


def decoded(name: str, chunks: Iterable[bytes]) -> tuple[str, Iterator[bytes]]:
    """``(CSV or PARQUET, the decompressed bytes)`` of one part, by magic bytes."""
    head, data = peek(chunks, len(PARQUET_MAGIC))
    if head.startswith(GZIP_MAGIC):
        head, data = peek(inflate(data, name), len(PARQUET_MAGIC))
    return (PARQUET if head.startswith(PARQUET_MAGIC) else CSV), data


# ---- counting CSV records at C speed -------------------------------------------------------------------
def _has_content(data: bytes, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` (one line, no newline) is more than nothing or a lone CR."""
    return end - start > 1 or (end - start == 1 and data[start] != _CR)


class CsvRecordCounter:
    """Counts CSV records in a byte stream fed in arbitrary chunks (state carries across chunks).

    Quote-aware: a newline inside a quoted field does not end a record. Each chunk is reduced in C
    to its quote and newline bytes (``bytes.translate``); adjacent quote pairs (an empty quoted
    stretch, a doubled quote, a close-and-reopen) never change which newlines are inside quotes, so
    they are removed (``bytes.replace``) and what is left is, for ordinary data, newlines only.
    With an escape character, escaped quotes and escaped escapes are neutralised first. CRLF and a
    missing final newline are fine; blank lines (empty or a lone CR) are not records.
    """

    def __init__(self, dialect: CsvDialect | None = None) -> None:
        dialect = dialect or CsvDialect()
        self.records = 0
        self._quote = dialect.quote.encode()
        self._pair = self._quote * 2
        # Structure bytes: quote, newline, CR, separator. Everything else is dropped in C.
        structure = {self._quote[0], _NEWLINE[0], _CR, dialect.separator.encode()[0]}
        self._drop = bytes(b for b in range(256) if b not in structure)
        self._drop_to_quotes = b"\r" + dialect.separator.encode()
        self._escape = dialect.escape.encode() if dialect.escape else None
        self._escaped = (
            re.compile(re.escape(self._escape) + b"[" + re.escape(self._escape + self._quote) + b"]")
            if self._escape
            else None
        )
        self._in_quotes = False
        self._line_has_content = False
        self._pending_escape = False
        #: An escape character before anything but a quote or itself was seen (see ``read_part``).
        self.lone_escape = False

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self._escape is not None:
            chunk = self._neutralise_escapes(chunk)
        # One C pass keeps the structure bytes (a few % of a typical chunk). A blank line in the
        # chunk shows there as "\n\n" or "\n\r\n"; so does a line without separator, quote or CR
        # (one-column data), which then only takes the slower exact path.
        structure = chunk.translate(None, self._drop)
        if b"\n\n" in structure or b"\n\r\n" in structure:
            self._count_quoted(chunk)
            return
        reduced = structure.translate(None, self._drop_to_quotes)
        if self._in_quotes:
            reduced = self._quote + reduced
        if self._quote in reduced:
            reduced = reduced.replace(self._pair, b"")
        if self._quote in reduced:  # a newline inside quotes, or a quote open at the chunk's end
            self._count_quoted(chunk)
            return
        # Every newline is outside quotes and no line in the middle is blank.
        self._count_lines(chunk, len(reduced))
        self._in_quotes = False

    def _neutralise_escapes(self, chunk: bytes) -> bytes:
        """Turn escaped quotes/escape bytes into plain content bytes (same length)."""
        assert self._escape is not None and self._escaped is not None
        if self._pending_escape:
            if chunk[:1] in (self._quote, self._escape):
                chunk = b"_" + chunk[1:]
            else:
                self.lone_escape = True
        if self._escape in chunk:
            chunk = self._escaped.sub(b"__", chunk)
            if self._escape in chunk[:-1]:  # an escape before another character
                self.lone_escape = True
        self._pending_escape = chunk.endswith(self._escape)
        return chunk

    def _count_lines(self, data: bytes, outside_newlines: int) -> None:
        """Records ended in ``data`` when all its ``outside_newlines`` end non-blank lines except
        possibly the first one (the line that began in an earlier chunk)."""
        if not outside_newlines:
            self._line_has_content = self._line_has_content or _has_content(data, 0, len(data))
            return
        first_blank = not self._line_has_content and (data[:1] == b"\n" or data[:2] == b"\r\n")
        self.records += outside_newlines - first_blank
        last = data.rindex(_NEWLINE) + 1
        self._line_has_content = _has_content(data, last, len(data))

    def _count_quoted(self, chunk: bytes) -> None:
        """The general case: replace every quoted stretch by one content byte and count the rest."""
        pieces = chunk.split(self._quote)
        starts_inside = self._in_quotes
        ends_inside = starts_inside ^ (len(pieces) % 2 == 0)
        view = self._quote.join(pieces[1::2] if starts_inside else pieces[0::2])
        if starts_inside:
            view = self._quote + view
        if ends_inside:  # the last piece is inside a quoted field: it is content
            view += self._quote
        self._count_unquoted(view)
        self._in_quotes = ends_inside

    def _count_unquoted(self, data: bytes) -> None:
        newlines = data.count(_NEWLINE)
        if not newlines:
            self._line_has_content = self._line_has_content or _has_content(data, 0, len(data))
            return
        first = data.index(_NEWLINE)
        if self._line_has_content or _has_content(data, 0, first):
            self.records += 1
        middle_lines = newlines - 1
        if middle_lines and (b"\n\n" in data or b"\n\r\n" in data):
            middle_lines -= len(_EMPTY_LINE.findall(data))
        self.records += middle_lines
        last = data.rindex(_NEWLINE) + 1
        self._line_has_content = _has_content(data, last, len(data))

    def finish(self) -> int:
        """All records (header included) once the stream has ended."""
        if self._pending_escape:
            self.lone_escape = True
        if self._line_has_content:  # last record without a final newline (or an unclosed quote)
            self.records += 1
            self._line_has_content = False
        return self.records


def data_rows(records: int) -> int:
    """CSV data rows of a part with ``records`` records (its first record is the header)."""
    return max(records - 1, 0)


# ---- Parquet ----------------------------------------------------------------------------------------
def import_pyarrow(purpose: str, module: str = "pyarrow") -> Any:
    """``module`` (pyarrow or one of its modules) with a clear message when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs pyarrow: pip install 'airflow-provider-amc[parquet]' (or pip install pyarrow)"
        ) from exc


@contextmanager
def spooled_parquet(name: str, chunks: Iterable[bytes]) -> Iterator[Any]:
    """Spool a Parquet part to a temporary file (constant memory); yields its ``ParquetFile``."""
    pq = import_pyarrow(f"result file {name!r} is Parquet, which", "pyarrow.parquet")

    with tempfile.TemporaryFile() as spool:
        for chunk in chunks:
            spool.write(chunk)
        spool.seek(0)
        try:
            parquet = pq.ParquetFile(spool)
        except Exception as exc:  # ArrowInvalid / OSError for a bad footer
            raise ResultReadError(
                f"result file {name!r} starts like Parquet but cannot be read: {exc}"
            ) from exc
        yield parquet


# ---- the two entry points -------------------------------------------------------------------------------
def count_records(name: str, chunks: Iterable[bytes], dialect: CsvDialect | None = None) -> tuple[int, str]:
    """``(data rows, CSV or PARQUET)`` of one part's bytes (header lines not counted)."""
    kind, data = decoded(name, chunks)
    if kind == PARQUET:
        with spooled_parquet(name, data) as parquet:
            return int(parquet.metadata.num_rows), PARQUET
    counter = CsvRecordCounter(dialect)
    for chunk in data:
        counter.feed(chunk)
    return data_rows(counter.finish()), CSV


@dataclass
class ParsedPart:
    """One part being read: its format, column names (``None``: an empty file), record batches of
    text columns, and, once the batches are consumed, ``rows`` (checked against the counter)."""

    name: str
    format: str
    columns: list[str] | None
    batches: Iterator[Any]
    rows: int = 0


class _ChunkReader:
    """A file-like ``read()`` over a chunk iterator that also feeds every byte to a callback."""

    def __init__(self, chunks: Iterable[bytes], on_bytes: Callable[[bytes], None]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self._on_bytes = on_bytes
        self.closed = False

    def _next(self) -> bytes:
        for chunk in self._chunks:
            if chunk:
                self._on_bytes(chunk)
                return chunk
        return b""

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = [self._buffer]
            while chunk := self._next():
                parts.append(chunk)
            self._buffer = b""
            return b"".join(parts)
        while len(self._buffer) < size:
            chunk = self._next()
            if not chunk:
                break
            self._buffer += chunk
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def drain(self) -> None:
        while self._next():
            pass

    def close(self) -> None:
        self.closed = True


def _csv_part(name: str, data: Iterator[bytes], dialect: CsvDialect, columns: Sequence[str]) -> ParsedPart:
    pa = import_pyarrow("loading CSV results")
    pa_csv = import_pyarrow("loading CSV results", "pyarrow.csv")

    counter = CsvRecordCounter(dialect)
    source = _ChunkReader(data, counter.feed)
    parse = pa_csv.ParseOptions(
        delimiter=dialect.separator,
        quote_char=dialect.quote,
        double_quote=dialect.escape is None,
        escape_char=dialect.escape or False,
        newlines_in_values=True,
        ignore_empty_lines=True,
    )
    convert = pa_csv.ConvertOptions(
        column_types={column: pa.string() for column in columns},
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        null_values=[""],
    )
    try:
        reader = pa_csv.open_csv(
            source,
            read_options=pa_csv.ReadOptions(block_size=PARSE_BLOCK_BYTES),
            parse_options=parse,
            convert_options=convert,
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" not in str(exc):
            raise ResultReadError(f"result file {name!r} is not readable CSV: {exc}") from exc
        source.drain()
        records = counter.finish()
        if records:
            raise ResultReadError(
                f"result file {name!r}: the CSV parser found no header but the counter found {records} "
                "record(s)"
            ) from exc
        return ParsedPart(name, CSV, None, iter(()))
    part = ParsedPart(name, CSV, list(reader.schema.names), iter(()))

    def batches() -> Iterator[Any]:
        try:
            for batch in reader:
                part.rows += batch.num_rows
                yield batch
        except pa.ArrowInvalid as exc:
            raise ResultReadError(f"result file {name!r} is not readable CSV: {exc}") from exc
        source.drain()
        counted = data_rows(counter.finish())
        if counter.lone_escape:
            raise ResultReadError(
                f"result file {name!r} has the escape character {dialect.escape!r} before a character "
                "other than the quote or itself: whether it is data or an escape is ambiguous, so the "
                "file cannot be loaded exactly"
            )
        if counted != part.rows:
            raise ResultReadError(
                f"result file {name!r}: the CSV parser read {part.rows} record(s) but the record "
                f"counter counted {counted}; refusing to load a file whose records are ambiguous"
            )

    part.batches = batches()
    return part


def _parquet_part(name: str, data: Iterator[bytes]) -> Iterator[ParsedPart]:
    with spooled_parquet(name, data) as parquet:
        part = ParsedPart(name, PARQUET, list(parquet.schema_arrow.names), iter(()))
        expected = int(parquet.metadata.num_rows)

        def batches() -> Iterator[Any]:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                part.rows += batch.num_rows
                yield batch
            if part.rows != expected:
                raise ResultReadError(
                    f"result file {name!r}: read {part.rows} Parquet rows, its footer says {expected}"
                )

        part.batches = batches()
        yield part


@contextmanager
def read_part(
    name: str, chunks: Iterable[bytes], dialect: CsvDialect | None, columns: Sequence[str]
) -> Iterator[ParsedPart]:
    """Open one part for loading: its columns and record batches (``columns`` are read as text).

    Consume ``batches`` fully inside the ``with``; a disagreement between parser and counter (or
    Parquet footer) raises :class:`ResultReadError` at the end of the batches.
    """
    kind, data = decoded(name, chunks)
    if kind == PARQUET:
        with contextmanager(_parquet_part)(name, data) as part:
            yield part
        return
    yield _csv_part(name, data, dialect or CsvDialect(), columns)


__all__ = [
    "CSV",
    "OUTPUT_FORMATS",
    "PARQUET",
    "CsvDialect",
    "CsvRecordCounter",
    "ParsedPart",
    "ResultReadError",
    "count_records",
    "decoded",
    "inflate",
    "read_part",
]
