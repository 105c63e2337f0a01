"""The emulator's in-memory world: clock, config, tokens, instances, scripts, faults and the log."""

from __future__ import annotations

import base64
import random
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.auth import Credentials, TokenStore
from airflow_provider_amc.emulator.clock import EmulatorClock
from airflow_provider_amc.emulator.config import EmulatorConfig
from airflow_provider_amc.emulator.executions import Execution, advance
from airflow_provider_amc.emulator.faults import FaultInjector, TokenBucket
from airflow_provider_amc.emulator.requestlog import RequestLog
from airflow_provider_amc.emulator.responses import ApiError, bad_request
from airflow_provider_amc.emulator.scripts import DEFAULT_SCRIPT_KEY, WorkflowScript
from airflow_provider_amc.emulator.signing import UrlSigner

MAX_PAGE: Final = 100
_RID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass
class Instance:
    instance_id: str
    name: str
    account_id: str
    marketplace_id: str
    bucket: str | None
    workflows: dict[str, dict[str, Any]] = field(default_factory=dict)
    executions: dict[str, Execution] = field(default_factory=dict)
    active: list[Execution] = field(default_factory=list)
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    quota_used: dict[date, int] = field(default_factory=dict)

    def to_json(self, api_endpoint: str) -> dict[str, Any]:
        """The admin spec's ``Instance`` (every required field) plus what real answers add."""
        return {
            "instanceId": self.instance_id,
            "instanceName": self.name,
            "instanceType": "STANDARD",
            "creationStatus": "COMPLETED",
            "creationDatetime": defaults.INSTANCE_CREATION_DATETIME,
            "apiEndpoint": api_endpoint,
            "awsAccountId": defaults.INSTANCE_AWS_ACCOUNT_ID,
            "dataUploadAwsAccountId": defaults.DATA_UPLOAD_AWS_ACCOUNT_ID,
            "s3BucketName": self.bucket or "",
            "s3BucketRegion": defaults.INSTANCE_S3_BUCKET_REGION,
            "entities": [self.account_id],
            "entityId": self.account_id,
            "marketplaceId": self.marketplace_id,
        }


def seeded_instances() -> dict[str, Instance]:
    instances = {
        defaults.DEFAULT_INSTANCE_ID: Instance(
            defaults.DEFAULT_INSTANCE_ID,
            "AMC Emulator Demo",
            defaults.DEFAULT_ADVERTISER_ID,
            defaults.DEFAULT_MARKETPLACE_ID,
            defaults.DEFAULT_S3_BUCKET,
        ),
        defaults.SECOND_INSTANCE_ID: Instance(
            defaults.SECOND_INSTANCE_ID,
            "AMC Emulator Demo (no bucket)",
            defaults.DEFAULT_ADVERTISER_ID,
            defaults.DEFAULT_MARKETPLACE_ID,
            None,
        ),
    }
    for instance in instances.values():
        instance.workflows[defaults.DEMO_WORKFLOW_ID] = defaults.demo_workflow()
    return instances


def paginate(items: list[Any], limit: object, next_token: object) -> tuple[list[Any], str | None]:
    """Slice ``items`` for ``limit`` (1..100, default 100) and an opaque ``nextToken``."""
    size = MAX_PAGE
    if limit not in (None, ""):
        try:
            size = int(str(limit))
        except ValueError:
            size = 0
        if not 1 <= size <= MAX_PAGE:
            raise bad_request(f"Invalid limit '{limit}': expected an integer between 1 and {MAX_PAGE}.")
    offset = 0
    if next_token not in (None, ""):
        try:
            offset = int(base64.urlsafe_b64decode(str(next_token).encode()).decode().removeprefix("offset:"))
        except ValueError:
            raise bad_request(f"Invalid nextToken '{next_token}'.") from None
    page = items[offset : offset + size]
    more = offset + size < len(items)
    token = base64.urlsafe_b64encode(f"offset:{offset + size}".encode()).decode() if more else None
    return page, token


