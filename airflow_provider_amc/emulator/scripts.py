"""Per-workflow scripts: how long executions stay PENDING/RUNNING, how they end, what they return."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.results import COLUMNS

Outcome = Literal["SUCCEEDED", "FAILED", "REJECTED", "HANG"]
DEFAULT_SCRIPT_KEY = "*"  # PUT /emulator/scripts/* sets the fallback for every workflow


class WorkflowScript(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pending_seconds: float = Field(defaults.DEFAULT_PENDING_SECONDS, ge=0)
    running_seconds: float = Field(defaults.DEFAULT_RUNNING_SECONDS, ge=0)
    outcome: Outcome = "SUCCEEDED"
    status_reason: str | None = None
    rows: int | None = Field(None, ge=0, description="Data rows; default a deterministic number in 5..50.")
    parts: int = Field(1, ge=1, le=5)
    columns: tuple[str, ...] = Field(tuple(COLUMNS), min_length=1)

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in COLUMNS]
        if unknown or len(set(value)) != len(value):
            raise ValueError(f"columns must be distinct names from {list(COLUMNS)}; got {list(value)}")
        return value

    def reason(self) -> str | None:
        if self.status_reason is not None or self.outcome == "SUCCEEDED":
            return self.status_reason
        if self.outcome == "REJECTED":
            return "Query rejected: scripted rejection by the AMC emulator."
        if self.outcome == "FAILED":
            return "Internal error while executing the query (scripted failure by the AMC emulator)."
        return None
