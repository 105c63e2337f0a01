"""Benchmark 3: streaming a ~1 GB multi-part result through the sensor's completion path.

1. The emulator generates one real CSV result part; its raw-socket download rate is reported
   (the emulator's generation speed, which would cap any client).
2. That part's data rows are repeated into ``--parts`` files totalling ``--gigabytes`` GB, served
   at the emulator's URL shape by ``bench/static_server.py`` (its own process, ``sendfile``).
3. Each client runs in a fresh child process (own peak RSS):
   * ``raw``: plain ``socket`` + minimal HTTP GET, ``recv_into`` one reused 1 MiB buffer;
   * ``raw-copy``: the same, each received block written to a file (``os.write``) in a temp dir:
     the raw socket copy, i.e. the same I/O work as counting + saving minus the counting;
   * ``ours``: ``measure_results`` over ``AmcHook.iter_download`` parts saved with
     ``object_storage_sink`` into the execution's folder (temporary names, renames, manifest): what
     ``ExecutionWaitMixin.measure_output`` runs once it has the download URLs;
   * ``ours-nosave``: the same without the copy (counting only);
   * ``download-only``: just ``AmcHook.iter_download`` (requests), to split transport from counting.

Usage::

    python bench/bench_streaming.py [--gigabytes 1.0] [--parts 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import _common  # noqa: F401 - sets AIRFLOW_HOME before Airflow is imported
from _common import Emulator, peak_rss_mb, print_table, verdict

INSTANCE = "amcdemo0001"
BUFFER = 1 << 20


# ---- clients (child process) ----------------------------------------------------------------------
def raw_get(url: str, buffer: bytearray, out: int | None = None) -> int:
    """GET ``url`` over a plain socket, reading the body into ``buffer`` (and writing each block to
    the file descriptor ``out`` if given); returns the body size."""
    parts = urlsplit(url)
    view = memoryview(buffer)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed in the headers")
            head += chunk
        header, body = head.split(b"\r\n\r\n", 1)
        lines = header.decode("latin-1").split("\r\n")
        if " 200 " not in lines[0] + " ":
            raise RuntimeError(f"{url}: {lines[0]}")
        fields = dict(line.split(": ", 1) for line in lines[1:])
        length = {k.lower(): v for k, v in fields.items()}.get("content-length")
        received = len(body)
        if out is not None:
            os.write(out, body)
        while length is None or received < int(length):
            n = sock.recv_into(view)
            if n == 0:
                break
            if out is not None:
                os.write(out, view[:n])
            received += n
        return received


def run_raw(urls: list[str]) -> dict[str, Any]:
    buffer = bytearray(BUFFER)
    return {"bytes": sum(raw_get(url, buffer) for url in urls), "rows": None}


def run_raw_copy(urls: list[str]) -> dict[str, Any]:
    buffer = bytearray(BUFFER)
    out = tempfile.mkdtemp(prefix="amc-bench-raw-")
    try:
        size = 0
        for index, url in enumerate(urls):
            fd = os.open(os.path.join(out, f"part-{index:05d}.csv"), os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                size += raw_get(url, buffer, fd)
            finally:
                os.close(fd)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"bytes": size, "rows": None}


def run_ours(urls: list[str], save: bool) -> dict[str, Any]:
    from airflow_provider_amc.hooks.amc import AmcHook
    from airflow_provider_amc.results import (
        MANIFEST_NAME,
        execution_folder,
        measure_results,
        object_storage_sink,
    )

    hook = AmcHook()
    out = tempfile.mkdtemp(prefix="amc-bench-out-")
    try:
        # What the completion path streams: (file name, hook.iter_download(pre-signed URL)) per part.
        parts = ((urlsplit(url).path.rsplit("/", 1)[-1], hook.iter_download(url)) for url in urls)
        folder = execution_folder(out, "bench-execution")
        sink = object_storage_sink(folder) if save else None
        summary = measure_results(
            parts, save_to=sink, output_path=folder if save else None, execution_id="bench-execution"
        )
        saved = sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file() and f.name != MANIFEST_NAME)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        hook.close()
    return {"bytes": summary.size_bytes, "rows": summary.row_count, "saved_bytes": saved}


def run_download_only(urls: list[str]) -> dict[str, Any]:
    from airflow_provider_amc.hooks.amc import AmcHook

    hook = AmcHook()
    size = sum(len(chunk) for url in urls for chunk in hook.iter_download(url))
    hook.close()
    return {"bytes": size, "rows": None}


CLIENTS = ("raw", "raw-copy", "download-only", "ours-nosave", "ours")


def child(client: str, urls: list[str]) -> None:
    if not client.startswith("raw"):  # same imports before the baseline for both ours variants
        from airflow.sdk import ObjectStoragePath

        import airflow_provider_amc.hooks.amc
        import airflow_provider_amc.results  # noqa: F401

        ObjectStoragePath("file:///tmp")  # fsspec/upath import and set-up: once per process, not per GB
    rss_before = peak_rss_mb()
    cpu_before = os.times()
    start = time.perf_counter()
    if client == "raw":
        result = run_raw(urls)
    elif client == "raw-copy":
        result = run_raw_copy(urls)
    elif client == "download-only":
        result = run_download_only(urls)
    else:
        result = run_ours(urls, save=client == "ours")
    cpu = os.times()
    result.update(
        seconds=time.perf_counter() - start,
        cpu_seconds=(cpu.user - cpu_before.user) + (cpu.system - cpu_before.system),
        rss_before_mb=rss_before,
        peak_rss_mb=peak_rss_mb(),
    )
    print(json.dumps(result))


def run_child(client: str, urls: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--client", client]
    env = {**os.environ, "URLS": json.dumps(urls)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"client {client} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# ---- parent ---------------------------------------------------------------------------------------
def emulator_part(emulator: Emulator, rows: int) -> tuple[str, str]:
    """Run one execution with ``rows`` rows; return (its part URL, execution id)."""
    from airflow_provider_amc.client import CreateExecutionRequest
    from airflow_provider_amc.hooks.amc import AmcHook

    emulator.admin.script("demo_campaign_report", pending_seconds=0, running_seconds=1, rows=rows, parts=1)
    hook = AmcHook()
    execution_id = hook.create_execution(
        CreateExecutionRequest(workflow_id="demo_campaign_report")
    ).workflow_execution_id
    emulator.admin.advance(5)
    urls = hook.get_download_urls(execution_id).download_urls
    hook.close()
    return urls[0], execution_id


def build_parts(seed: bytes, root: Path, execution_id: str, total: int, parts: int) -> tuple[list[Path], int]:
    """Repeat the seed part's data rows into ``parts`` CSV files of ~total/parts bytes each."""
    header, rows = seed.split(b"\n", 1)
    rows_per_copy = rows.count(b"\n")
    folder = root / "downloads" / INSTANCE / execution_id
    folder.mkdir(parents=True)
    files, data_rows = [], 0
    for index in range(parts):
        path = folder / f"part-{index:05d}.csv"
        with path.open("wb") as handle:
            handle.write(header + b"\n")
            written = len(header) + 1
            while written < total // parts:
                handle.write(rows)
                written += len(rows)
                data_rows += rows_per_copy
        files.append(path)
    return files, data_rows


