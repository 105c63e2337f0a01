"""Driving a deferring operator as Airflow does, against an emulator whose clock is real time.

* :func:`real_time_emulator`: an emulator started now at speed 1 (the session emulator's clock may
  have been advanced by other tests), reset and pointed at by ``amc_default`` for one test; its clock
  agrees with this process's within a second, so a moment computed here is the same moment there.
* :func:`fire`: rebuild each deferral's trigger from its serialised form (what the triggerer does),
  run them all at once to their first event and return the event payloads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.module_loading import import_string

from airflow_env import amc_connection_env
from airflow_provider_amc.emulator.testing import EmulatorServer


@contextmanager
def real_time_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed=0, speed=1.0) as server:
        yield server


def use(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    """Reset ``server`` and point ``amc_default`` at it for this test."""
    server.admin.reset()
    for name, value in amc_connection_env(server.url).items():
        monkeypatch.setenv(name, value)
    assert abs((server.admin.now() - datetime.now(UTC)).total_seconds()) < 2
    return server


def fire(deferrals: list[TaskDeferred]) -> list[Any]:
    """Run every deferral's trigger (rebuilt from ``serialize()``) to its first event, all at once."""

    async def first(deferred: TaskDeferred) -> Any:
        path, kwargs = deferred.trigger.serialize()
        async for event in import_string(path)(**kwargs).run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    async def all_of() -> list[Any]:
        return list(await asyncio.gather(*(first(deferred) for deferred in deferrals)))

    return asyncio.run(all_of())
