"""AmcExecutionSensor(start_from_trigger=True): the trigger Airflow's scheduler creates, its
serialization into the DAG, the templates the triggerer renders, and the worker's completion.

AMC is mocked at the HTTP level (requests-mock); no execution table unless a test says so.
"""

from __future__ import annotations

from airflow_env import FakeTaskInstance, amc_connection_env, apply_airflow_test_env, task_context

apply_airflow_test_env()

import json  # noqa: E402
from datetime import timedelta  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import Any  # noqa: E402

import pendulum  # noqa: E402
import pytest  # noqa: E402
import requests_mock as rm  # noqa: E402
from airflow.sdk import DAG, task  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout  # noqa: E402
from airflow.sdk.module_loading import import_string  # noqa: E402
from airflow.serialization.decoders import smart_decode_trigger_kwargs  # noqa: E402
from airflow.serialization.serialized_objects import DagSerialization  # noqa: E402

from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator  # noqa: E402
from airflow_provider_amc.sensors.amc import AmcExecutionSensor, triggerer_template  # noqa: E402
from airflow_provider_amc.triggers.amc import AmcExecutionTrigger  # noqa: E402

API = "https://amc.sfromt.test"
INSTANCE = "amcsfrt0001"
EXECUTION_ID = "11111111-2222-4333-8444-555555555555"
EXECUTION_URL = f"{API}/amc/reporting/{INSTANCE}/workflowExecutions/{EXECUTION_ID}"
PULL = "{{ task_instance.xcom_pull(task_ids='submit', dag_id='sft', key='return_value', map_indexes=-1) }}"


@pytest.fixture
def amc_api(monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker) -> rm.Mocker:
    for name, value in amc_connection_env(API, instance_id=INSTANCE).items():
        monkeypatch.setenv(name, value)
    requests_mock.post(f"{API}/auth/o2/token", json={"access_token": "Atza|s", "expires_in": 3600})
    return requests_mock


