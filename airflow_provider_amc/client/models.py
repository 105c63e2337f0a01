"""Pydantic models of AMC objects and of the create-execution request.

Responses parse whether AMC returns the object flat (what production does) or wrapped in the
envelope the OpenAPI file describes (``{"workflowExecution": {...}}``). Unknown fields are kept
(``extra="allow"``) and unknown statuses never fail parsing: ``status`` is AMC's raw text, which
:class:`airflow_provider_amc.lifecycle.AmcStatus` interprets.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any, Final, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from airflow_provider_amc.client.ids import is_valid_id
from airflow_provider_amc.client.settings import ValidatedInput

#: The body field the output format is sent as. AMC's public spec does not list it (DESIGN.md §5);
#: it is kept behind this one constant so it can be dropped (set to ``None``) in one place.
OUTPUT_FORMAT_FIELD: Final[str | None] = "outputFormat"

#: The result formats AMC writes (the one definition; the reader and validators import it).
CSV: Final = "CSV"
PARQUET: Final = "PARQUET"
OUTPUT_FORMATS: Final = (CSV, PARQUET)
TIME_WINDOW_TYPES: Final = (
    "EXPLICIT",
    "MOST_RECENT_DAY",
    "MOST_RECENT_WEEK",
    "CURRENT_MONTH",
    "PREVIOUS_MONTH",
    "ALL",
)
_AMC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def unwrap(body: Any, envelope: str) -> Any:
    """The object inside ``{envelope: {...}}`` when AMC wraps it, else the body itself."""
    if isinstance(body, dict) and isinstance(body.get(envelope), dict):
        return body[envelope]
    return body


class AmcModel(BaseModel):
    """Base of response models: camelCase aliases, snake_case attributes, unknown fields kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def to_body(self) -> dict[str, Any]:
        """The camelCase JSON object AMC expects, without unset (None) fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class InputParameter(AmcModel):
    """A declared workflow parameter, referenced in SQL as ``CUSTOM_PARAMETER('name')``."""

    name: str
    data_type: str | dict[str, Any] | None = None
    column_type: str | None = None
    default_value: Any = None
    description: str | None = None
    display_name: str | None = None


class OutputColumn(AmcModel):
    """A result column: declared on a workflow, or reported on a SUCCEEDED execution."""

    name: str
    column_type: str | None = None
    data_type: str | dict[str, Any] | None = None
    data_type_precision: int | None = None
    data_type_scale: int | None = None
    precision: int | None = None
    scale: int | None = None
    description: str | None = None


class OutputFormat(AmcModel):
    """CSV characters of a workflow's output (``Workflow.outputFormat``)."""

    separator_character: str | None = None
    quote_character: str | None = None
    escape_character: str | None = None


class Workflow(AmcModel):
    """A saved AMC workflow (amc-api.md §7)."""

    workflow_id: str
    sql_query: str | None = None
    query: Any = None
    input_parameters: list[InputParameter] | None = None
    output_columns: list[OutputColumn] | None = None
    output_format: OutputFormat | None = None
    privacy_filtering_behavior: str | None = None
    filtered_metrics_discriminator_column: str | None = None
    distinct_user_count_column: str | None = None
    filtered_reason_column: str | None = None
    input_schema: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        return unwrap(data, "workflow")

    def definition(self) -> dict[str, Any]:
        """The declared fields only (extras the server adds are ignored): used to detect changes."""
        extras = set(self.model_extra or {})
        return {k: v for k, v in self.to_body().items() if k not in extras}


class AdvertiserIdentifier(AmcModel):
    """An advertiser an execution is restricted to."""

    id: str
    type: str
    marketplace_id: str | None = None


class WorkflowExecution(AmcModel):
    """An AMC workflow execution (amc-api.md §3.2.2). ``status`` is AMC's raw status string
    (``lifecycle.AmcStatus.parse`` reads it)."""

    workflow_execution_id: str
    workflow_id: str | None = None
    status: str | None = None
    status_reason: str | None = None
    create_time: str | None = None
    last_updated_time: str | None = None
    expire_time: str | None = None
    wait_until: str | None = None
    validated_time: str | None = None
    time_window_start: str | None = None
    time_window_end: str | None = None
    time_window_start_original: str | None = None
    time_window_end_original: str | None = None
    time_window_time_zone_original: str | None = None
    workflow_execution_timeout_seconds: int | None = None
    invalidation_offset_secs: int | None = None
    available_time_before_window_secs: int | None = None
    execution_time: int | None = None
    output_s3_uri: str | None = Field(default=None, alias="outputS3URI")
    output_channels: list[dict[str, Any]] | None = None
    output_columns: list[OutputColumn] | None = None
    disable_aggregation_controls: bool | None = None
    require_synthetic_data: bool | None = None
    ignore_data_gaps: bool | None = None
    data_gaps: list[Any] | None = None
    parameter_values: dict[str, Any] | None = None
    advertisers: list[dict[str, Any]] | None = None
    execution_category: str | None = None
    sql_query: str | None = None
    acr_collaboration_id: str | None = None
    acr_customer_membership_id: str | None = None
    acr_detail_page_url: str | None = None
    acr_protected_query_id: str | None = None

    @field_validator("workflow_execution_id", "workflow_id")
    @classmethod
    def _ids_are_ids(cls, value: str | None) -> str | None:
        """Ids from AMC answers go into URLs later (status, cancel, downloads): same rule as input."""
        if value is not None and not is_valid_id(value):
            raise ValueError(f"{value!r} is not a valid AMC id (letters, digits, '.', '-', '_'; not '..')")
        return value

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        return unwrap(data, "workflowExecution")


