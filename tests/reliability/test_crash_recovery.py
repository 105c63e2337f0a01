"""Crashes: a worker SIGKILLed right after the create call, and the emulator (AMC) restarted while
a trigger is waiting."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import (
    FileTaskStateStore,
    assert_single_execution,
    context,
    create_operator,
    executions_created,
    fast_trigger,
    log_entries,
)
from reliability_registry import record

from airflow_env import amc_connection_env
from airflow_provider_amc.emulator.testing import EmulatorServer
from airflow_provider_amc.operators.amc import STATE_KEY

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fast_retries")]
HERE = Path(__file__).resolve().parent

#: The first try, run in a subprocess that SIGKILLs itself at ``KILL_POINT``.
FIRST_TRY = textwrap.dedent(
    """
    import os, signal, sys
    from reliability_helpers import FileTaskStateStore, context, create_operator
    from airflow_provider_amc.hooks.amc import AmcHook

    kill_point, store_path = sys.argv[1], sys.argv[2]
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    real_create, real_set = AmcHook.create_execution, FileTaskStateStore.set

    def create_then_die(self, *args, **kwargs):
        execution = real_create(self, *args, **kwargs)
        if kill_point == "after-create":
            die()
        return execution

    def set_then_die(self, key, value, **kwargs):
        real_set(self, key, value, **kwargs)
        # the operator stores a marker before the create call and the id right after it
        if kill_point == "after-state-store" and value.get("execution_id"):
            die()

    AmcHook.create_execution = create_then_die
    FileTaskStateStore.set = set_then_die
    create_operator().execute(context(FileTaskStateStore(store_path)))
    raise SystemExit("the try was not killed")
    """
)


def run_killed_try(kill_point: str, store_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", FIRST_TRY, kill_point, str(store_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    record("faults_injected")


def _second_try(amc_env: EmulatorServer, store: FileTaskStateStore) -> str:
    execution_id = create_operator().execute(context(store, try_number=2))
    assert amc_env.admin.execution("amcdemo0001", execution_id)["execution"]["status"] in (
        "PENDING",
        "RUNNING",
    )
    return str(execution_id)


def test_worker_killed_after_state_store_write_reattaches(amc_env: EmulatorServer, tmp_path: Path) -> None:
    """Killed after the create returned and its id was stored, before XCom and the table row."""
    store = FileTaskStateStore(str(tmp_path / "state.json"))
    run_killed_try("after-state-store", tmp_path / "state.json")
    assert executions_created(amc_env) == 1
    stored = store.get(STATE_KEY)
    assert stored and stored["execution_id"]
    assert _second_try(amc_env, store) == stored["execution_id"]  # reattached
    assert_single_execution(amc_env)
    record("tasks_survived")


def test_worker_killed_right_after_create_returned_does_not_duplicate(
    amc_env: EmulatorServer, tmp_path: Path
) -> None:
    store = FileTaskStateStore(str(tmp_path / "state.json"))
    run_killed_try("after-create", tmp_path / "state.json")
    assert executions_created(amc_env) == 1
    _second_try(amc_env, store)
    assert_single_execution(amc_env)
    record("tasks_survived")


# ---- AMC (the emulator) restarted while the trigger waits --------------------------------------
def test_emulator_restart_while_deferred_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The new AMC does not know the execution: the trigger ends with one clear error event (no hang,
    no endless polling); the outage itself is ridden out by the client retries and the error budget."""
    first = EmulatorServer(seed=1).start()
    port = int(first.url.rsplit(":", 1)[1])
    for name, value in amc_connection_env(first.url).items():
        monkeypatch.setenv(name, value)
    execution_id = str(create_operator().execute(context()))
    trigger = fast_trigger(execution_id, poll_interval=0.3, max_consecutive_errors=20)
    events: list[dict[str, Any]] = []

    async def wait() -> None:
        async for event in trigger.run():
            events.append(dict(event.payload))
            return

    waiter = threading.Thread(target=lambda: asyncio.run(asyncio.wait_for(wait(), 60)), daemon=True)
    waiter.start()
    time.sleep(0.8)  # a few polls answered PENDING
    first.stop()
    time.sleep(0.5)  # polls now fail to connect (transient)
    second = EmulatorServer(seed=2, port=port).start()
    try:
        waiter.join(60)
        assert not waiter.is_alive(), "the trigger hung after the restart"
        assert len(events) == 1
        event = events[0]
        assert event["status"] == "error", event
        assert execution_id in event["message"] and "does not exist" in event["message"], event
        # the new AMC refuses the old token once (refreshed), then says "unknown": not polled again
        assert [entry["status"] for entry in log_entries(second, "GET", execution_id)] == [401, 400]
    finally:
        second.stop()
    record("faults_injected")
    record("clear_failures")
