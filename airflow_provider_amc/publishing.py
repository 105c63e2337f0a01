"""What an AMC task tells the rest of Airflow: extra links, asset events and OpenLineage facets.

Two calls, kept apart from the waiting and recording code (``execution_wait``):

* :func:`publish_links` as soon as the execution id is known (before the task defers), so the
  "AMC execution" and "AMC results" links work while the task waits in the triggerer, and again
  when the execution ends (``finish``), which refreshes the results link;
* :func:`publish_completion` when the execution has SUCCEEDED and its output is measured (in
  ``execute_complete`` for a deferred task, which runs on a new operator instance): sets the asset
  events' extra and records what OpenLineage reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_amc.assets import asset_extra, publish_asset_events
from airflow_provider_amc.lineage import ExecutionLineage, execution_lineage
from airflow_provider_amc.links import push_execution_links

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_amc.hooks.amc import AmcHook


def _link_ids(
    hook: AmcHook, execution_id: str, instance_id: str | None, workflow_id: str | None
) -> dict[str, Any]:
    settings = hook.settings
    return {
        "execution_id": execution_id,
        "instance_id": instance_id or settings.instance_id,
        "workflow_id": workflow_id,
        "advertiser_id": settings.advertiser_id,
        "marketplace_id": settings.marketplace_id,
        "region": settings.region,
    }


def publish_links(
    operator: Any,
    context: Context,
    *,
    execution_id: str,
    instance_id: str | None,
    workflow_id: str | None = None,
    output_s3_uri: str | None = None,
) -> None:
    """Push the link URLs for this execution and note its id for lineage (before any deferral)."""
    hook: AmcHook = operator.hook
    push_execution_links(
        context,
        console_template=hook.console_url_template,
        ids=_link_ids(hook, execution_id, instance_id, workflow_id),
        output_s3_uri=output_s3_uri,
        operator=operator,
    )
    operator.amc_lineage = ExecutionLineage(execution_id=execution_id)


def publish_completion(operator: Any, context: Context, metadata: Mapping[str, Any]) -> None:
    """A SUCCEEDED execution's output metadata → asset events and lineage (links: ``publish_links``)."""
    operator.amc_lineage = execution_lineage(dict(metadata))
    published = publish_asset_events(getattr(operator, "outlets", None), context, asset_extra(metadata))
    if published:
        operator.log.info(
            "Asset event extra set on %d outlet(s) for execution %s", published, metadata["execution_id"]
        )


__all__ = ["publish_completion", "publish_links"]
