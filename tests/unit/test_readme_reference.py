"""README.md's reference tables say what the code does.

Each operator's, the sensor's and the transfer's argument table lists every argument of the class's
``__init__`` (and nothing that no longer exists), with the default and "templated" mark the code
has; the trigger's signature line, the connection's extras and the hook helpers match the code. A
new argument without a README row, a changed default or a stale row fails here.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import BaseOperator, BaseSensorOperator

from airflow_provider_amc.hooks.amc import KNOWN_EXTRA_FIELDS, AmcHook
from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator
from airflow_provider_amc.operators.workflow import AmcUpsertWorkflowOperator
from airflow_provider_amc.sensors.amc import AmcExecutionSensor
from airflow_provider_amc.transfers.amc_to_postgres import AmcToPostgresOperator
from airflow_provider_amc.triggers.amc import AmcExecutionTrigger

README = Path(__file__).resolve().parents[2] / "README.md"
NAME = re.compile(r"`([a-z_][a-z0-9_]*)`")


def section(text: str, heading_part: str) -> str:
    """The README section whose heading contains ``heading_part``, up to the next heading."""
    match = re.search(rf"^#+ [^\n]*{re.escape(heading_part)}[^\n]*\n(.*?)(?=^#+ )", text, re.M | re.S)
    assert match, f"README has no section headed with {heading_part}"
    return match.group(1)


def first_table(text: str) -> list[list[str]]:
    """The rows (cells stripped) of the first Markdown table in ``text``, header and rule dropped."""
    block = []
    for line in text.splitlines():
        if line.startswith("|"):
            block.append(line)
        elif block:
            break
    assert block, "no table"
    rows = [[cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in block]
    return rows[2:]


def init_params(cls: type) -> dict[str, inspect.Parameter]:
    params = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    return {n: p for n, p in params.items() if n != "self" and p.kind is not p.VAR_KEYWORD}


def inherited_names(cls: type) -> set[str]:
    """Arguments a row may document although the class takes them through ``**kwargs``."""
    bases = (BaseOperator, BaseSensorOperator) if issubclass(cls, BaseSensorOperator) else (BaseOperator,)
    return {name for base in bases for name in inspect.signature(base.__init__).parameters}  # type: ignore[misc]


def documented(rows: list[list[str]]) -> dict[str, list[str]]:
    """Argument name -> its row, for every backticked name of the first column (`a` / `b`, `c`)."""
    names: dict[str, list[str]] = {}
    for row in rows:
        if not row[0].startswith("`"):  # "other `Workflow` fields": the **kwargs row
            continue
        for name in NAME.findall(row[0]):
            names[name] = row
    return names


def readme_default(cell: str) -> Any:
    """The value a "default" cell states; ``inspect.Parameter.empty`` for "required"."""
    if cell == "required":
        return inspect.Parameter.empty
    days = re.fullmatch(r"(\d+) days", cell)
    if days:
        return int(days.group(1)) * 24 * 3600
    if cell.startswith(("connection's", "AMC's")):  # left to the connection / to AMC
        return None
    literal = re.match(r"`([^`]*)`", cell)
    assert literal, f"cannot read the default {cell!r}"
    value = literal.group(1)
    return {"None": None, "True": True, "False": False, "[]": []}.get(value, value)


def same_default(code: Any, readme: Any) -> bool:
    if readme is inspect.Parameter.empty or code is inspect.Parameter.empty:
        return code is readme
    if isinstance(readme, str) and not isinstance(code, str):
        return str(code) == readme or (isinstance(code, float) and code == float(readme))
    return bool(code == readme)


def class_name(value: Any) -> str | None:
    return value.__name__ if isinstance(value, type) else None


TABLES_WITH_DEFAULTS = [
    (AmcCreateExecutionOperator, "`AmcCreateExecutionOperator`"),
    (AmcExecutionSensor, "`AmcExecutionSensor`"),
]
TABLES_WITHOUT_DEFAULTS = [
    (AmcUpsertWorkflowOperator, "`AmcUpsertWorkflowOperator`"),
    (AmcToPostgresOperator, "`AmcToPostgresOperator`"),
]
ALL_TABLES = TABLES_WITH_DEFAULTS + TABLES_WITHOUT_DEFAULTS
#: Sensor arguments whose default is decided when the sensor is built (``**kwargs`` or configuration).
RESOLVED_ON_THE_INSTANCE = ("deferrable", "poke_interval", "timeout")


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text()


@pytest.mark.parametrize(("cls", "heading"), ALL_TABLES, ids=class_name)
def test_every_argument_has_a_row_and_every_row_an_argument(readme: str, cls: type, heading: str) -> None:
    rows = documented(first_table(section(readme, heading)))
    params = init_params(cls)
    missing = sorted(set(params) - set(rows))
    assert not missing, f"{cls.__name__} arguments without a README row: {missing}"
    stale = sorted(set(rows) - set(params) - inherited_names(cls))
    assert not stale, f"README rows of {cls.__name__} naming no argument: {stale}"


@pytest.mark.parametrize(("cls", "heading"), TABLES_WITH_DEFAULTS, ids=class_name)
def test_defaults_and_templated_marks_are_the_codes(readme: str, cls: type, heading: str) -> None:
    params = init_params(cls)
    wrong = []
    for name, (_, default, templated, *_rest) in documented(first_table(section(readme, heading))).items():
        if name not in params or name in RESOLVED_ON_THE_INSTANCE:  # checked on an instance below
            continue
        if not same_default(params[name].default, readme_default(default)):
            wrong.append(f"{name}: README default {default!r}, code {params[name].default!r}")
        if templated.startswith("✓") != (name in cls.template_fields):  # type: ignore[attr-defined]
            wrong.append(f"{name}: README templated={templated!r}, template_fields {cls.template_fields}")  # type: ignore[attr-defined]
    assert not wrong, f"{cls.__name__}: " + "; ".join(wrong)


def test_the_sensors_resolved_defaults_are_the_codes(readme: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``poke_interval`` and ``timeout`` come through ``**kwargs`` and ``deferrable`` from the
    configuration (none set here): check them on an instance."""
    for name in ("AIRFLOW__AMC__DEFAULT_DEFERRABLE", "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"):
        monkeypatch.delenv(name, raising=False)
    rows = documented(first_table(section(readme, "`AmcExecutionSensor`")))
    sensor = AmcExecutionSensor(task_id="wait", execution_id="e")
    for name in RESOLVED_ON_THE_INSTANCE:
        assert same_default(getattr(sensor, name), readme_default(rows[name][1])), name


