"""Shared pytest fixtures: the AMC emulator (no Airflow import here: other modules set Airflow env)."""

from __future__ import annotations

from collections.abc import Iterator

from airflow_env import apply_airflow_test_env

# Every test process gets a throw-away AIRFLOW_HOME (SQLite, temp DAGs folder) before anything
# imports Airflow; the real-Airflow harness builds its own environment for its subprocesses.
apply_airflow_test_env()

import pytest  # noqa: E402

from airflow_provider_amc.emulator.testing import EmulatorServer  # noqa: E402


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
