"""Fan-out AMC report: one saved workflow over several AMC instances and accounts, into one table.

- Targets: the Airflow Variable ``amc_fanout_targets``, a JSON list of ``(connection, instance)``
  pairs, e.g. ``[{"amc_conn_id": "amc_us", "instance_id": "amcus0001"}, {"amc_conn_id": "amc_eu",
  "instance_id": "amceu0001", "pool": "amc_eu"}]`` (``pool`` is optional, default
  ``amc_<instance_id>``). Without the Variable: the local emulator's two instances through
  ``amc_default``. Set it with ``airflow variables set amc_fanout_targets '[...]'`` or the
  environment variable ``AIRFLOW_VAR_AMC_FANOUT_TARGETS``.
- Dynamic task mapping: the task group ``report_<pool>`` (submit -> wait -> load) is mapped with
  ``expand_kwargs`` over the pairs of that pool, one mapped group instance per pair; inside it the
  wait and the load take the execution id of their own map index.
- Each instance limited by its own pool: Airflow gives a task instance the pool of its *task* when
  the scheduler creates it; a ``pool`` passed through ``expand``/``expand_kwargs`` reaches only the
  operator on the worker (Airflow 3.3.2: every mapped task instance stays in the task's pool). So
  the DAG has one mapped group per pool, built from the Variable when the file is parsed (that is
  why the targets are a Variable and not a run Param), and ``submit_execution`` and
  ``wait_for_execution`` of that group run in it. Create each pool before the first run, with
  ``--include-deferred`` so the deferred wait keeps its slot while AMC runs the execution, and at
  most the 10 slots AMC runs at once per instance::

      airflow pools set amc_amcdemo0001 10 "AMC instance amcdemo0001" --include-deferred

  (or ``airflow pools import pools.json``). A task in a pool that does not exist never runs.
- One results table, ``amc_fanout_report``: each row carries ``amc_execution_id`` and
  ``amc_instance_id``; re-running a day replaces that day's rows of the same instance only.
- Schedule: daily over the UTC day (``CronDataIntervalTimetable``); each run waits (deferred) until
  its day is ``AMC_MIN_DATA_AGE_HOURS`` (48) hours old, as ``amc_daily_report`` does.

Other settings through environment variables: AMC_WORKFLOW_ID, AMC_FANOUT_TABLE, AMC_POKE_INTERVAL,
AMC_MIN_DATA_AGE_HOURS.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Variable, task_group

from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator
from airflow_provider_amc.sensors.amc import AmcExecutionSensor
from airflow_provider_amc.transfers.amc_to_postgres import AmcToPostgresOperator

TARGETS_VARIABLE = "amc_fanout_targets"
#: The emulator's two seeded instances, both reached through ``amc_default``.
DEFAULT_TARGETS = [
    {"amc_conn_id": "amc_default", "instance_id": "amcdemo0001"},
    {"amc_conn_id": "amc_default", "instance_id": "amcdemo0002"},
]
WORKFLOW_ID = os.environ.get("AMC_WORKFLOW_ID", "demo_campaign_report")
TABLE = os.environ.get("AMC_FANOUT_TABLE", "amc_fanout_report")
POKE_INTERVAL = float(os.environ.get("AMC_POKE_INTERVAL", "300"))
MIN_DATA_AGE = timedelta(hours=float(os.environ.get("AMC_MIN_DATA_AGE_HOURS", "48")))
NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
TARGET_FIELDS = ("amc_conn_id", "instance_id", "pool")


def parse_targets(raw: Any) -> dict[str, list[dict[str, str]]]:
    """The Variable's pairs grouped by pool (``pool -> [{amc_conn_id, instance_id}, ...]``); a bad
    value raises ``ValueError`` naming the Variable, the entry and the field (a DAG import error)."""
    try:
        targets = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise ValueError(
            f"Variable {TARGETS_VARIABLE} is not valid JSON ({exc}): it must be a JSON list of "
            f'{{"amc_conn_id": ..., "instance_id": ..., "pool"?: ...}} objects, got {raw!r}'
        ) from None
    if not isinstance(targets, list) or not targets:
        raise ValueError(f"Variable {TARGETS_VARIABLE} must be a non-empty JSON list, got {raw!r}")
    lanes: dict[str, list[dict[str, str]]] = {}
    seen: set[tuple[str, str]] = set()
    for index, target in enumerate(targets):
        where = f"Variable {TARGETS_VARIABLE}[{index}]"
        if not isinstance(target, dict) or set(target) - set(TARGET_FIELDS):
            raise ValueError(
                f"{where} must be an object with the keys {', '.join(TARGET_FIELDS)}, got {target!r}"
            )
        pair = {"amc_conn_id": target.get("amc_conn_id"), "instance_id": target.get("instance_id")}
        pool = target.get("pool", f"amc_{pair['instance_id']}")
        for field, value in (*pair.items(), ("pool", pool)):
            if not isinstance(value, str) or not NAME.fullmatch(value):
                raise ValueError(f"{where}.{field} must match {NAME.pattern}, got {value!r}")
        if (key := (pair["amc_conn_id"], pair["instance_id"])) in seen:
            raise ValueError(f"{where} repeats the pair {key}")
        seen.add(key)
        lanes.setdefault(pool, []).append(pair)
    return lanes


LANES = parse_targets(Variable.get(TARGETS_VARIABLE, default=DEFAULT_TARGETS))

with DAG(
    dag_id="amc_fanout_report",
    description="One AMC saved workflow over several instances and accounts, into one table",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=3,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
    tags=["amc", "example"],
) as dag:

    @task_group
    def report(amc_conn_id: str, instance_id: str, pool: str) -> None:
        """One instance's run: submit, wait deferred in the instance's pool, load into ``TABLE``."""
        target: dict[str, Any] = {"amc_conn_id": amc_conn_id, "instance_id": instance_id}  # per map index
        submit = AmcCreateExecutionOperator(
            task_id="submit_execution",
            workflow_id=WORKFLOW_ID,
            **target,
            output_format="CSV",
            min_data_age=MIN_DATA_AGE,
            pool=pool,
        )
        wait = AmcExecutionSensor(
            task_id="wait_for_execution",
            execution_id=submit.output,
            **target,
            deferrable=True,
            poke_interval=POKE_INTERVAL,
            timeout=int(timedelta(hours=12).total_seconds()),
            pool=pool,
        )
        load = AmcToPostgresOperator(
            task_id="load_to_postgres",
            execution_id=submit.output,
            **target,
            table=TABLE,
        )
        wait >> load

    for lane_pool, pairs in LANES.items():
        # ``pool`` is partial (a plain string when the DAG is parsed); the pairs are mapped.
        report.override(group_id=f"report_{lane_pool}").partial(pool=lane_pool).expand_kwargs(pairs)

if __name__ == "__main__":
    dag.test()
