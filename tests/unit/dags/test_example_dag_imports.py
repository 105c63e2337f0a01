"""The example DAGs (``dags/``) import without errors; the fan-out DAG's targets and pools; the
manual DAG's form defaults from the environment.

The fan-out DAG builds one mapped task group per pool from the Variable ``amc_fanout_targets``
when its file is parsed (Airflow puts a task instance in its task's pool, so a pool cannot be a
mapped argument): these tests parse the file with different Variable values (set through the
``AIRFLOW_VAR_AMC_FANOUT_TARGETS`` environment variable, the first place Airflow looks).
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag

REPO = Path(__file__).resolve().parents[3]
DAGS = REPO / "dags"
FANOUT = DAGS / "amc_fanout_report.py"
TASKS = ("submit_execution", "wait_for_execution", "load_to_postgres")


def fanout_dag(monkeypatch: pytest.MonkeyPatch, targets: Any | None) -> Any:
    if targets is None:
        monkeypatch.delenv("AIRFLOW_VAR_AMC_FANOUT_TARGETS", raising=False)
    else:
        monkeypatch.setenv("AIRFLOW_VAR_AMC_FANOUT_TARGETS", json.dumps(targets))
    return runpy.run_path(str(FANOUT), run_name="fanout_dag")["dag"]


def pools_of(dag: Any) -> dict[str, str]:
    return {task.task_id: task.pool for task in dag.tasks}


def test_every_example_dag_imports_without_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_VAR_AMC_FANOUT_TARGETS", raising=False)
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert {"amc_daily_report", "amc_manual_report", "amc_report_consumer", "amc_fanout_report"} <= set(
        bag.dag_ids
    )


def test_fanout_default_targets_are_the_emulators_two_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = fanout_dag(monkeypatch, None)
    expected = {}
    for instance in ("amcdemo0001", "amcdemo0002"):
        group = f"report_amc_{instance}"
        expected |= {f"{group}.{task}": f"amc_{instance}" for task in TASKS[:2]}
        expected[f"{group}.load_to_postgres"] = "default_pool"
    assert pools_of(dag) == expected
    group = dag.task_group_dict["report_amc_amcdemo0001"]
    assert [dict(kwargs) for kwargs in group._expand_input.value] == [
        {"amc_conn_id": "amc_default", "instance_id": "amcdemo0001"}
    ]


def test_fanout_pairs_sharing_a_pool_are_mapped_in_one_group(monkeypatch: pytest.MonkeyPatch) -> None:
    targets = [
        {"amc_conn_id": "amc_us", "instance_id": "amcus0001", "pool": "amc_shared"},
        {"amc_conn_id": "amc_eu", "instance_id": "amceu0001", "pool": "amc_shared"},
        {"amc_conn_id": "amc_eu", "instance_id": "amceu0002"},
    ]
    dag = fanout_dag(monkeypatch, targets)
    assert {tid: pool for tid, pool in pools_of(dag).items() if tid.endswith("submit_execution")} == {
        "report_amc_shared.submit_execution": "amc_shared",
        "report_amc_amceu0002.submit_execution": "amc_amceu0002",
    }
    shared = dag.task_group_dict["report_amc_shared"]._expand_input.value
    assert [(pair["amc_conn_id"], pair["instance_id"]) for pair in shared] == [
        ("amc_us", "amcus0001"),
        ("amc_eu", "amceu0001"),
    ]


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([], r"amc_fanout_targets must be a non-empty JSON list"),
        ({"amc_conn_id": "a"}, r"amc_fanout_targets must be a non-empty JSON list"),
        (
            [{"amc_conn_id": "a", "instance_id": "i", "region": "eu"}],
            r"amc_fanout_targets\[0\] must be an object",
        ),
        ([{"instance_id": "i"}], r"amc_fanout_targets\[0\]\.amc_conn_id must match"),
        (
            [{"amc_conn_id": "a", "instance_id": "i"}, {"amc_conn_id": "a", "instance_id": "x y"}],
            r"amc_fanout_targets\[1\]\.instance_id must match .* got 'x y'",
        ),
        ([{"amc_conn_id": "a", "instance_id": "i", "pool": ""}], r"\[0\]\.pool must match"),
        ([{"amc_conn_id": "a", "instance_id": "i"}] * 2, r"amc_fanout_targets\[1\] repeats the pair"),
    ],
)
def test_fanout_bad_targets_fail_the_import_naming_the_entry(
    monkeypatch: pytest.MonkeyPatch, targets: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fanout_dag(monkeypatch, targets)


@pytest.mark.parametrize("raw", ['[{"amc_conn_id": "a", "instance_id": "i"}', "amc_us:amcus0001", ""])
def test_fanout_targets_that_are_not_json_fail_the_import_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    """A typo in the Variable (a missing bracket, a plain string) names the Variable, not only
    ``Expecting value: line 1 column 1``."""
    monkeypatch.setenv("AIRFLOW_VAR_AMC_FANOUT_TARGETS", raw)
    with pytest.raises(ValueError, match=r"Variable amc_fanout_targets is not valid JSON .*a JSON list"):
        runpy.run_path(str(FANOUT), run_name="fanout_dag")


# ---- the manual DAG's defaults come from the same environment variables as the daily DAG's --------
MANUAL = DAGS / "amc_manual_report.py"


def manual_dag(monkeypatch: pytest.MonkeyPatch, **env: str | None) -> Any:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return runpy.run_path(str(MANUAL), run_name="manual_dag")["dag"]


def test_manual_dag_time_zone_defaults_to_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = manual_dag(monkeypatch, AMC_TIME_ZONE=None)
    assert dag.params["time_window_time_zone"] == "UTC"


def test_manual_dag_reads_amc_time_zone_like_the_daily_dag(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"AMC_TIME_ZONE": "Europe/Berlin", "AMC_INSTANCE_ID": "amcx1", "AMC_WORKFLOW_ID": "wf1"}
    dag = manual_dag(monkeypatch, **env)
    assert dag.params["time_window_time_zone"] == "Europe/Berlin"
    assert dag.params["instance_id"] == "amcx1"
    assert dag.params["workflow_id"] == "wf1"


def test_manual_dag_refuses_an_amc_time_zone_that_is_no_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"AMC_TIME_ZONE must be an IANA time zone .* got 'Mars/Olympus'"):
        manual_dag(monkeypatch, AMC_TIME_ZONE="Mars/Olympus")
