"""Fixtures for end-to-end tests against a real Airflow deployment (see ``airflow_stack.py``).

A test module declares what it needs and asks for the module-scoped ``airflow_stack`` fixture::

    from airflow_stack import StackSpec

    AIRFLOW_STACK = StackSpec(
        dags_folder=Path(__file__).parent / "my_dags",
        expect_dags=("my_dag",),
        env=lambda fixture: {"AIRFLOW_CONN_AMC_DEFAULT": conn_json(fixture("emulator_server").url)},
        pools={"amc_amcdemo0001": 10},
    )

    def test_something(airflow_stack): ...

Start-up and teardown times of every stack are listed at the end of the pytest run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from airflow_stack import AirflowStack, StackSpec

_TIMINGS = pytest.StashKey[list[tuple[str, str]]]()


@pytest.fixture(scope="module")
def airflow_stack(request: pytest.FixtureRequest) -> Iterator[AirflowStack]:
    """A running Airflow stack for the requesting module, configured by its ``AIRFLOW_STACK``."""
    spec = getattr(request.module, "AIRFLOW_STACK", None)
    if not isinstance(spec, StackSpec):
        raise pytest.UsageError(
            f"{request.module.__name__} must define AIRFLOW_STACK = StackSpec(...) to use airflow_stack"
        )
    env = spec.env(request.getfixturevalue) if callable(spec.env) else spec.env
    stack = AirflowStack(spec.dags_folder, env=env, expect_dags=spec.expect_dags)
    with stack:
        for name, slots in spec.pools.items():
            stack.set_pool(name, slots, f"e2e pool {name}", include_deferred=True)
        yield stack
    summary = (
        f"{stack.timings.summary()}; SIGKILLed after the grace period: {stack.killed_services or 'none'}; "
        f"leftover processes swept: {stack.swept}"
    )
    request.config.stash.setdefault(_TIMINGS, []).append((request.module.__name__, summary))
    leftovers = stack.stray_processes()
    assert not leftovers, f"processes survived the stack's teardown: {leftovers}"
    assert not stack.database_exists(), f"database {stack.db_name} was not dropped"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    timings = config.stash.get(_TIMINGS, [])
    if timings:
        terminalreporter.section("Airflow e2e stacks")
        for module, summary in timings:
            terminalreporter.write_line(f"{module}: {summary}")