class DownloadUrls(AmcModel):
    """Pre-signed result (and metadata) URLs of a SUCCEEDED execution; they expire after 10 min."""

    download_urls: list[str] = Field(default_factory=list)
    metadata_download_urls: list[str] = Field(default_factory=list)
    next_token: str | None = None

    @field_validator("download_urls", "metadata_download_urls", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        """No field of the answer is required (spec): a null list is an empty one."""
        return [] if value is None else value


class AmcAccount(AmcModel):
    """An AMC account: ``account_id`` is the Amazon-Advertising-API-AdvertiserId value."""

    account_id: str
    account_name: str | None = None
    marketplace_id: str | None = None


class AmcInstance(AmcModel):
    """An AMC instance visible to the account."""

    instance_id: str
    instance_name: str | None = None
    instance_type: str | None = None
    creation_status: str | None = None
    api_endpoint: str | None = None
    s3_bucket_name: str | None = None
    s3_bucket_region: str | None = None
    aws_account_id: str | None = None


ItemT = TypeVar("ItemT", bound=BaseModel)


class ListPage(BaseModel, Generic[ItemT]):
    """One page of a list endpoint: its items and the token of the next page (None when last)."""

    items: list[ItemT]
    next_token: str | None = None

    @classmethod
    def parse(cls, body: Any, items_key: str, item_model: type[ItemT]) -> ListPage[ItemT]:
        if not isinstance(body, dict):
            raise TypeError(f"expected a JSON object with {items_key!r}, got {type(body).__name__}")
        if items_key not in body and set(body) - {"nextToken"}:
            # The key is optional (an empty page may be ``{}``), but items under another key must
            # not read as "none" (the lost-create lookup would submit a second execution).
            raise TypeError(f"no {items_key!r} list in an answer with keys {sorted(body)}")
        items = [item_model.model_validate(item) for item in body.get(items_key) or []]
        return cls(items=items, next_token=body.get("nextToken") or None)


class CreateExecutionRequest(ValidatedInput):
    """Body of ``POST /workflowExecutions`` for a saved workflow (ad-hoc SQL is never sent).

    Invalid values raise :class:`~airflow_provider_amc.client.errors.AmcConfigError` naming the
    field and the allowed values.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    workflow_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    time_window_type: str | None = None
    time_window_start: str | None = None
    time_window_end: str | None = None
    time_window_time_zone: str | None = None
    parameter_values: dict[str, Any] | None = None
    output_format: str | None = Field(default=None, exclude=True)
    workflow_execution_timeout_seconds: int | None = Field(default=None, ge=900, le=86400)
    dry_run: bool | None = None
    ignore_data_gaps: bool | None = None
    require_synthetic_data: bool | None = None
    disable_aggregation_controls: bool | None = None
    skip_publish: bool | None = None
    advertisers: list[AdvertiserIdentifier] | None = None
    max_certified_time: str | None = None
    max_dimension_time: str | None = None
    additional_acr_results_receivers: list[str] | None = None

    @field_validator("time_window_type", mode="before")
    @classmethod
    def _window_type(cls, value: Any) -> Any:
        if value is None:
            return None
        upper = str(value).strip().upper()
        if upper not in TIME_WINDOW_TYPES:
            raise ValueError(f"{value!r} is not supported: allowed values are {', '.join(TIME_WINDOW_TYPES)}")
        return upper

    @field_validator("output_format", mode="before")
    @classmethod
    def _output_format(cls, value: Any) -> Any:
        if value is None:
            return None
        upper = str(value).strip().upper()
        if upper not in OUTPUT_FORMATS:
            raise ValueError(f"{value!r} is not supported: allowed values are {', '.join(OUTPUT_FORMATS)}")
        return upper

    @field_validator("time_window_start", "time_window_end", "max_dimension_time")
    @classmethod
    def _amc_time(cls, value: str | None) -> str | None:
        if value is not None and not _AMC_TIME.match(value):
            raise ValueError(f"{value!r} must be a local time formatted YYYY-MM-DDTHH:MM:SS (no offset)")
        return value

    @field_validator("time_window_time_zone")
    @classmethod
    def _time_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone name (e.g. UTC, America/New_York)"
            ) from None
        return value

    @model_validator(mode="after")
    def _window_consistent(self) -> CreateExecutionRequest:
        bounds = (self.time_window_start, self.time_window_end)
        if (self.time_window_type or "MOST_RECENT_DAY") == "EXPLICIT":
            if None in bounds:
                raise ValueError("time_window_type EXPLICIT needs both time_window_start and time_window_end")
            if self.time_window_start >= self.time_window_end:  # type: ignore[operator]
                raise ValueError("time_window_start must be before time_window_end (the end is exclusive)")
        elif bounds != (None, None):
            raise ValueError(
                "time_window_start/time_window_end are only used with time_window_type EXPLICIT "
                f"(got time_window_type={self.time_window_type!r})"
            )
        return self

    def to_body(self) -> dict[str, Any]:
        """The camelCase JSON body, without unset fields; the output format goes under
        :data:`OUTPUT_FORMAT_FIELD` (omitted when that constant is ``None``)."""
        body: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if OUTPUT_FORMAT_FIELD and self.output_format is not None:
            body[OUTPUT_FORMAT_FIELD] = self.output_format
        return body