class EmulatorState:
    """All mutable state. Mutations happen under :attr:`lock` (handlers run in one event loop,
    but the admin helper and tests may touch the state from other threads)."""

    def __init__(
        self,
        *,
        seed: int | None = None,
        speed: float = 1.0,
        start: datetime | None = None,
        credentials: Credentials | None = None,
        config: EmulatorConfig | None = None,
        clock: EmulatorClock | None = None,
    ) -> None:
        """``seed=None`` (the default): execution ids, tokens, request ids and the URL-signing
        secret are new on every start and every reset, and result data uses seed 0. A seed makes
        all of them repeat. ``config`` is the configuration ``reset`` returns to."""
        self.lock = threading.RLock()
        self.clock = clock or EmulatorClock(start=start, speed=speed)
        self.credentials = credentials or Credentials()
        self._initial_speed = self.clock.speed
        self._initial_config = config or EmulatorConfig()
        self.log = RequestLog()
        self.fixed_seed = seed
        self.tokens = TokenStore(random.Random(self._stream_seed()), self.credentials)
        self._seed_everything()

    def _stream_seed(self) -> int:
        """The seed of the id/token/secret streams: the asked-for seed, else a fresh random one."""
        return secrets.randbits(64) if self.fixed_seed is None else self.fixed_seed

    def _seed_everything(self) -> None:
        self.seed = 0 if self.fixed_seed is None else self.fixed_seed  # result data
        self.config = self._initial_config.model_copy()
        self.instances = seeded_instances()
        self.data_sources = defaults.seeded_data_sources()
        self.scripts: dict[str, WorkflowScript] = {}
        self.faults = FaultInjector()
        self.throttle: TokenBucket | None = None
        stream = self._stream_seed()
        self._ids = random.Random(stream)
        self._rids = random.Random(stream + 1)
        self.signer = UrlSigner(random.Random(stream + 2).randbytes(32))
        self._seq = 0

    def reset(self, seed: int | None = None, *, clear_tokens: bool = False) -> None:
        """Back to the seeded world (``seed`` given: from now on seeded with it). The clock keeps
        running (it never goes back) and issued access tokens stay valid unless ``clear_tokens``;
        speed and config return to their initial values."""
        with self.lock:
            if seed is not None:
                self.fixed_seed = seed
            self._seed_everything()
            self.clock.set_speed(self._initial_speed)
            self.log.clear()
            if clear_tokens:
                self.tokens = TokenStore(random.Random(self._stream_seed()), self.credentials)

    def lifetime_now(self) -> datetime:
        """Now, on the clock token and download-URL lifetimes are measured on (wall by default)."""
        return self.clock.instant().on(self.config.scaled_lifetimes)

    # -- ids ---------------------------------------------------------------------------------
    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def request_id(self) -> str:
        with self.lock:
            return "".join(self._rids.choice(_RID_ALPHABET) for _ in range(20))

    # -- lookups -----------------------------------------------------------------------------
    def instance(self, instance_id: str, advertiser_id: str, marketplace_id: str) -> Instance:
        found = self.instances.get(instance_id)
        if found is None:
            raise ApiError(404, f"Instance with ID {instance_id} does not exist.")
        if (advertiser_id, marketplace_id) != (found.account_id, found.marketplace_id):
            raise ApiError(403, "Unauthorized request.")
        return found

    def script_for(self, workflow_id: str) -> WorkflowScript:
        return self.scripts.get(workflow_id) or self.scripts.get(DEFAULT_SCRIPT_KEY) or WorkflowScript()

    def settle(self, instance: Instance) -> datetime:
        """Bring the instance's executions up to the current emulator time; return that time."""
        now = self.clock.now()
        instance.active = advance(instance.active, now, self.config.concurrency_limit)
        return now

    def find_execution(self, instance_id: str, execution_id: str) -> Execution | None:
        instance = self.instances.get(instance_id)
        if instance is None:
            return None
        self.settle(instance)
        return instance.executions.get(execution_id)
