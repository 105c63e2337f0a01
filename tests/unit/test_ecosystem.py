"""Links, the deferrable default, lineage naming and asset extras: the pure parts."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from airflow.sdk import Asset, AssetAlias

from airflow_provider_amc import links
from airflow_provider_amc.assets import asset_extra, publish_asset_events
from airflow_provider_amc.lineage import (
    ExecutionLineage,
    execution_lineage,
    operator_lineage,
    s3_dataset_name,
)

IDS = {
    "instance_id": "amc inst/1",
    "execution_id": "e-1",
    "workflow_id": "wf",
    "advertiser_id": "ADV",
    "marketplace_id": "MKT",
    "region": "EU",
}


# ---- links ----------------------------------------------------------------------------------------
def test_console_url_fills_and_quotes_every_placeholder() -> None:
    template = (
        "https://c.test/{region}/{advertiser_id}/{marketplace_id}/{instance_id}/{workflow_id}/{execution_id}"
    )
    assert links.console_url(template, IDS) == "https://c.test/EU/ADV/MKT/amc%20inst%2F1/wf/e-1"


def test_no_template_no_link() -> None:
    assert links.console_url(None, IDS) == ""
    assert links.console_url("", IDS) == ""


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("https://c.test/{executionId}", "unknown placeholder.*executionId"),
        ("https://c.test/{execution_id", "not a valid template"),
        ("ftp://c.test/{execution_id}", "http"),
        ("c.test/{execution_id}", "http"),
    ],
)
def test_bad_templates_name_the_field(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"console_url_template.*{message}|{message}.*console_url_template"):
        links.check_console_url_template(template)


@pytest.mark.parametrize(
    ("uri", "url"),
    [
        (
            "s3://bucket/a/b=c/file.csv",
            "https://s3.console.aws.amazon.com/s3/buckets/bucket?prefix=a/b%3Dc/file.csv",
        ),
        ("s3://bucket", "https://s3.console.aws.amazon.com/s3/buckets/bucket"),
        ("N/A", ""),
        (None, ""),
        ("https://bucket.s3.amazonaws.com/x", ""),
        ("s3:///nobucket", ""),
    ],
)
def test_s3_console_url(uri: str | None, url: str) -> None:
    assert links.s3_console_url(uri) == url


class RecordingTi:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_push_execution_links_skips_unknown_urls() -> None:
    ti = RecordingTi()
    links.push_execution_links({"ti": ti}, console_template=None, ids=IDS, output_s3_uri="N/A")  # type: ignore[typeddict-item]
    assert ti.pushed == {}
    links.push_execution_links(
        {"ti": ti},  # type: ignore[typeddict-item]
        console_template="https://c.test/{execution_id}",
        ids=IDS,
        output_s3_uri="s3://b/k",
    )
    assert ti.pushed == {
        links.EXECUTION_URL_KEY: "https://c.test/e-1",
        links.RESULTS_URL_KEY: "https://s3.console.aws.amazon.com/s3/buckets/b?prefix=k",
    }


@pytest.mark.parametrize(
    ("link", "key"),
    [(links.AmcExecutionLink(), links.EXECUTION_URL_KEY), (links.AmcResultsLink(), links.RESULTS_URL_KEY)],
)
def test_links_prefer_this_run_then_xcom(link: Any, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from airflow.providers.common.compat.sdk import XCom

    asked: list[str] = []
    stored = {key: "https://stored.test/"}

    def get_value(*, ti_key: Any, key: str) -> Any:
        asked.append(key)
        return stored.get(key)

    monkeypatch.setattr(XCom, "get_value", staticmethod(get_value))
    # This run published its URLs: no XCom read.
    this_run = SimpleNamespace(**{links.URLS_ATTRIBUTE: {key: "https://this-run.test/"}})
    assert link.get_link(this_run, ti_key=object()) == "https://this-run.test/"
    assert asked == []
    # A resumed instance that did not publish: the URL stored before the deferral.
    resumed = SimpleNamespace(_amc_execution_id="e-1")
    assert link.get_link(resumed, ti_key=object()) == "https://stored.test/"
    stored.clear()
    assert link.get_link(resumed, ti_key=object()) == ""
    # Nothing reached AMC in this run (e.g. a bad input): no link, XCom not asked.
    asked.clear()
    assert link.get_link(SimpleNamespace(), ti_key=object()) == ""
    assert asked == []


# ---- [amc] default_deferrable ------------------------------------------------------------------
def _default_deferrable(env: dict[str, str], tmp_path: Any) -> bool:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    clean.update(AIRFLOW_HOME=str(tmp_path), **env)
    out = subprocess.run(
        [sys.executable, "-c", "from airflow_provider_amc.config import default_deferrable as d; print(d())"],
        env=clean,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return out.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, True),  # neither set: the provider's default
        ({"AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "false"}, False),  # the core switch, set explicitly
        ({"AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "true"}, True),
        (
            {"AIRFLOW__AMC__DEFAULT_DEFERRABLE": "false", "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "true"},
            False,
        ),
        (
            {"AIRFLOW__AMC__DEFAULT_DEFERRABLE": "true", "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "false"},
            True,
        ),
    ],
)
def test_default_deferrable_resolution(env: dict[str, str], expected: bool, tmp_path: Any) -> None:
    assert _default_deferrable(env, tmp_path) is expected


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        # Airflow writes its defaults into a new airflow.cfg: that false must not turn deferral off.
        ("[operators]\ndefault_deferrable = false\n", True),
        ("[operators]\ndefault_deferrable = True\n", True),
        ("[amc]\ndefault_deferrable = False\n[operators]\ndefault_deferrable = false\n", False),
        ("[amc]\ndefault_deferrable = True\n", True),
    ],
)
def test_default_deferrable_reads_airflow_cfg(cfg: str, expected: bool, tmp_path: Any) -> None:
    (tmp_path / "airflow.cfg").write_text(cfg)
    assert _default_deferrable({}, tmp_path) is expected


def test_a_generated_airflow_cfg_keeps_the_sensor_deferrable(tmp_path: Any) -> None:
    """The airflow.cfg Airflow itself writes on first start (every default, uncommented)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "airflow", "config", "list"],
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert "default_deferrable = false" in (tmp_path / "airflow.cfg").read_text()
    assert _default_deferrable({}, tmp_path) is True


