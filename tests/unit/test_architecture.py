"""The import rules of docs/ARCHITECTURE.md ("Modules: what each owns, what it may import")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import airflow_provider_amc

PACKAGE = Path(airflow_provider_amc.__file__).parent

#: Modules (relative dotted names) that must not import Airflow.
AIRFLOW_FREE = {
    "lifecycle",
    "time_window",
    "validation",
    "workflows",
    "result_reader",
    "data_lag",
    "transfers.postgres_types",
    "transfers.postgres_load",
}
#: Task-level modules: nothing below them may import them.
TASK_LEVEL = {
    "execution_wait",
    "submission_guard",
    "operators.amc",
    "operators.workflow",
    "sensors.amc",
    "transfers.amc_to_postgres",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def internal(names: set[str]) -> set[str]:
    prefix = "airflow_provider_amc."
    return {name.removeprefix(prefix) for name in names if name.startswith(prefix)}


def uses_airflow(names: set[str]) -> bool:
    return any(name == "airflow" or name.startswith("airflow.") for name in names)


MODULES = {module_name(path): imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("client")))
def test_the_client_needs_neither_airflow_nor_the_rest_of_the_package(name: str) -> None:
    assert not uses_airflow(MODULES[name]), f"{name} imports airflow"
    outside = {m for m in internal(MODULES[name]) if not m.startswith("client")}
    assert not outside, f"{name} imports {outside}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("emulator")))
def test_the_emulator_stands_alone(name: str) -> None:
    assert not uses_airflow(MODULES[name]), f"{name} imports airflow"
    outside = {m for m in internal(MODULES[name]) if not m.startswith("emulator")}
    assert not outside, f"{name} imports {outside}"


@pytest.mark.parametrize("name", sorted(AIRFLOW_FREE))
def test_domain_rules_are_airflow_free(name: str) -> None:
    assert name in MODULES, f"{name} is listed but does not exist"
    assert not uses_airflow(MODULES[name]), f"{name} imports airflow"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n not in TASK_LEVEL))
def test_nothing_below_the_tasks_imports_a_task_module(name: str) -> None:
    upward = internal(MODULES[name]) & TASK_LEVEL
    assert not upward, f"{name} imports task-level {upward}"


def test_the_pytest_plugin_imports_only_the_emulator() -> None:
    assert not uses_airflow(MODULES["pytest_plugin"])
    assert internal(MODULES["pytest_plugin"]) <= {"emulator", "emulator.testing"}
