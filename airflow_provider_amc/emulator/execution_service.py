"""Execution operations on the state: create, get, list, cancel, download URLs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow_provider_amc.emulator import validation, windows
from airflow_provider_amc.emulator.executions import CANCELLED, PENDING, RUNNING, SUCCEEDED, Execution
from airflow_provider_amc.emulator.quota_day import current_quota_day
from airflow_provider_amc.emulator.responses import ApiError, bad_request
from airflow_provider_amc.emulator.results import ResultSpec, default_row_count, result_seed
from airflow_provider_amc.emulator.state import EmulatorState, Instance, paginate


def _workflow_for(instance: Instance, body: dict[str, Any], new_id: str) -> tuple[str, str, str | None]:
    """``(workflow_id, sql, reject_reason)`` for a saved or ad-hoc workflow request."""
    saved_id = body.get("workflowId")
    inline = body.get("workflow")
    has_sql = isinstance(inline, dict) and bool(inline.get("sqlQuery"))
    if saved_id is not None and inline is not None:
        raise bad_request("Provide either workflowId or workflow (with sqlQuery), not both.")
    if saved_id is None and not has_sql:
        raise bad_request("Either workflowId or workflow.sqlQuery is required.")
    if saved_id is not None:
        validation.workflow_id(saved_id)
        saved = instance.workflows.get(saved_id)
        if saved is None:
            raise bad_request(f"Workflow with ID {saved_id} does not exist.")
        return saved_id, str(saved["sqlQuery"]), None
    assert isinstance(inline, dict)
    transient_id = f"transient_{new_id}"
    sql = inline["sqlQuery"]
    if not isinstance(sql, str):
        raise bad_request("workflow.sqlQuery must be a string.")
    params = validation.input_parameters(inline.get("inputParameters"))
    missing = validation.undeclared_parameters(sql, params)
    return transient_id, sql, validation.compile_error(transient_id, missing) if missing else None


def _charge_quota(state: EmulatorState, instance: Instance, now: datetime) -> None:
    day, next_day = current_quota_day(now, state.config.quota_day_start_seconds)
    used = instance.quota_used.get(day, 0)
    limit = state.config.daily_quota
    if used >= limit:
        status = state.config.quota_status
        headers = {"Retry-After": str(max(1, int((next_day - now).total_seconds())))} if status == 429 else {}
        raise ApiError(
            status,
            f"Daily limit of {limit} ad-hoc workflow executions reached for instance "
            f"{instance.instance_id} on {day.isoformat()} (UTC); the quota resets at "
            f"{windows.utc_z(next_day)}.",
            headers,
        )
    instance.quota_used[day] = used + 1


def create(state: EmulatorState, instance: Instance, raw: Any) -> Execution:
    body = validation.json_object(raw)
    now = state.settle(instance)
    new_id = state.new_uuid()
    workflow_id, sql, reject_reason = _workflow_for(instance, body, new_id)
    window = windows.resolve(
        body.get("timeWindowType"),
        body.get("timeWindowStart"),
        body.get("timeWindowEnd"),
        body.get("timeWindowTimeZone"),
        now,
        state.config.data_lag_hours,
    )
    params = validation.parameter_values(body.get("parameterValues"))
    timeout = validation.timeout_seconds(body.get("workflowExecutionTimeoutSeconds"))
    output_format = validation.output_format(body.get("outputFormat"))
    dry_run = validation.flag(body, "dryRun")
    flags = {
        name: validation.flag(body, name)
        for name in ("ignoreDataGaps", "requireSyntheticData", "disableAggregationControls")
    }
    if not dry_run:
        _charge_quota(state, instance, now)
    script = state.script_for(workflow_id)
    start, end = window.start_utc.replace(tzinfo=None), window.end_utc.replace(tzinfo=None)
    seed = result_seed(workflow_id, (start, end), params, state.seed)
    result = ResultSpec(
        seed=seed,
        rows=default_row_count(seed) if script.rows is None else script.rows,
        parts=script.parts,
        columns=script.columns,
        window_start=start,
        window_end=end,
        output_format="PARQUET" if output_format == "PARQUET" else "CSV",
    )
    execution = Execution(
        execution_id=new_id,
        instance_id=instance.instance_id,
        workflow_id=workflow_id,
        sql_query=sql,
        seq=state.next_seq(),
        create_time=now,  # exact: the lifecycle counts from it; responses show whole seconds
        window=window,
        explicit_window=window.window_type == "EXPLICIT",
        parameter_values=params,
        timeout_seconds=timeout,
        dry_run=dry_run,
        ignore_data_gaps=flags["ignoreDataGaps"],
        require_synthetic_data=flags["requireSyntheticData"],
        disable_aggregation_controls=flags["disableAggregationControls"],
        output_format=output_format,
        script=script,
        output_bucket=instance.bucket,
        result=result,
        reject_reason=reject_reason,
    )
    instance.executions[new_id] = execution
    instance.active.append(execution)
    return execution


def get(state: EmulatorState, instance: Instance, execution_id: str) -> Execution:
    state.settle(instance)
    execution = instance.executions.get(execution_id)
    if execution is None:
        status = state.config.unknown_execution_status
        raise ApiError(status, f"Workflow execution with ID {execution_id} does not exist.")
    return execution


def cancel(state: EmulatorState, instance: Instance, execution_id: str, raw: Any) -> None:
    body = validation.json_object(raw)
    execution = get(state, instance, execution_id)
    wanted = body.get("status")
    if wanted is None:
        return  # other fields are ignored
    if wanted != CANCELLED:
        raise bad_request(f"Invalid status '{wanted}': only CANCELLED may be set.")
    if execution.status not in (PENDING, RUNNING):
        raise bad_request(
            f"Workflow execution with ID {execution_id} is in terminal status {execution.status} "
            "and cannot be cancelled."
        )
    execution.cancel(state.clock.now())
    instance.active = [e for e in instance.active if e is not execution]


def _creation_bound(query: dict[str, str], name: str, tz_name: str) -> datetime | None:
    if not query.get(name):
        return None
    local = windows.parse_local(query[name], name)
    return local.replace(tzinfo=windows.zone(tz_name, "timeZone")).astimezone(UTC)


def _truthy(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "false").lower()
    if value not in ("true", "false"):
        raise bad_request(f"Invalid {name} '{query[name]}': expected true or false.")
    return value == "true"


def list_page(state: EmulatorState, instance: Instance, query: dict[str, str]) -> dict[str, Any]:
    workflow_id = query.get("workflowId")
    if not workflow_id and not query.get("minCreationTime"):
        raise bad_request("Must provide either workflowId or minCreationTime")
    tz_name = query.get("timeZone") or "UTC"
    low = _creation_bound(query, "minCreationTime", tz_name)
    high = _creation_bound(query, "maxCreationTime", tz_name)
    include_cancelled = _truthy(query, "includeCancelled")
    include_workflow = _truthy(query, "includeWorkflow")
    ascending = _truthy(query, "sortAscending")
    now = state.settle(instance)
    selected = [
        e
        for e in instance.executions.values()
        if (not workflow_id or e.workflow_id == workflow_id)
        and (low is None or e.create_time.replace(microsecond=0) >= low)
        and (high is None or e.create_time.replace(microsecond=0) <= high)
        and (include_cancelled or e.status != CANCELLED)
    ]
    selected.sort(key=lambda e: (e.create_time, e.seq), reverse=not ascending)
    page, token = paginate(selected, query.get("limit"), query.get("nextToken"))
    out: dict[str, Any] = {"executions": [e.to_json(now, include_workflow=include_workflow) for e in page]}
    if token:
        out["nextToken"] = token
    return out


def download_urls(
    state: EmulatorState, instance: Instance, execution_id: str, base_url: str
) -> dict[str, Any]:
    execution = get(state, instance, execution_id)
    if execution.status != SUCCEEDED:
        raise bad_request(f"Execution with ID {execution_id} is unavailable for download.")
    if execution.dry_run:
        return {"downloadUrls": [], "metadataDownloadUrls": []}
    now = state.lifetime_now()
    prefix = f"/downloads/{instance.instance_id}/{execution_id}"
    ext = execution.result.extension
    return {
        "downloadUrls": [
            state.signer.sign(base_url, f"{prefix}/part-{index:05d}.{ext}", now)
            for index in range(execution.result.part_count)
        ],
        "metadataDownloadUrls": [state.signer.sign(base_url, f"{prefix}/metadata.json", now)],
    }


def metadata(execution: Execution) -> dict[str, Any]:
    """The small JSON document behind ``metadataDownloadUrls`` (content is emulator-defined)."""
    return {
        "workflowExecutionId": execution.execution_id,
        "workflowId": execution.workflow_id,
        "instanceId": execution.instance_id,
        "sqlQuery": execution.sql_query,
        "timeWindowType": execution.window.window_type,
        "timeWindowStart": windows.utc_z(execution.window.start_utc),
        "timeWindowEnd": windows.utc_z(execution.window.end_utc),
        "timeWindowTimeZone": execution.window.tz_name,
        "parameterValues": execution.parameter_values,
        "outputFormat": execution.output_format,
        "parts": execution.result.part_count,
        "outputColumns": execution.to_json(execution.last_updated).get("outputColumns", []),
    }
