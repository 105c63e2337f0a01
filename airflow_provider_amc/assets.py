"""Asset events of the AMC tasks: the execution's metadata as the outlet event's ``extra``.

A user declares ``outlets=[Asset("amc://…/daily_report")]`` on the sensor, on
``AmcCreateExecutionOperator(wait_for_completion=True)`` or on ``AmcToPostgresOperator``. When the
task succeeds, each ``Asset`` outlet's event carries :func:`asset_extra` (execution id, instance,
workflow, window, row count, size, output location), so a DAG scheduled on that asset can read
``triggering_asset_events`` instead of asking AMC again. The extra is set through
``context["outlet_events"]`` in the completion step (``execute_complete`` for a deferred task):
a ``yield Metadata(...)`` from ``execute`` does not work for a task that defers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Output-metadata keys copied into the asset event's extra (JSON-native values only).
EXTRA_KEYS = (
    "execution_id",
    "instance_id",
    "workflow_id",
    "time_window",
    "row_count",
    "size_bytes",
    "output_location",
    "output_s3_uri",
    "output_format",
)


def asset_extra(metadata: Mapping[str, Any], **more: Any) -> dict[str, Any]:
    """The event extra for a finished execution's output metadata (plus e.g. the loaded table)."""
    extra = {key: metadata.get(key) for key in EXTRA_KEYS if key in metadata}
    extra.update(more)
    return extra


def publish_asset_events(outlets: Any, context: Context, extra: Mapping[str, Any]) -> int:
    """Set ``extra`` on the event of every ``Asset`` outlet; returns how many were set."""
    from airflow.sdk import Asset

    assets = [outlet for outlet in outlets or () if isinstance(outlet, Asset)]
    if not assets:
        return 0
    events = context["outlet_events"]
    for asset in assets:
        events[asset].extra.update(extra)
    return len(assets)


__all__ = ["EXTRA_KEYS", "asset_extra", "publish_asset_events"]
