"""Shared pytest fixtures: the AMC emulator (no Airflow import here: other modules set Airflow env)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_amc.emulator.testing import EmulatorServer


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    """One emulator (uvicorn in a background thread, free port) for the whole test session."""
    with EmulatorServer(seed=0, speed=1.0) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The session emulator, reset to its seeded state (issued access tokens stay valid)."""
    emulator_server.admin.reset()
    yield emulator_server
    emulator_server.admin.reset()