# ---- lineage ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "named"),
    [
        ("s3://bucket/a/b.csv", ("s3://bucket", "a/b.csv")),
        ("s3://bucket/prefix/", ("s3://bucket", "prefix")),
        ("s3://bucket", ("s3://bucket", "/")),
        ("N/A", None),
        (None, None),
        ("file:///tmp/x", None),
    ],
)
def test_s3_dataset_naming(uri: str | None, named: tuple[str, str] | None) -> None:
    assert s3_dataset_name(uri) == named


def test_no_s3_output_means_no_output_dataset() -> None:
    lineage = execution_lineage({"execution_id": "e-1", "output_s3_uri": "N/A", "row_count": 3})
    assert lineage == ExecutionLineage(execution_id="e-1")
    built = operator_lineage(lineage)
    assert built.outputs == [] and built.run_facets["externalQuery"].externalQueryId == "e-1"


def test_sql_becomes_a_sql_job_facet() -> None:
    built = operator_lineage(ExecutionLineage(sql="SELECT 1"))
    assert built.job_facets["sql"].query == "SELECT 1"
    assert "externalQuery" not in built.run_facets


def test_nothing_recorded_gives_empty_lineage() -> None:
    built = operator_lineage(None)
    assert (built.inputs, built.outputs, built.run_facets, built.job_facets) == ([], [], {}, {})


# ---- assets -------------------------------------------------------------------------------------
class Accessor:
    def __init__(self) -> None:
        self.extra: dict[str, Any] = {}


def test_only_asset_outlets_get_the_extra() -> None:
    report, alias = Asset("amc://i/report"), AssetAlias("amc-alias")
    events: dict[Any, Accessor] = {report: Accessor()}
    metadata = {"execution_id": "e-1", "row_count": 2, "files": ["big list"], "status": "completed"}
    published = publish_asset_events(
        [report, alias, "not an asset"], {"outlet_events": events}, asset_extra(metadata)
    )  # type: ignore[arg-type]
    assert published == 1
    assert events[report].extra == {"execution_id": "e-1", "row_count": 2}


def test_no_outlets_touch_nothing() -> None:
    assert publish_asset_events(None, {}, {"x": 1}) == 0  # type: ignore[arg-type]
    assert publish_asset_events([], {}, {"x": 1}) == 0  # type: ignore[arg-type]


# ---- window length ------------------------------------------------------------------------------
def test_windows_longer_than_retention_are_warned_about_not_refused() -> None:
    from airflow_provider_amc.time_window import AmcTimeWindow, window_length_warning

    assert (
        window_length_warning(AmcTimeWindow("EXPLICIT", "UTC", "2025-01-01T00:00:00", "2026-01-31T00:00:00"))
        is None
    )
    long = window_length_warning(
        AmcTimeWindow("EXPLICIT", "UTC", "2025-01-01T00:00:00", "2026-02-02T00:00:00")
    )
    assert long is not None and "397 days" in long and "13 months" in long
    assert window_length_warning(AmcTimeWindow("ALL", "UTC")) is None
