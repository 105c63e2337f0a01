"""Accounts, instances and data sources (read-only, seeded)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.api import authorize, instance_for, paged_list, state_of
from airflow_provider_amc.emulator.responses import (
    ACCOUNTS_TYPE,
    DATASOURCES_TYPE,
    INSTANCES_TYPE,
    ApiError,
    vendor_json,
    wrap,
)

router = APIRouter()


@router.get("/amc/accounts")
async def list_accounts(request: Request) -> Response:
    state = state_of(request)
    with state.lock:
        authorize(request, require_account=False)
        accounts = sorted({(i.account_id, i.marketplace_id) for i in state.instances.values()})
    items = [
        {"accountId": account, "accountName": defaults.DEFAULT_ACCOUNT_NAME, "marketplaceId": marketplace}
        for account, marketplace in accounts
    ]
    return vendor_json({"amcAccounts": items}, ACCOUNTS_TYPE)


@router.get("/amc/instances")
async def list_instances(request: Request) -> Response:
    state = state_of(request)
    api_endpoint = str(request.base_url).rstrip("/")
    with state.lock:
        advertiser_id, marketplace_id = authorize(request)
        mine = [
            i.to_json(api_endpoint)
            for i in state.instances.values()
            if (i.account_id, i.marketplace_id) == (advertiser_id, marketplace_id)
        ]
    return paged_list(request, "instances", mine, INSTANCES_TYPE, honour_limit=False)


@router.get("/amc/reporting/{instance_id}/dataSources")
async def list_data_sources(request: Request, instance_id: str) -> Response:
    state = state_of(request)
    with state.lock:
        instance_for(request, instance_id)
        data_sources = list(state.data_sources)
    return paged_list(request, "dataSources", data_sources, DATASOURCES_TYPE)


@router.get("/amc/reporting/{instance_id}/dataSources/{data_source_id}")
async def get_data_source(request: Request, instance_id: str, data_source_id: str) -> Response:
    state = state_of(request)
    with state.lock:
        instance_for(request, instance_id)
        found = next((d for d in state.data_sources if d["dataSourceId"] == data_source_id), None)
        envelope = state.config.envelope
    if found is None:
        raise ApiError(404, f"Data source with ID {data_source_id} does not exist.")
    return vendor_json(wrap(found, "dataSource", envelope), DATASOURCES_TYPE)
