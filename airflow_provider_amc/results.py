"""Stream AMC result files once: count bytes and data rows, optionally save a copy per execution.

AMC returns no row count or size, so both are computed while the files stream from their
pre-signed URLs, in constant memory whatever their size. Decoding (gzip, Parquet, CSV in the
workflow's characters) is :mod:`airflow_provider_amc.result_reader`'s, the same reader the Postgres
load uses:

* bytes are those downloaded (before any decompression);
* CSV rows are records minus each part's header line, counted quote-aware at C speed;
* Parquet row counts come from the footer (pyarrow, the ``parquet`` extra).

Saved copies go to one folder per execution, ``<output_path>/<execution_id>/``: every file is
written under a temporary hidden name and renamed when complete, and a manifest
(:data:`MANIFEST_NAME`: names, sizes, row counts, CSV characters) is written last the same way.
A folder without a manifest is an incomplete save; the loader reads exactly the manifest's files.

No Airflow import at module level: :func:`object_storage_sink` imports ``ObjectStoragePath`` lazily.
"""

from __future__ import annotations

import json
import os
import queue
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Final

from airflow_provider_amc.result_reader import (
    CSV,
    OUTPUT_FORMATS,
    PARQUET,
    CsvDialect,
    CsvRecordCounter,
    count_records,
)

#: The manifest of a saved execution folder, written last.
MANIFEST_NAME: Final = "_amc_manifest.json"
MANIFEST_VERSION: Final = 1
#: Chunks (1 MiB each from the hook) waiting for the writer thread at most.
WRITE_QUEUE_DEPTH: Final = 8
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


def storage_path(location: str) -> Any:
    """``ObjectStoragePath`` of a local path or object-storage URI (local paths as ``file://``)."""
    from airflow.sdk import ObjectStoragePath

    target = location_of(location)
    return ObjectStoragePath(target if _URI_SCHEME.match(target) else f"file://{target}")


def execution_folder(output_path: str, execution_id: str) -> str:
    """The folder of one execution's saved files: ``<output_path>/<execution_id>``."""
    return location_of(output_path, execution_id)


class ObjectStorageSink:
    """``name -> writable binary file`` under ``output_path`` (local path or any fsspec URI).

    Each file is written as ``.<name>.<random>.partial`` and renamed to ``name`` once its writer
    closed without error; a failed write removes the temporary file. So a file under its final
    name is always complete.
    """

    def __init__(self, output_path: str) -> None:
        self.output_path = location_of(output_path)

    def location(self, name: str) -> str:
        return location_of(self.output_path, name)

    @contextmanager
    def _atomic(self, name: str) -> Iterator[IO[bytes]]:
        final = storage_path(self.location(name))
        temporary = storage_path(self.location(f".{name}.{uuid.uuid4().hex}.partial"))
        if final.protocol in ("file", "local"):  # object stores have no directories to create
            final.parent.mkdir(parents=True, exist_ok=True)
        try:
            with temporary.open("wb") as handle:
                yield handle
            temporary.rename(final)
        except BaseException:
            with suppress(Exception):
                temporary.unlink()
            raise

    def __call__(self, name: str) -> AbstractContextManager[IO[bytes]]:
        return self._atomic(name)


def object_storage_sink(output_path: str) -> ObjectStorageSink:
    """A ``save_to`` for :func:`measure_results` that writes under ``output_path``."""
    return ObjectStorageSink(output_path)


@contextmanager
def background_writer(sink: IO[bytes], depth: int = WRITE_QUEUE_DEPTH) -> Iterator[Callable[[bytes], None]]:
    """``write(chunk)`` that hands chunks to a thread writing them to ``sink`` in order.

    Writing releases the GIL, so saving overlaps with downloading and counting; at most ``depth``
    chunks wait (bounded memory). A write error is raised in the caller (at its next ``write`` or
    when the block ends); the block's own error stops the thread without waiting for the queue.
    """
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
    failures: list[BaseException] = []

    def drain() -> None:
        while (chunk := pending.get()) is not None:
            if not failures:
                try:
                    sink.write(chunk)
                except BaseException as exc:  # reported to the caller; keep draining
                    failures.append(exc)

    thread = threading.Thread(target=drain, name="amc-result-writer", daemon=True)
    thread.start()

    def write(chunk: bytes) -> None:
        if failures:
            raise failures[0]
        pending.put(chunk)

    try:
        yield write
    finally:
        pending.put(None)
        thread.join()
    if failures:
        raise failures[0]


