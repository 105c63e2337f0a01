"""Runtime switches of the emulator (changed through ``PUT /emulator/config``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_amc.emulator import defaults


class EmulatorConfig(BaseModel):
    """Every behaviour switch; all fields have production-like defaults."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    envelope: bool = Field(
        False, description="Wrap single objects like the OpenAPI spec ({'workflowExecution': {...}})."
    )
    unknown_execution_status: Literal[400, 404] = 400
    expired_token_status: Literal[401, 403] = 401
    quota_status: Literal[400, 429] = 400
    concurrency_limit: int = Field(defaults.DEFAULT_CONCURRENCY_LIMIT, ge=1, le=1000)
    daily_quota: int = Field(defaults.DEFAULT_DAILY_QUOTA, ge=0, le=1_000_000)
    quota_day_start_seconds: int = Field(
        0, ge=0, lt=86_400, description="The quota day starts this many seconds after midnight UTC."
    )
    data_lag_hours: int = Field(defaults.DEFAULT_DATA_LAG_HOURS, ge=0, le=24 * 400)
    scaled_lifetimes: bool = Field(
        False,
        description="Measure access-token and download-URL lifetimes on the emulated clock (scaled by "
        "speed, moved by advance) instead of wall-clock seconds; for tests of expiry.",
    )
    enable_delete_execution: bool = Field(
        True, description="Serve the legacy DELETE /workflowExecutions/{id} as an alias of cancel."
    )
