"""Generated bad input (windows, zones, formats, ids, parameter values, connection extras) and
hostile identifiers: each is either valid or rejected with an error naming the field, and an
invalid one never reaches HTTP (requests-mock sees zero calls) nor SQL."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import available_timezones

import pytest
import requests_mock as rm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import context
from reliability_registry import record

from airflow_env import amc_connection_env, connection_var
from airflow_provider_amc.client import REGIONS
from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator
from airflow_provider_amc.records import ExecutionRecords
from airflow_provider_amc.sensors.amc import AmcExecutionSensor

API = "https://amc.reliability.test"
INSTANCE = "amcrel0001"
CREATE_URL = re.compile(re.escape(API) + r"/amc/reporting/[^/]+/workflowExecutions$")
EXECUTION_ID = "11111111-2222-4333-8444-555555555555"
FIELDS = (
    "workflow_id",
    "instance_id",
    "time_window_start",
    "time_window_end",
    "time_window_time_zone",
    "time_window_type",
    "output_format",
    "parameter_values",
    "table",
)
AMC_ID = re.compile(r"^[A-Za-z0-9._-]+$")
WALL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
ZONES = sorted(available_timezones())
WINDOW = {"time_window_start": "2026-03-01", "time_window_end": "2026-03-02"}
SETTINGS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
HOSTILE = [
    "wf'; DROP TABLE amc_executions; --",
    'wf"name',
    "../../workflows",
    "..",
    "wf/../x",
    "wf name",
    "wf\x00",
    "wörkflow",
    "工作流",
    "wf%2F..",
    "a" * 5000,
    "",
]


@pytest.fixture(autouse=True)
def fake_amc_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in amc_connection_env(API, instance_id=INSTANCE).items():
        monkeypatch.setenv(name, value)


@contextmanager
def amc_api() -> Iterator[rm.Mocker]:
    """AMC answering like production; anything else raises NoMockAddress."""
    with rm.Mocker() as mocker:
        for token_url in [f"{API}/auth/o2/token", *(region.token_url for region in REGIONS.values())]:
            mocker.post(token_url, json={"access_token": "Atza|x", "expires_in": 3600})
        mocker.post(
            CREATE_URL, json={"workflowExecutionId": EXECUTION_ID, "workflowId": "wf", "status": "PENDING"}
        )
        # The live executions of the request (listed before the create call) and the quota check.
        mocker.get(re.compile(CREATE_URL.pattern.rstrip("$") + r"\?"), json={"executions": []})
        yield mocker


def run_operator(**kwargs: Any) -> tuple[BaseException | None, list[dict[str, Any]], int]:
    """execute() against the mock: (error, create bodies sent, total HTTP calls)."""
    kwargs.setdefault("workflow_id", "wf")
    kwargs.setdefault("postgres_conn_id", None)
    with amc_api() as mocker:
        error: BaseException | None = None
        try:
            AmcCreateExecutionOperator(task_id="t", **kwargs).execute(context())
        except Exception as exc:
            error = exc
        bodies = [
            json.loads(call.text)
            for call in mocker.request_history
            if call.method == "POST" and CREATE_URL.match(call.url)
        ]
        return error, bodies, mocker.call_count


def check(field: str, must_fail: bool | None = None, **kwargs: Any) -> dict[str, Any] | None:
    """Valid (one create, returns its body) or rejected naming ``field`` with zero HTTP calls."""
    error, bodies, calls = run_operator(**kwargs)
    if error is None:
        assert must_fail is not True, f"{field}={kwargs.get(field)!r} was accepted"
        assert len(bodies) == 1
        record("valid_inputs")
        return bodies[0]
    assert must_fail is not False, f"{field}={kwargs.get(field)!r} was rejected: {error}"
    assert type(error).__name__ == "AirflowFailException", repr(error)
    assert field in str(error), f"error does not name {field}: {error}"
    assert calls == 0, f"{calls} HTTP call(s) made for invalid {field}"
    record("bad_inputs")
    return None


# ---- strategies -------------------------------------------------------------------------------
date_like = st.one_of(
    st.dates().map(str),
    st.datetimes().map(lambda d: d.isoformat(timespec="seconds")),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M")),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?\Z"),  # month 13, hour 25 ...
    st.text(max_size=20),
    st.sampled_from(["", " ", "yesterday", "2026-02-30", "2026-03-01T24:00:00", "01/03/2026"]),
)
zone_like = st.one_of(
    st.sampled_from(ZONES), st.text(max_size=30), st.sampled_from(["utc", "EST5", "+02:00"])
)


@SETTINGS
@given(start=date_like, end=date_like, zone=st.sampled_from(["UTC", "America/Los_Angeles", "Asia/Kolkata"]))
def test_generated_windows(start: str, end: str, zone: str) -> None:
    error, bodies, calls = run_operator(
        time_window_start=start, time_window_end=end, time_window_time_zone=zone
    )
    if error is None:  # accepted: AMC must get a well-formed, non-empty window
        body = bodies[0]
        assert WALL_TIME.match(body["timeWindowStart"]) and WALL_TIME.match(body["timeWindowEnd"])
        assert body["timeWindowStart"] < body["timeWindowEnd"]
        record("valid_inputs")
    else:
        assert re.search(r"time_window_(start|end)", str(error)), str(error)
        assert calls == 0
        record("bad_inputs")


@SETTINGS
@given(zone=zone_like)
def test_generated_time_zones(zone: str) -> None:
    body = check(
        "time_window_time_zone",
        must_fail=False if zone in ZONES else None,
        time_window_time_zone=zone,
        **WINDOW,
    )
    if body is not None:
        assert body["timeWindowTimeZone"] == zone.strip() or zone.strip() == ""


@SETTINGS
@given(fmt=st.one_of(st.text(max_size=12), st.sampled_from(["csv", " Parquet ", "JSON", "CSV;"])))
def test_generated_output_formats(fmt: str) -> None:
    valid = fmt.strip().upper() in ("CSV", "PARQUET")
    body = check("output_format", must_fail=not valid, output_format=fmt, **WINDOW)
    if body is not None:
        assert body["outputFormat"] == fmt.strip().upper()


@SETTINGS
@given(
    workflow_id=st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE), st.from_regex(r"\A[\w.-]{1,30}\Z"))
)
def test_generated_workflow_ids(workflow_id: str) -> None:
    must_fail = True if not AMC_ID.fullmatch(workflow_id) or workflow_id in (".", "..") else None
    body = check("workflow_id", must_fail=must_fail, workflow_id=workflow_id, **WINDOW)
    if body is not None:
        assert body["workflowId"] == workflow_id


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


def _json_ok(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


@SETTINGS
@given(
    values=st.one_of(
        st.dictionaries(st.text(max_size=8), json_values, max_size=4), json_values, st.text(max_size=20)
    )
)
def test_generated_parameter_values(values: Any) -> None:
    must_fail = None
    if values is not None and not isinstance(values, dict | str):  # numbers, lists, booleans
        must_fail = True
    if isinstance(values, dict) and ("" in values or not _json_ok(values)):
        must_fail = True
    body = check("parameter_values", must_fail=must_fail, parameter_values=values, **WINDOW)
    if body is not None and isinstance(values, dict) and values:
        assert body["parameterValues"] == values


def test_nan_parameter_is_rejected() -> None:
    check("parameter_values", must_fail=True, parameter_values={"x": math.nan}, **WINDOW)


# ---- connection extras ------------------------------------------------------------------------
EXTRA_CASES = st.one_of(
    st.tuples(
        st.just("region"), st.one_of(st.text(max_size=5), st.sampled_from(["NA", "eu", "Fe", "US", "APAC"]))
    ),
    st.tuples(
        st.just("token_url"), st.one_of(st.text(max_size=20), st.sampled_from(["ftp://x", "https://", "//x"]))
    ),
    st.tuples(st.just("advertiser_id"), st.sampled_from(["", None])),
    st.tuples(st.just("marketplace_id"), st.sampled_from(["", None])),
    st.tuples(st.just("refresh_token"), st.sampled_from(["", None])),
    st.tuples(st.just("instance_id"), st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12))),
)


@SETTINGS
@given(case=EXTRA_CASES)
def test_generated_connection_extras(case: tuple[str, Any]) -> None:
    field, value = case
    conn = json.loads(amc_connection_env(API, instance_id=INSTANCE)[connection_var("amc_default")])
    conn["extra"][field] = value
    os.environ[connection_var("amc_bad")] = json.dumps(conn)
    try:
        error, _bodies, calls = run_operator(amc_conn_id="amc_bad", **WINDOW)
    finally:
        del os.environ[connection_var("amc_bad")]
    if field in ("advertiser_id", "marketplace_id", "refresh_token"):
        assert error is not None  # required identities / secret
    # Surrounding whitespace is dropped (a value pasted from a console); blank means unset.
    if field == "region" and str(value).strip().upper() not in ("NA", "EU", "FE", ""):
        assert error is not None
    if field == "instance_id" and value.strip() and not AMC_ID.fullmatch(value.strip()):
        assert error is not None
    if error is None:
        record("valid_inputs")
        return
    assert field in str(error), str(error)
    assert calls == 0
    assert "Atzr|" not in str(error) and "emulator-client-secret" not in str(error)  # no secret echoed
    record("bad_inputs")


# ---- hostile identifiers and table names (injection) -----------------------------------------------
@pytest.mark.parametrize("value", [*HOSTILE, "wf\n"])
def test_hostile_workflow_ids(value: str) -> None:
    check("workflow_id", must_fail=True, workflow_id=value, **WINDOW)


@pytest.mark.parametrize("value", [*HOSTILE[:-1], "amc\n"])
def test_hostile_instance_ids(value: str) -> None:
    """(An empty instance_id means 'the connection's default', so it is not in this list.)"""
    check("instance_id", must_fail=True, instance_id=value, **WINDOW)


HOSTILE_TABLES = [
    'amc"; DROP TABLE amc_executions; --',
    "amc_executions; DELETE FROM x",
    "../amc",
    "public.amc.executions",
    "AMC_Executions",
    "tablé",
    "a" * 64,
    "",
    "1table",
]


@pytest.mark.parametrize("table", [*HOSTILE_TABLES, "amc_executions\n"])
def test_hostile_table_name_rejected_by_records_before_sql(table: str) -> None:
    with pytest.raises(ValueError, match="table"):
        ExecutionRecords(postgres_conn_id="no_such_connection", table=table)  # no connection is made
    record("bad_inputs")


@pytest.mark.parametrize("table", HOSTILE_TABLES[:3], ids=range(3))
def test_hostile_table_name_rejected_by_operator_before_http(table: str) -> None:
    check("table", must_fail=True, table=table, postgres_conn_id="no_such_connection", **WINDOW)


@pytest.mark.parametrize("value", ["../../workflows", "x'; DROP TABLE t;--", "..", "a" * 5000], ids=range(4))
def test_hostile_execution_id_rejected_by_sensor_before_http(value: str) -> None:
    with amc_api() as mocker:
        with pytest.raises(Exception, match="execution_id") as info:
            AmcExecutionSensor(task_id="s", execution_id=value, postgres_conn_id=None).execute(context())
        assert mocker.call_count == 0, info.value
    record("bad_inputs")