def parent(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="amc-bench-static-"))
    try:
        with Emulator(speed=1.0) as emulator:
            url, execution_id = emulator_part(emulator, args.seed_rows)
            start = time.perf_counter()
            seed_size = raw_get(url, bytearray(BUFFER))
            emulator_rate = seed_size / (time.perf_counter() - start) / 1e6
            seed = run_seed_copy(url)
        files, data_rows = build_parts(seed, root, execution_id, int(args.gigabytes * 1e9), args.parts)
        server = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("static_server.py")), str(root)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            base = server.stdout.readline().split()[-1]
            query = "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=600&X-Amz-Signature=bench"
            urls = [f"{base}/{f.relative_to(root)}{query}" for f in files]
            results = {client: run_child(client, urls) for client in CLIENTS}
        finally:
            server.terminate()
            server.wait(10)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(args, results, emulator_rate, seed_size, data_rows)


def run_seed_copy(url: str) -> bytes:
    import requests

    response = requests.get(url, timeout=300)
    response.raise_for_status()
    return response.content


def report(
    args: argparse.Namespace,
    results: dict[str, dict[str, Any]],
    emulator_rate: float,
    seed_size: int,
    data_rows: int,
) -> None:
    raw = results["raw"]
    raw_rate = raw["bytes"] / raw["seconds"] / 1e6
    rows = []
    for client, r in results.items():
        rate = r["bytes"] / r["seconds"] / 1e6
        ok_rows = "" if r["rows"] is None else ("ok" if r["rows"] == data_rows else f"WRONG ({data_rows})")
        rows.append(
            [
                client,
                f"{r['bytes'] / 1e9:.3f}",
                r["rows"] if r["rows"] is not None else "-",
                ok_rows,
                f"{r['seconds']:.2f}",
                f"{rate:.0f}",
                f"{100 * rate / raw_rate:.0f} %",
                f"{r['cpu_seconds']:.2f}",
                f"{r['rss_before_mb']:.0f} / {r['peak_rss_mb']:.0f}",
            ]
        )
    print_table(
        f"{args.parts} CSV parts from a static sendfile server (the emulator itself generates "
        f"{emulator_rate:.0f} MB/s, measured on a {seed_size / 1e6:.0f} MB part)",
        [
            "client",
            "GB",
            "data rows",
            "rows check",
            "seconds",
            "MB/s",
            "vs raw socket",
            "CPU s (user+sys, all threads)",
            "RSS MB before / peak",
        ],
        rows,
    )
    ours = results["ours"]
    ours_rate = ours["bytes"] / ours["seconds"] / 1e6
    copy = results["raw-copy"]
    copy_rate = copy["bytes"] / copy["seconds"] / 1e6
    growth = ours["peak_rss_mb"] - ours["rss_before_mb"]
    print_table(
        "Targets",
        ["metric", "ours (count + save)", "baseline", "ratio", "target", "met?"],
        [
            [
                "throughput vs raw socket copy (socket -> file)",
                f"{ours_rate:.0f} MB/s",
                f"{copy_rate:.0f} MB/s",
                f"{100 * ours_rate / copy_rate:.0f} %",
                ">= 80 %",
                verdict(ours_rate >= 0.8 * copy_rate),
            ],
            [
                "throughput vs raw socket read (no file)",
                f"{ours_rate:.0f} MB/s",
                f"{raw_rate:.0f} MB/s",
                f"{100 * ours_rate / raw_rate:.0f} %",
                ">= 80 %",
                verdict(ours_rate >= 0.8 * raw_rate),
            ],
            [
                "peak RSS (whole process)",
                f"{ours['peak_rss_mb']:.0f} MB",
                f"{raw['peak_rss_mb']:.0f} MB",
                "",
                "< 100 MB",
                verdict(ours["peak_rss_mb"] < 100),
            ],
            ["RSS growth while streaming", f"{growth:.0f} MB", "", "", "< 30 MB", verdict(growth < 30)],
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--parts", type=int, default=5)
    parser.add_argument("--seed-rows", type=int, default=200_000, help="rows of the emulator-generated part")
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        child(args.client, json.loads(os.environ["URLS"]))
    else:
        parent(args)


if __name__ == "__main__":
    main()
