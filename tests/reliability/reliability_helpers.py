"""Shared helpers of the reliability suite: operators wired to the emulator, request-log counting,
running a trigger to its first event and bounded waits (no test may hang)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from reliability_registry import record

from airflow_env import PG_TEST_DSN, FakeTaskInstance, InMemoryTaskStateStore, task_context
from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.testing import EmulatorServer
from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator
from airflow_provider_amc.sensors.amc import AmcExecutionSensor
from airflow_provider_amc.triggers.amc import AmcExecutionTrigger

T = TypeVar("T")
WORKFLOW = defaults.DEMO_WORKFLOW_ID
INSTANCE = defaults.DEFAULT_INSTANCE_ID
CREATE_PATH = r"/workflowExecutions$"
STATUS_PATH = r"/workflowExecutions/[0-9a-f-]{36}$"
URLS_PATH = r"/downloadUrls$"
DOWNLOAD_PATH = r"^/downloads/"
TOKEN_PATH = r"^/auth/o2/token$"


def create_operator(pg_conn_id: str | None = None, table: str | None = None, **kwargs: Any) -> Any:
    kwargs.setdefault("time_window_start", "2026-03-01")
    kwargs.setdefault("time_window_end", "2026-03-02")
    return AmcCreateExecutionOperator(
        task_id=f"submit_{uuid.uuid4().hex[:6]}",
        workflow_id=WORKFLOW,
        postgres_conn_id=pg_conn_id,
        **({"table": table} if table else {}),
        **kwargs,
    )


def sensor(execution_id: str, pg_conn_id: str | None = None, table: str | None = None, **kw: Any) -> Any:
    return AmcExecutionSensor(
        task_id=f"wait_{uuid.uuid4().hex[:6]}",
        execution_id=execution_id,
        postgres_conn_id=pg_conn_id,
        **({"table": table} if table else {}),
        **kw,
    )


def context(store: InMemoryTaskStateStore | None = None, try_number: int = 1) -> dict[str, Any]:
    values: dict[str, Any] = {"task_state_store": store} if store is not None else {}
    return task_context(FakeTaskInstance(try_number=try_number), **values)


def finish_executions(emulator: EmulatorServer) -> None:
    """Move emulator time past PENDING (2 s) + RUNNING (5 s)."""
    emulator.admin.advance(10)


# ---- the request log ---------------------------------------------------------------------------
def log_entries(emulator: EmulatorServer, method: str = "*", path: str = ".*") -> list[dict[str, Any]]:
    import re

    pattern = re.compile(path)
    return [
        entry
        for entry in emulator.admin.requests()
        if method in ("*", entry["method"]) and pattern.search(entry["path"])
    ]


def faults_hit(emulator: EmulatorServer) -> int:
    """Requests the emulator answered with an injected fault or a throttle 429."""
    return sum(1 for entry in emulator.admin.requests() if entry.get("fault") or entry.get("throttled"))


def executions_created(emulator: EmulatorServer) -> int:
    """Executions the emulator created (successful create POSTs: AMC's own count)."""
    return sum(1 for entry in log_entries(emulator, "POST", CREATE_PATH) if entry["status"] == 200)


def account_faults(emulator: EmulatorServer, at_least: int = 0, wait: float = 5.0) -> int:
    """Count (and register) the fault answers so far. A delayed request is logged only when the
    emulator finally answers it, after the client gave up: wait for ``at_least`` entries."""
    deadline = time.monotonic() + wait
    hits = faults_hit(emulator)
    while hits < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
        hits = faults_hit(emulator)
    record("faults_injected", hits)
    return hits


def assert_single_execution(emulator: EmulatorServer, counter: str = "duplicates") -> None:
    created = executions_created(emulator)
    if created > 1:
        record(counter, created - 1)
    assert created == 1, f"expected exactly one execution, the emulator created {created}"


# ---- bounded waits -------------------------------------------------------------------------------
def within(seconds: float, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread; fail (instead of hanging) when it takes longer than ``seconds``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"did not finish within {seconds} s (hang)")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def first_event(trigger: AmcExecutionTrigger, timeout: float = 30.0) -> dict[str, Any]:
    """Run the trigger until its first event (it sends exactly one) and return the payload."""

    async def collect() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(collect(), timeout))


def fast_trigger(execution_id: str, **kwargs: Any) -> AmcExecutionTrigger:
    kwargs.setdefault("poll_interval", 0.05)
    return AmcExecutionTrigger(execution_id=execution_id, instance_id=INSTANCE, **kwargs)


# ---- Postgres ----------------------------------------------------------------------------------
def pg_rows(table: str) -> list[dict[str, Any]]:
    with psycopg.connect(PG_TEST_DSN, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
        names = [column[0] for column in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@contextmanager
def temp_table() -> Iterator[str]:
    name = f"amc_rel_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with psycopg.connect(PG_TEST_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


class FileTaskStateStore:
    """A file-backed ``task_state_store`` stand-in: survives the process (a SIGKILLed try)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        import json
        import os

        if not os.path.exists(self.path):
            return {}
        with open(self.path) as handle:
            return dict(json.load(handle))

    def get(self, key: str, default: Any = None) -> Any:
        return self._load().get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        import json
        import os

        values = {**self._load(), key: value}
        with open(self.path + ".tmp", "w") as handle:
            json.dump(values, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(self.path + ".tmp", self.path)
