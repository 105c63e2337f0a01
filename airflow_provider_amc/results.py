"""Stream AMC result files once: count bytes and data rows, optionally save a copy.

AMC returns no row count or size, so both are computed while the files stream from their
pre-signed URLs, in constant memory whatever their size:

* bytes are those downloaded (before any decompression);
* CSV rows are records minus each part's header line, counted quote-aware (a newline inside a
  quoted field does not end a record) with a fast path for chunks that contain no quote byte;
* Parquet files (magic ``PAR1``, whatever ``output_format`` says) are spooled to a temporary file
  and their row count read from the footer with pyarrow (the ``parquet`` extra);
* gzip files (magic ``1f 8b``) are decompressed on the fly for counting.

No Airflow import at module level: :func:`object_storage_sink` imports ``ObjectStoragePath`` lazily.
"""

from __future__ import annotations

import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Protocol

CSV = "CSV"
PARQUET = "PARQUET"
OUTPUT_FORMATS = (CSV, PARQUET)

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
_SNIFF_BYTES = 4
_INFLATE_BLOCK = 1 << 20  # bound on decompressed bytes held at once (gzip bombs)

_QUOTE = b'"'
_NEWLINE = b"\n"
_CR = 13
#: An empty line (or a lone CR) between two newlines; the lookahead lets matches overlap.
_EMPTY_LINE = re.compile(rb"\n\r?(?=\n)")
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

Sink = Callable[[str], AbstractContextManager[IO[bytes]]]


# ---- results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResultFile:
    """One result part: its name, downloaded bytes, data rows, detected format and saved location."""

    name: str
    size_bytes: int
    row_count: int
    format: str
    location: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ResultSummary:
    """All parts of one execution's output."""

    row_count: int
    size_bytes: int
    files: list[ResultFile] = field(default_factory=list)
    output_format: str | None = None
    output_location: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view (for XCom)."""
        return {
            "row_count": self.row_count,
            "size_bytes": self.size_bytes,
            "output_format": self.output_format,
            "output_location": self.output_location,
            "files": [part.as_dict() for part in self.files],
        }


# ---- counters ---------------------------------------------------------------------------------
class _Counter(Protocol):
    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> tuple[int, str]:
        """``(data rows, format)`` once the stream has ended."""
        ...


def _has_content(data: bytes, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` (one line, no newline) is more than nothing or a lone CR."""
    return end - start > 1 or (end - start == 1 and data[start] != _CR)


class CsvRecordCounter:
    """Counts CSV records in a byte stream fed in arbitrary chunks (state carries across chunks).

    Quote-aware: a newline inside a quoted field does not end a record; ``""`` inside quotes
    toggles the quote state twice, so quote parity is all the state needed. With
    ``escape_char=b"\\\\"`` backslash-escaped quotes (``\\"``) are understood too. CRLF and a
    missing final newline are fine; blank lines (empty or a lone CR) are not records.
    """

    def __init__(self, escape_char: bytes | None = None) -> None:
        if escape_char is not None and (len(escape_char) != 1 or escape_char in (_QUOTE, _NEWLINE)):
            raise ValueError(
                f"escape_char must be one byte other than a quote or newline, got {escape_char!r}"
            )
        self.records = 0
        self._in_quotes = False
        self._line_has_content = False
        self._escape = escape_char
        self._pending_escape = False

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self._escape is not None:
            chunk = self._neutralise_escapes(chunk, self._escape)
        if not self._in_quotes and _QUOTE not in chunk:
            self._count_unquoted(chunk)
            return
        # Replace every quoted stretch by one content byte and count the rest in one pass:
        # pieces alternate outside/inside quotes, starting with the current state.
        pieces = chunk.split(_QUOTE)
        starts_inside = self._in_quotes
        ends_inside = starts_inside ^ (len(pieces) % 2 == 0)
        view = _QUOTE.join(pieces[1::2] if starts_inside else pieces[0::2])
        if starts_inside:
            view = _QUOTE + view
        if ends_inside:  # the last piece is inside a quoted field: it is content
            view += _QUOTE
        self._count_unquoted(view)
        self._in_quotes = ends_inside

    def _neutralise_escapes(self, chunk: bytes, escape: bytes) -> bytes:
        """Turn escaped quotes/escape bytes into plain content bytes (same length)."""
        if self._pending_escape and chunk[:1] in (_QUOTE, escape):
            chunk = b"_" + chunk[1:]
        chunk = re.sub(re.escape(escape) + b"[" + re.escape(escape) + b'"]', b"__", chunk)
        self._pending_escape = chunk.endswith(escape)
        return chunk

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

    def finish(self) -> tuple[int, str]:
        if self._line_has_content:  # last record without a final newline (or an unclosed quote)
            self.records += 1
            self._line_has_content = False
        return max(self.records - 1, 0), CSV  # minus the header line