def make_dag(**sensor_kwargs: Any) -> tuple[DAG, AmcExecutionSensor]:
    with DAG("sft", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        submit = AmcCreateExecutionOperator(task_id="submit", workflow_id="wf")
        sensor_kwargs.setdefault("execution_id", submit.output)
        sensor = AmcExecutionSensor(task_id="wait", start_from_trigger=True, timeout=3600, **sensor_kwargs)
    return dag, sensor


# ---- the arguments ----------------------------------------------------------------------------------
def test_off_by_default() -> None:
    sensor = AmcExecutionSensor(task_id="wait", execution_id=EXECUTION_ID)
    assert sensor.start_from_trigger is False
    assert sensor.start_trigger_args is None
    assert AmcExecutionSensor.start_trigger_args is None  # nothing for a mapped sensor to pick up


def test_start_trigger_args_name_the_trigger_and_the_completion() -> None:
    _, sensor = make_dag(poke_interval=30, max_poll_interval=600, postgres_conn_id=None)
    args = sensor.start_trigger_args
    assert args is not None
    assert import_string(args.trigger_cls) is AmcExecutionTrigger
    assert args.next_method == "execute_complete" and args.next_kwargs is None
    assert args.timeout == timedelta(seconds=3600 + 60)  # Airflow's backstop
    kwargs = args.trigger_kwargs or {}
    assert kwargs["execution_id"] == PULL  # rendered from submit's XCom in the triggerer
    assert kwargs["deadline_margin"] == 60  # the trigger times out itself first
    assert (kwargs["poll_interval"], kwargs["max_poll_interval"], kwargs["poll_backoff"]) == (30, 600, 1.5)
    assert kwargs["cancel_on_kill"] is True  # no execution table: the user's choice stands
    json.dumps(kwargs)
    trigger = AmcExecutionTrigger(**kwargs)  # every key is a trigger argument
    assert trigger.serialize()[1]["deadline_margin"] == 60


def test_with_an_execution_table_the_trigger_does_not_cancel_on_kill() -> None:
    _, sensor = make_dag(postgres_conn_id="postgres_default")
    assert sensor.start_trigger_args is not None
    assert (sensor.start_trigger_args.trigger_kwargs or {})["cancel_on_kill"] is False


def test_string_templates_pass_through() -> None:
    _, sensor = make_dag(execution_id="{{ params.eid }}", instance_id="{{ params.inst }}")
    kwargs = (sensor.start_trigger_args and sensor.start_trigger_args.trigger_kwargs) or {}
    assert (kwargs["execution_id"], kwargs["instance_id"]) == ("{{ params.eid }}", "{{ params.inst }}")


def test_not_deferrable_is_refused() -> None:
    with pytest.raises(ValueError, match=r"start_from_trigger=True needs deferrable=True"):
        make_dag(deferrable=False)


@pytest.mark.parametrize(
    "template",
    ["{{ ti.xcom_pull(task_ids='submit') }}", "{{ task_instance.xcom_pull('submit')[0] }}"],
)
def test_a_pull_of_all_map_indexes_is_refused(template: str) -> None:
    with pytest.raises(ValueError, match=r"execution_id: .*map_indexes=-1"):
        triggerer_template("execution_id", template)
    assert triggerer_template("execution_id", template.replace(")", ", map_indexes=-1)", 1))


def test_other_xcom_args_are_refused() -> None:
    with DAG("sft2", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):

        @task
        def ids() -> list[str]:
            return [EXECUTION_ID]

        mapped = AmcCreateExecutionOperator.partial(task_id="mapped", workflow_id="wf").expand(
            instance_id=["a", "b"]
        )
        with pytest.raises(ValueError, match=r"execution_id: .*not MapXComArg"):
            AmcExecutionSensor(task_id="w1", execution_id=ids().map(str), start_from_trigger=True)
        with pytest.raises(ValueError, match=r"execution_id: .*not mapped"):
            AmcExecutionSensor(task_id="w2", execution_id=mapped.output, start_from_trigger=True)


# ---- the serialized DAG (what the scheduler and the triggerer see) ---------------------------------
def test_serialized_dag_carries_the_start_trigger_args() -> None:
    dag, _ = make_dag()
    task_ = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("wait")
    assert task_.start_from_trigger is True
    args = task_.start_trigger_args
    assert args.trigger_cls.endswith("AmcExecutionTrigger") and args.next_method == "execute_complete"
    assert args.timeout == timedelta(seconds=3660)
    # The scheduler stores these kwargs in the trigger row; the triggerer decodes them like this.
    decoded = {
        k: smart_decode_trigger_kwargs(v) for k, v in smart_decode_trigger_kwargs(args.trigger_kwargs).items()
    }
    assert decoded["execution_id"] == PULL
    AmcExecutionTrigger(**decoded)


def test_a_mapped_sensor_falls_back_to_the_worker() -> None:
    with DAG("sft3", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        AmcExecutionSensor.partial(task_id="wait", start_from_trigger=True).expand(
            execution_id=[EXECUTION_ID, EXECUTION_ID]
        )
    task_ = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("wait")
    # TaskInstance.start_trigger_args reads task.start_trigger_args: None = deferred from a worker.
    assert task_.start_trigger_args is None


def test_the_triggerer_renders_the_ids_into_the_trigger() -> None:
    """Airflow's triggerer: trigger from the kwargs, ``task_instance`` set, then rendered."""
    _, sensor = make_dag(instance_id="{{ params.inst }}", amc_conn_id="{{ params.conn }}")
    assert sensor.start_trigger_args is not None
    trigger = AmcExecutionTrigger(**(sensor.start_trigger_args.trigger_kwargs or {}))
    pulled: list[dict[str, Any]] = []

    def xcom_pull(**kwargs: Any) -> str:
        pulled.append(kwargs)
        return EXECUTION_ID

    ti = SimpleNamespace(task=sensor, task_id="wait", xcom_pull=xcom_pull)
    trigger.task_instance = ti  # type: ignore[assignment]
    assert set(trigger.template_fields) == {"execution_id", "instance_id", "amc_conn_id"}
    trigger.render_template_fields({"task_instance": ti, "params": {"inst": INSTANCE, "conn": "amc_x"}})  # type: ignore[arg-type]
    assert (trigger.execution_id, trigger.instance_id, trigger.amc_conn_id) == (
        EXECUTION_ID,
        INSTANCE,
        "amc_x",
    )
    assert pulled == [{"task_ids": "submit", "dag_id": "sft", "key": "return_value", "map_indexes": -1}]


# ---- completion on the worker ------------------------------------------------------------------------
def test_a_bad_rendered_id_fails_on_the_worker_naming_the_field(amc_api: rm.Mocker) -> None:
    _, sensor = make_dag(postgres_conn_id=None)
    sensor.execution_id = "../not an id"  # as the worker rendered it
    event = {"status": "error", "execution_id": "../not an id", "message": "AmcConfigError: execution_id ..."}
    with pytest.raises(
        AirflowFailException, match=r"Invalid AmcExecutionSensor input: execution_id '\.\./not an id'"
    ):
        sensor.execute_complete(task_context(), event)
    assert amc_api.request_history == []


def test_the_triggers_timeout_event_is_a_sensor_timeout_that_can_cancel(amc_api: rm.Mocker) -> None:
    amc_api.put(EXECUTION_URL, json={})
    _, sensor = make_dag(postgres_conn_id=None, cancel_on_timeout=True, instance_id=INSTANCE)
    sensor.execution_id = EXECUTION_ID
    event = {"status": "timeout", "execution_id": EXECUTION_ID, "instance_id": INSTANCE, "message": "late"}
    with pytest.raises(AirflowSensorTimeout, match="late"):
        sensor.execute_complete(task_context(FakeTaskInstance()), event)
    assert [call.method for call in amc_api.request_history if call.url.startswith(EXECUTION_URL)] == ["PUT"]