@pytest.mark.parametrize(("cls", "heading"), TABLES_WITHOUT_DEFAULTS, ids=class_name)
def test_defaults_stated_in_the_meaning_column_are_the_codes(readme: str, cls: type, heading: str) -> None:
    """``(default `x`)`` in a row, and ``name` (300 s)`` after a name, state the code's default."""
    params = init_params(cls)
    wrong = []
    for row in first_table(section(readme, heading)):
        names = [n for n in NAME.findall(row[0]) if n in params]
        stated = re.search(r"\(default `([^`]*)`", row[-1])
        if stated and len(names) == 1 and not same_default(params[names[0]].default, stated.group(1)):
            wrong.append(f"{names[0]}: README {stated.group(1)!r}, code {params[names[0]].default!r}")
        for name, seconds in re.findall(r"`([a-z_]+)` \((\d+) s\)", row[0]):
            if params[name].default != float(seconds):
                wrong.append(f"{name}: README {seconds} s, code {params[name].default!r}")
    assert not wrong, f"{cls.__name__}: " + "; ".join(wrong)


def test_the_triggers_signature_line_names_every_argument(readme: str) -> None:
    match = re.search(r"`airflow_provider_amc\.triggers\.amc\.AmcExecutionTrigger\(([^)]*)\)`", readme)
    assert match, "README lost the AmcExecutionTrigger(...) signature line"
    listed = [name.strip() for name in match.group(1).split(",")]
    assert listed == list(init_params(AmcExecutionTrigger))


def test_the_connection_table_lists_exactly_the_known_extras(readme: str) -> None:
    rows = first_table(section(readme, "The connection (conn_type `amc`)"))
    extras = [name for row in rows if row[0].startswith("Extra") for name in NAME.findall(row[0])]
    assert sorted(extras) == sorted(KNOWN_EXTRA_FIELDS)


def test_every_hook_helper_the_readme_names_exists(readme: str) -> None:
    text = section(readme, "Hook helpers")
    names = set(re.findall(r"`([a-z_][a-z0-9_]*)[(`]", text))
    assert names, "no hook helper named"
    missing = sorted(name for name in names if not callable(getattr(AmcHook, name, None)))
    assert not missing, f"README names AmcHook helpers that do not exist: {missing}"