class _ParquetCounter:
    """Spools the file to a temporary file (constant memory) and reads the row count from its footer."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._pq = _import_parquet()
        self._spool = tempfile.TemporaryFile()  # closed in finish()

    def feed(self, chunk: bytes) -> None:
        self._spool.write(chunk)

    def finish(self) -> tuple[int, str]:
        try:
            self._spool.seek(0)
            return int(self._pq.ParquetFile(self._spool).metadata.num_rows), PARQUET
        except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for a bad footer
            raise ValueError(
                f"result file {self._name!r} starts like Parquet but cannot be read: {exc}"
            ) from exc
        finally:
            self._spool.close()


def _import_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(
            "A result file is Parquet, which needs pyarrow: install the 'parquet' extra "
            "(pip install 'airflow-provider-amc[parquet]')"
        ) from exc
    return pq


class _GzipCounter:
    """Decompresses (multi-member) gzip on the fly into the counter of the inner content."""

    def __init__(self, name: str, inner: _Counter) -> None:
        self._name = name
        self._inner = inner
        self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)

    def feed(self, chunk: bytes) -> None:
        data = chunk
        try:
            while data:
                self._inner.feed(self._inflater.decompress(data, _INFLATE_BLOCK))
                data = self._inflater.unconsumed_tail
                if self._inflater.eof and not data:
                    data = self._inflater.unused_data  # next gzip member
                    if data:
                        self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        except zlib.error as exc:
            raise ValueError(f"result file {self._name!r} is not valid gzip: {exc}") from exc

    def finish(self) -> tuple[int, str]:
        self._inner.feed(self._inflater.flush())
        if not self._inflater.eof:
            raise ValueError(f"result file {self._name!r} is a truncated gzip stream")
        return self._inner.finish()


class _SniffingCounter:
    """Buffers the first bytes, picks the counter by magic bytes, then forwards everything."""

    def __init__(self, name: str, escape_char: bytes | None, *, allow_gzip: bool = True) -> None:
        self._name = name
        self._escape_char = escape_char
        self._allow_gzip = allow_gzip
        self._head = b""
        self._counter: _Counter | None = None

    def _choose(self) -> _Counter:
        if self._allow_gzip and self._head.startswith(GZIP_MAGIC):
            return _GzipCounter(self._name, _SniffingCounter(self._name, self._escape_char, allow_gzip=False))
        if self._head.startswith(PARQUET_MAGIC):
            return _ParquetCounter(self._name)
        return CsvRecordCounter(self._escape_char)

    def feed(self, chunk: bytes) -> None:
        if self._counter is not None:
            self._counter.feed(chunk)
            return
        self._head += chunk
        if len(self._head) >= _SNIFF_BYTES:
            self._counter = self._choose()
            self._counter.feed(self._head)
            self._head = b""

    def finish(self) -> tuple[int, str]:
        if self._counter is None:  # fewer bytes than the magic: decide on what there is
            self._counter = self._choose()
            self._counter.feed(self._head)
        return self._counter.finish()


# ---- locations and sinks ----------------------------------------------------------------------
def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not name or name in {".", ".."} or "/" in name or "\\" in name:
        raise ValueError(f"result file name {name!r} must be a plain file name (no '/', '\\', '.' or '..')")
    return name


def location_of(output_path: str, name: str | None = None) -> str:
    """Where ``name`` is saved under ``output_path`` (or the directory/prefix itself without a name).

    Object-storage URIs keep their scheme (``s3://bucket/prefix/name``); local paths become absolute.
    """
    if not isinstance(output_path, str) or not output_path.strip():
        raise ValueError(f"output_path must be a local path or an object-storage URI, got {output_path!r}")
    base = output_path.strip()
    if _URI_SCHEME.match(base):
        scheme, rest = base.split("://", 1)
        base = f"{scheme}://{rest.rstrip('/')}" if rest.strip("/") else base
    else:
        base = os.path.abspath(base)
    if name is None:
        return base
    return f"{base.rstrip('/')}/{_checked_name(name)}"


class ObjectStorageSink:
    """``name -> writable binary file`` under ``output_path`` (local path or any fsspec URI)."""

    def __init__(self, output_path: str) -> None:
        self.output_path = location_of(output_path)

    def location(self, name: str) -> str:
        return location_of(self.output_path, name)

    def __call__(self, name: str) -> AbstractContextManager[IO[bytes]]:
        from airflow.sdk import ObjectStoragePath

        target = self.location(name)
        path = ObjectStoragePath(target if _URI_SCHEME.match(target) else f"file://{target}")
        if path.protocol in ("file", "local"):  # object stores have no directories to create
            path.parent.mkdir(parents=True, exist_ok=True)
        handle: AbstractContextManager[IO[bytes]] = path.open("wb")  # type: ignore[no-untyped-call]
        return handle


def object_storage_sink(output_path: str) -> ObjectStorageSink:
    """A ``save_to`` for :func:`measure_results` that writes under ``output_path``."""
    return ObjectStorageSink(output_path)


# ---- measuring ----------------------------------------------------------------------------------
def _unique(name: str, seen: set[str]) -> str:
    """``name``, or ``stem-N.ext`` when an earlier part already used it."""
    candidate, counter = name, 1
    stem, dot, suffix = name.partition(".")
    while candidate in seen:
        candidate = f"{stem}-{counter}{dot}{suffix}"
        counter += 1
    seen.add(candidate)
    return candidate


def _output_format(value: str | None) -> str | None:
    if value is None:
        return None
    normalised = value.strip().upper() if isinstance(value, str) else value
    if normalised not in OUTPUT_FORMATS:
        raise ValueError(
            f"output_format {value!r} is not supported: allowed values are {', '.join(OUTPUT_FORMATS)}"
        )
    return str(normalised)


def measure_part(
    name: str,
    chunks: Iterable[bytes],
    *,
    save_to: Sink | None = None,
    location: str | None = None,
    csv_escape_char: bytes | None = None,
) -> ResultFile:
    """Read one part once: count bytes and rows, and copy each chunk to ``save_to(name)`` if given."""
    size = 0
    counter = _SniffingCounter(name, csv_escape_char)
    target: AbstractContextManager[IO[bytes] | None] = save_to(name) if save_to is not None else nullcontext()
    with target as sink:
        for chunk in chunks:
            if not chunk:
                continue
            data = chunk if isinstance(chunk, bytes) else bytes(chunk)
            size += len(data)
            counter.feed(data)
            if sink is not None:
                sink.write(data)
    rows, detected = counter.finish()
    return ResultFile(name=name, size_bytes=size, row_count=rows, format=detected, location=location)


def measure_results(
    parts: Iterable[tuple[str, Iterable[bytes]]],
    *,
    output_format: str | None = None,
    save_to: Sink | None = None,
    output_path: str | None = None,
    csv_escape_char: bytes | None = None,
) -> ResultSummary:
    """Stream every ``(file_name, chunks)`` part once and summarise rows, bytes and files.

    ``save_to`` (e.g. :func:`object_storage_sink`) receives a copy of each part; ``output_path``
    (defaults to the sink's own) names where, for ``ResultFile.location`` and the summary's
    ``output_location``. ``output_format`` is what was requested (``CSV``/``PARQUET``); the summary
    reports the detected format when all parts agree. ``csv_escape_char=b"\\\\"`` makes the CSV
    counter understand backslash-escaped quotes.
    """
    requested = _output_format(output_format)
    if save_to is not None and output_path is None:
        output_path = getattr(save_to, "output_path", None)
    base = location_of(output_path) if save_to is not None and output_path else None
    seen: set[str] = set()
    files = []
    for raw_name, chunks in parts:
        name = _unique(_checked_name(raw_name), seen)
        location = location_of(base, name) if base else None
        files.append(
            measure_part(name, chunks, save_to=save_to, location=location, csv_escape_char=csv_escape_char)
        )
    detected = {part.format for part in files}
    return ResultSummary(
        row_count=sum(part.row_count for part in files),
        size_bytes=sum(part.size_bytes for part in files),
        files=files,
        output_format=detected.pop() if len(detected) == 1 else requested,
        output_location=base,
    )


__all__ = [
    "OUTPUT_FORMATS",
    "CsvRecordCounter",
    "ObjectStorageSink",
    "ResultFile",
    "ResultSummary",
    "location_of",
    "measure_part",
    "measure_results",
    "object_storage_sink",
]
