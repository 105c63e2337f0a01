"""pytest fixtures for testing your own AMC DAGs against the emulator (``pytest11`` entry point).

Installed with the provider and loaded by pytest automatically, but inert: nothing starts, nothing
is imported from Airflow and no setting changes unless a test asks for one of these fixtures.

``amc_emulator``
    A running emulator (:class:`~airflow_provider_amc.emulator.testing.EmulatorServer`) of this
    test only, on a free port. Configure it with ``@pytest.mark.amc_emulator(speed=20, tls=True,
    seed=1, scaled_lifetimes=True)`` (any ``EmulatorServer`` keyword).
``amc_connection``
    The ``amc`` connection to that emulator, set as ``AIRFLOW_CONN_<ID>`` in the environment for
    this test only (removed afterwards); returns the connection id. The id is ``amc_default``;
    override the ``amc_conn_id`` fixture to use another.
``amc_request_log``
    The emulator's request log (:class:`~airflow_provider_amc.emulator.testing.EmulatorRequestLog`):
    ``entries()``, ``count(method, path_regex)``, ``bodies(method, path_regex)``, ``clear()``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_amc.emulator.testing import EmulatorRequestLog, EmulatorServer

MARKER = "amc_emulator"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): EmulatorServer options of the amc_emulator fixture (speed, tls, seed...)",
    )


@pytest.fixture
def amc_emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    """A running AMC emulator of this test only (options from ``@pytest.mark.amc_emulator``)."""
    from airflow_provider_amc.emulator.testing import EmulatorServer

    marker = request.node.get_closest_marker(MARKER)
    options = dict(marker.kwargs) if marker else {}
    with EmulatorServer(**options) as server:
        yield server


@pytest.fixture
def amc_conn_id() -> str:
    """The connection id ``amc_connection`` sets (override this fixture to change it)."""
    return "amc_default"


@pytest.fixture
def amc_connection(amc_emulator: EmulatorServer, amc_conn_id: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the ``amc`` connection ``amc_conn_id`` at this test's emulator (environment, this test only)."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{amc_conn_id.upper()}", json.dumps(amc_emulator.connection()))
    return amc_conn_id


@pytest.fixture
def amc_request_log(amc_emulator: EmulatorServer) -> EmulatorRequestLog:
    """What the code under test sent to this test's emulator (secrets masked)."""
    from airflow_provider_amc.emulator.testing import EmulatorRequestLog

    return EmulatorRequestLog(amc_emulator.admin)
