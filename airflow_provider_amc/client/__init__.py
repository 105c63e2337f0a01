"""Airflow-free client for the Amazon Marketing Cloud (AMC) Reporting API (sync and async).

This package must not import ``airflow``: it is usable (and tested) on its own.
"""

from typing import TYPE_CHECKING, Any

from airflow_provider_amc.client.auth import TOKEN_CACHE, TokenCache
from airflow_provider_amc.client.errors import (
    AmcApiError,
    AmcAuthError,
    AmcConfigError,
    AmcDownloadExpiredError,
    AmcError,
    AmcNotFoundError,
    AmcResponseError,
    AmcServerError,
    AmcThrottledError,
    AmcTransportError,
)
from airflow_provider_amc.client.models import (
    OUTPUT_FORMAT_FIELD,
    OUTPUT_FORMATS,
    TIME_WINDOW_TYPES,
    AmcAccount,
    AmcInstance,
    CreateExecutionRequest,
    DownloadUrls,
    InputParameter,
    ListPage,
    OutputColumn,
    OutputFormat,
    Workflow,
    WorkflowExecution,
)
from airflow_provider_amc.client.settings import REGIONS, AmcSettings
from airflow_provider_amc.client.sync import AmcClient

if TYPE_CHECKING:
    from airflow_provider_amc.client.aio import AsyncAmcClient


def __getattr__(name: str) -> Any:
    """``AsyncAmcClient`` is imported on first use: workers and DAG parsing need no aiohttp."""
    if name == "AsyncAmcClient":
        from airflow_provider_amc.client.aio import AsyncAmcClient

        return AsyncAmcClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "OUTPUT_FORMATS",
    "OUTPUT_FORMAT_FIELD",
    "REGIONS",
    "TIME_WINDOW_TYPES",
    "TOKEN_CACHE",
    "AmcAccount",
    "AmcApiError",
    "AmcAuthError",
    "AmcClient",
    "AmcConfigError",
    "AmcDownloadExpiredError",
    "AmcError",
    "AmcInstance",
    "AmcNotFoundError",
    "AmcResponseError",
    "AmcServerError",
    "AmcSettings",
    "AmcThrottledError",
    "AmcTransportError",
    "AsyncAmcClient",
    "CreateExecutionRequest",
    "DownloadUrls",
    "InputParameter",
    "ListPage",
    "OutputColumn",
    "OutputFormat",
    "TokenCache",
    "Workflow",
    "WorkflowExecution",
]