# ---- measuring ----------------------------------------------------------------------------------
def _unique(name: str, seen: set[str]) -> str:
    """``name``, or ``stem-N.ext`` when an earlier part (or the manifest) already used it."""
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
    dialect: CsvDialect | None = None,
) -> ResultFile:
    """Read one part once: count bytes and rows, and copy each chunk to ``save_to(name)`` if given."""
    size = 0

    def passing(write: Callable[[bytes], Any] | None) -> Iterator[bytes]:
        nonlocal size
        for chunk in chunks:
            if not chunk:
                continue
            data = chunk if isinstance(chunk, bytes) else bytes(chunk)
            size += len(data)
            if write is not None:
                write(data)
            yield data

    if save_to is None:
        rows, detected = count_records(name, passing(None), dialect)
    else:
        with save_to(name) as sink, background_writer(sink) as write:
            rows, detected = count_records(name, passing(write), dialect)
    return ResultFile(name=name, size_bytes=size, row_count=rows, format=detected, location=location)


def manifest_document(
    summary: ResultSummary, execution_id: str | None, dialect: CsvDialect | None
) -> dict[str, Any]:
    """The manifest of a saved folder (JSON): what the loader reads and checks, file by file."""
    return {
        "version": MANIFEST_VERSION,
        "execution_id": execution_id,
        "row_count": summary.row_count,
        "size_bytes": summary.size_bytes,
        "csv": (dialect or CsvDialect()).as_dict(),
        "files": [
            {"name": f.name, "size_bytes": f.size_bytes, "row_count": f.row_count, "format": f.format}
            for f in summary.files
        ],
    }


def measure_results(
    parts: Iterable[tuple[str, Iterable[bytes]]],
    *,
    output_format: str | None = None,
    save_to: Sink | None = None,
    output_path: str | None = None,
    dialect: CsvDialect | None = None,
    execution_id: str | None = None,
) -> ResultSummary:
    """Stream every ``(file_name, chunks)`` part once and summarise rows, bytes and files.

    ``save_to`` (e.g. :func:`object_storage_sink`) receives a copy of each part and, last, the
    manifest (:data:`MANIFEST_NAME`, naming ``execution_id``); ``output_path`` (defaults to the
    sink's own) names where, for ``ResultFile.location`` and the summary's ``output_location``.
    ``output_format`` is what was requested (``CSV``/``PARQUET``); the summary reports the detected
    format when all parts agree. ``dialect`` gives the workflow's CSV characters.
    """
    requested = _output_format(output_format)
    if save_to is not None and output_path is None:
        output_path = getattr(save_to, "output_path", None)
    base = location_of(output_path) if save_to is not None and output_path else None
    seen: set[str] = {MANIFEST_NAME}
    files = []
    for raw_name, chunks in parts:
        name = _unique(_checked_name(raw_name), seen)
        location = location_of(base, name) if base else None
        files.append(measure_part(name, chunks, save_to=save_to, location=location, dialect=dialect))
    detected = {part.format for part in files}
    summary = ResultSummary(
        row_count=sum(part.row_count for part in files),
        size_bytes=sum(part.size_bytes for part in files),
        files=files,
        output_format=detected.pop() if len(detected) == 1 else requested,
        output_location=base,
    )
    if save_to is not None:
        with save_to(MANIFEST_NAME) as handle:
            handle.write(json.dumps(manifest_document(summary, execution_id, dialect), indent=1).encode())
    return summary


def read_manifest(folder: str) -> dict[str, Any] | None:
    """The manifest of a saved execution folder, or ``None`` when there is none."""
    path = storage_path(location_of(folder, MANIFEST_NAME))
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        document: dict[str, Any] = json.loads(handle.read())
    return document


__all__ = [
    "CSV",
    "MANIFEST_NAME",
    "OUTPUT_FORMATS",
    "PARQUET",
    "CsvDialect",
    "CsvRecordCounter",
    "ObjectStorageSink",
    "ResultFile",
    "ResultSummary",
    "execution_folder",
    "location_of",
    "measure_part",
    "measure_results",
    "object_storage_sink",
    "read_manifest",
    "storage_path",
]
