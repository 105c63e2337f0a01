"""The provider in the rest of a real Airflow 3.3 deployment: links, assets, OpenLineage, the form.

One stack (api-server, scheduler, dag-processor, triggerer; LocalExecutor) parsing the project's own
``dags/`` folder, with the OpenLineage provider's file transport writing every event to this
module's temp dir, against a module-scoped emulator and a fresh Postgres database.

* Links: while ``wait_for_execution`` is deferred, the REST API resolves its "AMC execution" link
  (from the connection's ``console_url_template``); after the run, "AMC results" points at the S3
  console location of the execution's ``outputS3URI``.
* Assets: each ``amc_daily_report`` run emits an asset event whose extra is the execution's
  metadata (compared with the execution row), and ``amc_report_consumer`` runs once per producer run.
* OpenLineage: the COMPLETE events of that real run carry the ExternalQuery facet, the SQL job facet
  of the upsert, the S3 output with schema and output statistics, and the loaded Postgres table.
* The trigger form in headless Chromium (``browser.py``): an invalid window bound is refused in
  words and creates no run; zone, window, PARQUET and parameter values filled in the form reach
  the execution row. Screenshots go to the test's temp dir.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from airflow_stack import AirflowStack, StackSpec, poll, scratch_database
from psycopg import sql
from psycopg.rows import dict_row

from airflow_env import amc_connection_env, connection_var, postgres_connection_env
from airflow_provider_amc.emulator.defaults import DEFAULT_INSTANCE_ID, DEMO_WORKFLOW_ID
from airflow_provider_amc.emulator.testing import EmulatorServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
MANUAL_DAG, DAILY_DAG, CONSUMER_DAG = "amc_manual_report", "amc_daily_report", "amc_report_consumer"
SUBMIT, WAIT, LOAD, UPSERT = "submit_execution", "wait_for_execution", "load_to_postgres", "upsert_workflow"
LOAD_TABLE = "amc_campaign_report"
ASSET_URI = f"amc://{DEFAULT_INSTANCE_ID}/{DEMO_WORKFLOW_ID}"
CONSOLE = "https://amc-console.example.test/{instance_id}/executions/{execution_id}?workflow={workflow_id}"
RUN_TIMEOUT = 300.0
#: RUNNING long enough that the test sees the sensor deferred before the execution ends.
PENDING_SECONDS, RUNNING_SECONDS = 2, 12


@pytest.fixture(scope="module")
def stack_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed=0, speed=1.0) as server:
        server.admin.script("*", pending_seconds=PENDING_SECONDS, running_seconds=RUNNING_SECONDS)
        yield server


@pytest.fixture(scope="module")
def records_db() -> Iterator[str]:
    with scratch_database("amc_eco") as name:
        yield name


@pytest.fixture(scope="module")
def lineage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("openlineage")


def _stack_env(fixture: Any) -> dict[str, str]:
    amc = amc_connection_env(fixture("stack_emulator").url)
    conn = json.loads(amc[connection_var("amc_default")])
    conn["extra"]["console_url_template"] = CONSOLE
    transport = {"type": "file", "log_file_path": str(fixture("lineage_dir") / "event"), "append": False}
    return {
        connection_var("amc_default"): json.dumps(conn),
        **postgres_connection_env(dsn=f"postgresql://postgres@127.0.0.1:5432/{fixture('records_db')}"),
        "AMC_POKE_INTERVAL": "2",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "amc-e2e",
    }


AIRFLOW_STACK = StackSpec(
    dags_folder=REPO / "dags",
    expect_dags=(MANUAL_DAG, DAILY_DAG, CONSUMER_DAG),
    env=_stack_env,
    pools={f"amc_{DEFAULT_INSTANCE_ID}": 10},
)


# ---- helpers -------------------------------------------------------------------------------------
def links(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> dict[str, str | None]:
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links"
    response = stack.api("GET", path)
    assert response.ok, response.text
    body = response.json()
    return dict(body.get("extra_links", body))


def execution_row(db: str, execution_id: str) -> dict[str, Any]:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}", row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT * FROM amc_executions WHERE execution_id = %s", (execution_id,)
        ).fetchall()
    assert len(rows) == 1, rows
    return rows[0]


def loaded_rows(db: str, execution_id: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE amc_execution_id = %s").format(sql.Identifier(LOAD_TABLE))
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}") as conn:
        row = conn.execute(query, (execution_id,)).fetchone()
    assert row is not None
    return int(row[0])


def state_of(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> str | None:
    return stack.task_instance(dag_id, run_id, task_id).get("state")


def lineage_events(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("event*"))]


def complete_event(events: list[dict[str, Any]], job: str, execution_id: str | None = None) -> dict[str, Any]:
    found = [
        event
        for event in events
        if event["eventType"] == "COMPLETE"
        and event["job"]["name"] == job
        and (
            execution_id is None
            or event["run"]["facets"].get("externalQuery", {}).get("externalQueryId") == execution_id
        )
    ]
    assert len(found) == 1, (
        f"{len(found)} COMPLETE events for {job} / {execution_id}: {[e['job'] for e in events]}"
    )
    return found[0]


# ---- 1. links on a deferred task instance --------------------------------------------------------
def test_links_resolve_while_deferred_and_after(airflow_stack: AirflowStack, records_db: str) -> None:
    airflow_stack.unpause(MANUAL_DAG)
    conf = {"time_window_start": "2026-03-01", "time_window_end": "2026-03-02", "output_format": "CSV"}
    run_id = airflow_stack.trigger_dag(MANUAL_DAG, conf=conf)
    poll(
        lambda: True if state_of(airflow_stack, MANUAL_DAG, run_id, WAIT) == "deferred" else None,
        timeout=RUN_TIMEOUT,
        interval=0.5,
        what="the sensor to be deferred",
    )
    execution_id = airflow_stack.xcom(MANUAL_DAG, run_id, SUBMIT)
    console = f"https://amc-console.example.test/{DEFAULT_INSTANCE_ID}/executions/{execution_id}?workflow={DEMO_WORKFLOW_ID}"
    deferred_links = links(airflow_stack, MANUAL_DAG, run_id, WAIT)
    assert state_of(airflow_stack, MANUAL_DAG, run_id, WAIT) == "deferred", "the run ended before the check"
    assert deferred_links["AMC execution"] == console
    assert not deferred_links.get("AMC results")  # AMC reports outputS3URI only once it SUCCEEDED
    assert links(airflow_stack, MANUAL_DAG, run_id, SUBMIT)["AMC execution"] == console

    assert airflow_stack.wait_for_run(MANUAL_DAG, run_id, timeout=RUN_TIMEOUT) == "success"
    row = execution_row(records_db, execution_id)
    bucket, key = row["output_location"].removeprefix("s3://").split("/", 1)
    results = urlsplit(str(links(airflow_stack, MANUAL_DAG, run_id, WAIT)["AMC results"]))
    assert (results.netloc, results.path) == ("s3.console.aws.amazon.com", f"/s3/buckets/{bucket}")
    assert parse_qs(results.query) == {"prefix": [key]}


# ---- 2. asset events, the consumer DAG and OpenLineage -------------------------------------------
def wait_for_consumer_runs(stack: AirflowStack, count: int) -> None:
    runs = poll(
        lambda: stack.dag_runs(CONSUMER_DAG) if len(stack.dag_runs(CONSUMER_DAG)) >= count else None,
        timeout=RUN_TIMEOUT,
        interval=1,
        what=f"consumer run {count}",
    )
    for run in runs:
        assert stack.wait_for_run(CONSUMER_DAG, run["dag_run_id"], timeout=RUN_TIMEOUT) == "success"


@pytest.fixture(scope="module")
def daily_runs(airflow_stack: AirflowStack) -> list[str]:
    """Two producer runs over past days, one after the other, each followed by its consumer run.

    Unpausing also schedules the latest interval (catchup=False); that run waits (deferred) for
    AMC's 48-hour data lag, so it emits no event during the test and is left out.
    """
    airflow_stack.unpause(CONSUMER_DAG)
    airflow_stack.unpause(DAILY_DAG)
    run_ids: list[str] = []
    for logical_date in ("2026-02-10T05:00:00Z", "2026-02-11T05:00:00Z"):
        run_ids.append(airflow_stack.trigger_dag(DAILY_DAG, logical_date=logical_date))
        state = airflow_stack.wait_for_run(DAILY_DAG, run_ids[-1], timeout=RUN_TIMEOUT)
        tasks = {t["task_id"]: t["state"] for t in airflow_stack.task_instances(DAILY_DAG, run_ids[-1])}
        assert state == "success", tasks
        wait_for_consumer_runs(airflow_stack, len(run_ids))
    return run_ids


def test_each_producer_run_emits_an_asset_event_with_the_execution(
    airflow_stack: AirflowStack, daily_runs: list[str], records_db: str
) -> None:
    body = airflow_stack._json(
        "GET",
        "/assets/events",
        "list asset events",
        params={"source_dag_id": DAILY_DAG, "order_by": "timestamp"},
    )
    events = body["asset_events"]
    assert [event["source_run_id"] for event in events] == daily_runs
    consumer_runs = airflow_stack.dag_runs(CONSUMER_DAG)
    assert len(consumer_runs) == len(daily_runs), "the consumer must run once per producer run"
    for run_id, event, consumer in zip(daily_runs, events, consumer_runs, strict=True):
        execution_id = airflow_stack.xcom(DAILY_DAG, run_id, SUBMIT)
        row = execution_row(records_db, execution_id)
        extra = event["extra"]
        assert event["uri"] == ASSET_URI and event["source_task_id"] == WAIT
        assert extra["execution_id"] == execution_id
        assert (extra["instance_id"], extra["workflow_id"]) == (DEFAULT_INSTANCE_ID, DEMO_WORKFLOW_ID)
        assert (extra["row_count"], extra["size_bytes"]) == (row["row_count"], row["size_bytes"])
        assert extra["output_location"] == row["output_location"]
        assert (extra["time_window"]["start"], extra["time_window"]["end"]) == (
            row["time_window_start"],
            row["time_window_end"],
        )
        assert extra["time_window"]["time_zone"] == "America/New_York"
        # The consumer saw exactly that event.
        assert airflow_stack.xcom(CONSUMER_DAG, consumer["dag_run_id"], "report_arrived") == [extra]


def test_openlineage_events_of_the_real_run_carry_the_facets(
    airflow_stack: AirflowStack, daily_runs: list[str], records_db: str, lineage_dir: Path
) -> None:
    events = lineage_events(lineage_dir)
    execution_id = airflow_stack.xcom(DAILY_DAG, daily_runs[0], SUBMIT)
    row = execution_row(records_db, execution_id)

    submit = complete_event(events, f"{DAILY_DAG}.{SUBMIT}", execution_id)
    assert submit["run"]["facets"]["externalQuery"]["source"] == "amc"

    wait = complete_event(events, f"{DAILY_DAG}.{WAIT}", execution_id)
    (output,) = wait["outputs"]
    bucket, key = row["output_location"].removeprefix("s3://").split("/", 1)
    assert (output["namespace"], output["name"]) == (f"s3://{bucket}", key)
    fields = output["facets"]["schema"]["fields"]
    assert [field["name"] for field in fields] == [column["name"] for column in row["output_columns"]]
    statistics = output["outputFacets"]["outputStatistics"]
    assert (statistics["rowCount"], statistics["size"]) == (row["row_count"], row["size_bytes"])

    load = complete_event(events, f"{DAILY_DAG}.{LOAD}", execution_id)
    (table,) = load["outputs"]
    assert (table["namespace"], table["name"]) == (
        "postgres://127.0.0.1:5432",
        f"{records_db}.public.{LOAD_TABLE}",
    )
    assert table["outputFacets"]["outputStatistics"]["rowCount"] == loaded_rows(records_db, execution_id) > 0
    assert [i["namespace"] for i in load["inputs"]] == [f"s3://{bucket}"]

    upserts = [
        e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"{DAILY_DAG}.{UPSERT}"
    ]
    assert upserts, "no COMPLETE event of the upsert task"
    query = upserts[0]["job"]["facets"]["sql"]["query"]
    assert query.startswith("SELECT") and "CUSTOM_PARAMETER('min_impressions')" in query


# ---- 4. the trigger form in a real browser --------------------------------------------------------
FORM_CONF = {
    "time_window_start": "2026-04-01",
    "time_window_end": "2026-04-03T06:00:00",
    "time_window_time_zone": "Asia/Tokyo",
    "output_format": "PARQUET",
    "parameter_values": {"min_impressions": 250},
}


TRIGGER_BUTTON = "//div[@role='dialog']//button[normalize-space()='Trigger']"


def open_trigger_form(driver: Any, stack: AirflowStack) -> None:
    """The DAG page, then its Trigger button: the form opens in a dialog."""
    driver.get(f"{stack.api_url}/dags/{MANUAL_DAG}")
    driver.find_element("xpath", "//button[normalize-space()='Trigger']").click()
    driver.find_element("xpath", TRIGGER_BUTTON)  # waits (implicitly) for the dialog
    driver.find_element("id", "element_time_window_start")


def fill_text(driver: Any, name: str, value: str) -> None:
    field = driver.find_element("id", f"element_{name}")
    field.clear()
    field.send_keys(value)


def choose(driver: Any, name: str, value: str) -> None:
    """Pick ``value`` in a drop-down (react-select): type to filter, Enter to take the match."""
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element("id", f"element_{name}")
    box.click()
    search = box.find_element("css selector", "input")
    search.send_keys(value)
    poll(
        lambda: (
            True
            if any(o.text == value for o in driver.find_elements("css selector", "[role=option]"))
            else None
        ),
        timeout=15,
        interval=0.2,
        what=f"option {value} of {name}",
    )
    search.send_keys(Keys.ENTER)
    assert driver.find_element("id", f"element_{name}").text.strip().startswith(value)


def fill_json(driver: Any, name: str, value: dict[str, Any]) -> None:
    """Type JSON into the form's code editor.

    The form re-formats the editor's text each time it becomes valid JSON (and moves the cursor),
    so the text typed stays invalid until the last key: a stray ``x`` before the first value,
    removed at the end. The editor closes brackets and quotes itself.
    """
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ((key, number),) = value.items()
    driver.find_element("id", f"element_{name}").click()
    actions = ActionChains(driver)
    actions.key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).send_keys(Keys.DELETE)
    actions.send_keys(f'{{"{key}": x{number}').perform()
    ActionChains(driver).send_keys(*([Keys.LEFT] * len(str(number))), Keys.BACKSPACE).perform()
    text = driver.find_element("id", f"element_{name}").text
    assert json.loads(text[text.index("{") :]) == value, text


def submit(driver: Any) -> None:
    driver.find_element("xpath", TRIGGER_BUTTON).click()


def page_text(driver: Any) -> str:
    return str(driver.find_element("tag name", "body").text)


def test_trigger_form_in_a_browser(
    airflow_stack: AirflowStack, stack_emulator: EmulatorServer, records_db: str, tmp_path: Path
) -> None:
    from browser import chromium

    airflow_stack.unpause(MANUAL_DAG)
    before = {run["dag_run_id"] for run in airflow_stack.dag_runs(MANUAL_DAG)}
    with chromium() as driver:
        # An invalid value: the form refuses it, in words, and no run is created.
        open_trigger_form(driver, airflow_stack)
        fill_text(driver, "time_window_start", "2026-4")
        submit(driver)
        refusal = poll(
            lambda: page_text(driver) if "too short" in page_text(driver) else None,
            timeout=30,
            interval=0.5,
            what="the form's refusal",
        )
        driver.save_screenshot(str(tmp_path / "trigger-form-refused.png"))
        assert "time_window_start" in refusal and "'2026-4' is too short" in refusal
        assert {run["dag_run_id"] for run in airflow_stack.dag_runs(MANUAL_DAG)} == before

        # Valid values: zone and format from the drop-downs, the window, the parameter values.
        open_trigger_form(driver, airflow_stack)
        fill_text(driver, "time_window_start", FORM_CONF["time_window_start"])
        fill_text(driver, "time_window_end", FORM_CONF["time_window_end"])
        choose(driver, "time_window_time_zone", FORM_CONF["time_window_time_zone"])
        choose(driver, "output_format", FORM_CONF["output_format"])
        fill_json(driver, "parameter_values", FORM_CONF["parameter_values"])
        driver.save_screenshot(str(tmp_path / "trigger-form-filled.png"))
        submit(driver)
        new_runs = poll(
            lambda: ({r["dag_run_id"] for r in airflow_stack.dag_runs(MANUAL_DAG)} - before) or None,
            timeout=60,
            interval=0.5,
            what="the run the form triggered",
        )
        (run_id,) = new_runs
        driver.save_screenshot(str(tmp_path / "trigger-form-submitted.png"))

    conf = airflow_stack.dag_run(MANUAL_DAG, run_id)["conf"]
    assert {key: conf[key] for key in FORM_CONF} == FORM_CONF
    assert airflow_stack.wait_for_run(MANUAL_DAG, run_id, timeout=RUN_TIMEOUT) == "success"
    execution_id = airflow_stack.xcom(MANUAL_DAG, run_id, SUBMIT)
    row = execution_row(records_db, execution_id)
    assert (row["time_window_start"], row["time_window_end"], row["time_window_time_zone"]) == (
        "2026-04-01T00:00:00",
        "2026-04-03T06:00:00",
        "Asia/Tokyo",
    )
    assert (row["output_format"], row["parameter_values"]) == ("PARQUET", {"min_impressions": 250})
    assert (row["dag_id"], row["run_id"], row["status"]) == (MANUAL_DAG, run_id, "completed")
    assert stack_emulator.admin.result_summary(DEFAULT_INSTANCE_ID, execution_id)["format"] == "PARQUET"
    assert sorted(path.name for path in tmp_path.glob("*.png")) == [
        "trigger-form-filled.png",
        "trigger-form-refused.png",
        "trigger-form-submitted.png",
    ]
