"""``AmcHook``: an Airflow connection of type ``amc`` turned into an AMC client.

The hook is thin on purpose. Everything about HTTP (headers, token cache, retries, parsing) lives
in the Airflow-free :mod:`airflow_provider_amc.client`; the hook only reads the connection, registers
its secrets with Airflow's masker and hands calls to the client.

Connection fields (conn_type ``amc``):

=================  ===========================================================================
``login``          Login-with-Amazon client id (``amzn1.application-oa2-client.…``)
``password``       LwA client secret
``host``           optional API base URL override (the emulator, a proxy); default: the region's
extra ``refresh_token``   LwA refresh token (``Atzr|…``), secret
extra ``advertiser_id``   AMC account (entity) id, sent as ``Amazon-Advertising-API-AdvertiserId``
extra ``marketplace_id``  marketplace of the AMC account, e.g. ``ATVPDKIKX0DER``
extra ``region``          ``NA`` (default), ``EU`` or ``FE``: API host and LwA token host
extra ``token_url``       optional LwA token endpoint override
extra ``instance_id``     optional default AMC instance id
extra ``timeout``, ``max_attempts``, ``backoff_base``, ``backoff_max``  optional HTTP tuning
extra ``verify``          ``true`` (default), ``false`` or the path of a CA bundle (file or directory)
extra ``proxies``         ``{"https": "http://proxy:3128"}``; wins over the environment's proxies
extra ``trust_env``       ``true`` (default): honour ``HTTPS_PROXY``/``NO_PROXY``/``REQUESTS_CA_BUNDLE``
=================  ===========================================================================
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_amc.client import (
    AmcAccount,
    AmcClient,
    AmcConfigError,
    AmcInstance,
    AmcNotFoundError,
    AmcSettings,
    CreateExecutionRequest,
    DownloadUrls,
    TokenCache,
    Workflow,
    WorkflowExecution,
)
from airflow_provider_amc.client.result_files import (  # re-exported: the hook's public helpers
    amc_time,
)
from airflow_provider_amc.result_reader import CsvDialect

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_amc.client.aio import AsyncAmcClient

#: Extra keys read from the connection (also accepted with the ``extra__amc__`` prefix).
EXTRA_FIELDS = (
    "refresh_token",
    "advertiser_id",
    "marketplace_id",
    "region",
    "token_url",
    "instance_id",
    # Optional tuning of every HTTP call (seconds / count): see AmcSettings.
    "timeout",
    "max_attempts",
    "backoff_base",
    "backoff_max",
    # Proxies and TLS, named as HttpHook users know them; the same on the worker and the triggerer.
    "verify",
    "proxies",
    "trust_env",
)
#: Extras read for the UI only, not client settings: the "AMC execution" link's URL template.
LINK_EXTRA_FIELDS = ("console_url_template",)
#: Every extra key the hook knows (the connection form's fields).
KNOWN_EXTRA_FIELDS = EXTRA_FIELDS + LINK_EXTRA_FIELDS


#: Where keys that are not extras belong (a natural place to put them, silently ignored before).
BELONGS_ELSEWHERE = {
    "host": "the connection's Host field (https://host[:port])",
    "port": "the connection's Host field (https://host:port)",
    "schema": "the scheme of the connection's Host field (https://...)",
    "login": "the connection's Login field",
    "client_id": "the connection's Login field",
    "password": "the connection's Password field",
    "client_secret": "the connection's Password field",
}
_PREFIX = "extra__amc__"


def check_extra_keys(extra: Mapping[str, Any]) -> None:
    """Refuse extra keys the hook does not read (they would be silently ignored), naming each."""
    unknown = sorted(key for key in extra if key.removeprefix(_PREFIX) not in KNOWN_EXTRA_FIELDS)
    if not unknown:
        return
    problems = []
    for key in unknown:
        where = BELONGS_ELSEWHERE.get(key.removeprefix(_PREFIX))
        problems.append(f"{key!r} (belongs in {where})" if where else repr(key))
    raise AmcConfigError(
        f"unknown extra field(s) {', '.join(problems)}; the known extra fields are "
        f"{', '.join(KNOWN_EXTRA_FIELDS)}"
    )


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _extra_value(extra: Mapping[str, Any], key: str) -> Any:
    """The extra ``key`` (or ``extra__amc__key``, as the UI stores it); empty or blank = not set."""
    value = extra.get(key)
    if _blank(value):
        value = extra.get(f"{_PREFIX}{key}")
    return None if _blank(value) else value


def check_extra_is_object(conn: Connection, extra: Any) -> None:
    """Refuse an extra that is no JSON object (Airflow reads unparseable text as ``{}``, silently).

    The text is not quoted: it may hold the refresh token.
    """
    if isinstance(extra, Mapping) and (extra or not (conn.extra or "").strip()):
        return
    if isinstance(extra, Mapping):  # empty: was the text an empty object, or no JSON at all?
        try:
            if isinstance(json.loads(conn.extra or ""), dict):
                return
        except ValueError:
            pass
    raise AmcConfigError(
        'the extra must be a JSON object such as {"refresh_token": "Atzr|...", "advertiser_id": "...", '
        '"marketplace_id": "..."} (in a URI: its query, ?refresh_token=...&advertiser_id=...)'
    )


def _host_url(conn: Connection) -> str | None:
    """The Host field as a URL: a host without scheme gets the Schema field's (https when empty)."""
    host = (conn.host or "").strip()
    if not host:
        return None
    if "://" not in host:
        scheme = (conn.schema or "").strip().lower() or "https"
        if scheme not in ("http", "https"):  # a URI's path (amc://id:secret@host/path) is the Schema
            raise AmcConfigError(
                f"schema {conn.schema!r} is not supported: the Schema field (a URI's path) is the "
                "scheme of a Host without one: http or https, or leave it empty (https)"
            )
        host = f"{scheme}://{host}"
    if conn.port:
        host = f"{host.rstrip('/')}:{conn.port}"
    return host


def settings_from_connection(conn: Connection, extra: Mapping[str, Any], **overrides: Any) -> AmcSettings:
    """Build client settings from an Airflow connection and its decoded extra (sync or async).

    Raises AmcConfigError naming the connection and each problem (unknown extra keys, missing or
    invalid fields) before any HTTP call.
    """
    try:
        check_extra_is_object(conn, extra)
        check_extra_keys(extra)
        fields: dict[str, Any] = {key: _extra_value(extra, key) for key in EXTRA_FIELDS}
        host = _host_url(conn)
        fields.update(client_id=conn.login, client_secret=conn.password, host=host)
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return AmcSettings.model_validate({k: v for k, v in fields.items() if v is not None})
    except AmcConfigError as exc:
        message = str(exc).removeprefix("Invalid AmcSettings: ")
        for field, where in (("client_id", "login"), ("client_secret", "password")):
            message = message.replace(f"{field}: ", f"{field} (the connection's {where}): ")
        raise AmcConfigError(f"amc connection {conn.conn_id!r} is not usable: {message}") from None


def _json_connection_hint(value: str) -> str:
    """What is wrong with the JSON form of a connection, naming keys but never values."""
    import attrs
    from airflow.sdk import Connection

    example = '{"conn_type": "amc", "login": ..., "password": ..., "extra": {"refresh_token": ...}}'
    try:
        parsed = json.loads(value)
    except ValueError:
        return f"it is not valid JSON; the form is {example}"
    fields = [field.name for field in attrs.fields(Connection) if field.name != "conn_id"]
    unknown = sorted(str(key) for key in parsed if key not in fields) if isinstance(parsed, dict) else []
    if unknown:
        return (
            f'{", ".join(map(repr, unknown))} are not connection fields: put them in "extra" '
            f"(the connection fields are {', '.join(fields)}); the form is {example}"
        )
    return f"the form is {example}"


def check_connection_variable(conn_id: str) -> None:
    """Say why ``AIRFLOW_CONN_<ID>`` gave no connection when it is set but cannot be parsed.

    Airflow logs the parse error at debug level only and says the connection "isn't defined". The
    parse error's text is not quoted: it may hold part of the secret (``Port could not be cast...``).
    """
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    value = os.environ.get(name, "").strip()
    if not value:
        return
    from airflow.sdk import Connection

    is_json = value.startswith("{")
    try:
        if is_json:
            Connection.from_json(value, conn_id=conn_id)
        else:
            Connection.from_uri(value, conn_id=conn_id)
    except Exception as exc:
        hint = (
            _json_connection_hint(value)
            if is_json
            else "in a URI, URL-encode the Login, the Password and every extra value "
            "(urllib.parse.quote(value, safe='') for / ? # @ % : + & = and spaces), or use the JSON form"
        )
        raise AmcConfigError(
            f"amc connection {conn_id!r} is not usable: {name} is set but Airflow cannot read it as "
            f"a connection ({type(exc).__name__}): {hint}"
        ) from None


def secret_forms(secret: str) -> set[str]:
    """A secret as it can appear in text: raw and URL-encoded (``Atzr|…`` is sent as ``Atzr%7C…``
    in the token request's form; ``quote_plus`` also turns spaces into ``+``)."""
    return {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}


def _mask(*secrets: str | None) -> None:
    """Register each secret, in every form it can take in text, with Airflow's masker."""
    from airflow.sdk.log import mask_secret

    for secret in secrets:
        if secret:
            for form in secret_forms(secret):
                mask_secret(form)


def _settings_secrets(settings: AmcSettings) -> list[str | None]:
    """The secrets a settings object holds: client secret, refresh token, proxy passwords."""
    proxy_passwords = [urlsplit(proxy).password for proxy in (settings.proxies or {}).values()]
    return [
        settings.client_secret.get_secret_value(),
        settings.refresh_token.get_secret_value(),
        *(unquote(p) for p in proxy_passwords if p),
        *proxy_passwords,
    ]


class AmcHook(BaseHook):
    """
    Interact with the Amazon Marketing Cloud Reporting API through an ``amc`` connection.

    :param amc_conn_id: the Airflow connection id (conn_type ``amc``).
    :param timeout: per-request timeout in seconds (default: the client's).
    :param max_attempts: attempts per call for retryable failures (default: the client's).
    """

    conn_name_attr = "amc_conn_id"
    default_conn_name = "amc_default"
    conn_type = "amc"
    hook_name = "Amazon Marketing Cloud"

    def __init__(
        self,
        amc_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> None:
        super().__init__()
        self.amc_conn_id = amc_conn_id
        self._overrides: dict[str, Any] = {"timeout": timeout, "max_attempts": max_attempts}

    # ---- settings and clients ---------------------------------------------------------------
    def _connection(self) -> Connection:
        try:
            return self.get_connection(self.amc_conn_id)
        except AirflowNotFoundException:
            check_connection_variable(self.amc_conn_id)
            raise

    async def _aconnection(self) -> Connection:
        try:
            return await self.aget_connection(self.amc_conn_id)
        except AirflowNotFoundException:
            check_connection_variable(self.amc_conn_id)
            raise

    @cached_property
    def settings(self) -> AmcSettings:
        """Client settings read from the connection (worker side)."""
        conn = self._connection()
        return self._read_settings(conn, conn.extra_dejson)

    async def aget_settings(self) -> AmcSettings:
        """Client settings read from the connection without blocking the event loop (triggerer).

        Read once per hook, i.e. once per trigger run: every new trigger sees the connection as it
        is now (a fixed host, a rotated secret), with no process-wide cache to go stale.
        """
        if "settings" not in self.__dict__:
            conn = await self._aconnection()
            extra = await conn.aextra_dejson()
            self.__dict__["settings"] = self._read_settings(conn, extra)
        return self.__dict__["settings"]  # type: ignore[no-any-return]

    def _read_settings(self, conn: Connection, extra: Mapping[str, Any]) -> AmcSettings:
        settings = settings_from_connection(conn, extra, **self._overrides)
        _mask(*_settings_secrets(settings))
        return settings

    @cached_property
    def client(self) -> AmcClient:
        """The synchronous client (one HTTP session per hook)."""
        return AmcClient(self.settings, on_new_token=_mask)

    async def get_async_client(self) -> AsyncAmcClient:
        """A new asynchronous client; use it as ``async with`` (it shares the loop's HTTP session)."""
        from airflow_provider_amc.client.aio import AsyncAmcClient

        return AsyncAmcClient(await self.aget_settings(), on_new_token=_mask)

    @property
    def default_instance_id(self) -> str | None:
        return self.settings.instance_id

    @cached_property
    def console_url_template(self) -> str | None:
        """The connection's ``console_url_template`` extra, checked (ValueError naming the field)."""
        from airflow_provider_amc.links import check_console_url_template

        conn = self._connection()
        return check_console_url_template(_extra_value(conn.extra_dejson, "console_url_template"))

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()

    # ---- the Reporting calls (snake_case of the API) -------------------------------------------
    def get_access_token(self) -> str:
        return self.client.get_access_token()

    def create_workflow(self, workflow: Workflow, *, instance_id: str | None = None) -> None:
        self.client.create_workflow(workflow, instance_id=instance_id)

    def update_workflow(self, workflow: Workflow, *, instance_id: str | None = None) -> None:
        self.client.update_workflow(workflow, instance_id=instance_id)

    def get_workflow(self, workflow_id: str, *, instance_id: str | None = None) -> Workflow:
        return self.client.get_workflow(workflow_id, instance_id=instance_id)

    def upsert_workflow(self, workflow: Workflow, *, instance_id: str | None = None) -> str:
        return self.client.upsert_workflow(workflow, instance_id=instance_id)

    def delete_workflow(self, workflow_id: str, *, instance_id: str | None = None) -> None:
        self.client.delete_workflow(workflow_id, instance_id=instance_id)

    def list_workflows(self, *, instance_id: str | None = None) -> list[Workflow]:
        return self.client.list_workflows(instance_id=instance_id)

    def create_execution(
        self, request: CreateExecutionRequest, *, instance_id: str | None = None
    ) -> WorkflowExecution:
        return self.client.create_execution(request, instance_id=instance_id)

    def get_execution(self, execution_id: str, *, instance_id: str | None = None) -> WorkflowExecution:
        return self.client.get_execution(execution_id, instance_id=instance_id)

    def list_executions(self, *, instance_id: str | None = None, **filters: Any) -> list[WorkflowExecution]:
        return self.client.list_executions(instance_id=instance_id, **filters)

    def cancel_execution(self, execution_id: str, *, instance_id: str | None = None) -> bool:
        return self.client.cancel_execution(execution_id, instance_id=instance_id)

    def get_download_urls(self, execution_id: str, *, instance_id: str | None = None) -> DownloadUrls:
        return self.client.get_download_urls(execution_id, instance_id=instance_id)

    def iter_download(self, url: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        return self.client.iter_download(url, chunk_size=chunk_size)

    def list_accounts(self) -> list[AmcAccount]:
        return self.client.list_accounts()

    def list_instances(self) -> list[AmcInstance]:
        return self.client.list_instances()

    # ---- helpers built on the calls ----------------------------------------------------------
    def result_urls(self, execution_id: str, *, instance_id: str | None = None) -> dict[str, str]:
        return self.client.result_urls(execution_id, instance_id=instance_id)

    def iter_result_parts(
        self, execution_id: str, *, instance_id: str | None = None, chunk_size: int = 1 << 20
    ) -> Iterator[tuple[str, Iterator[bytes]]]:
        """Stream the result files of a SUCCEEDED execution: ``(file name, chunk iterator)`` per
        part; an expired URL is fetched again and matched by object key. Consume each part's chunks
        before moving on to the next part."""
        return self.client.iter_result_parts(execution_id, instance_id=instance_id, chunk_size=chunk_size)

    def get_csv_dialect(self, workflow_id: str | None, *, instance_id: str | None = None) -> CsvDialect:
        """The CSV characters (``Workflow.outputFormat``) the workflow's results are written with.

        Default characters when the execution names no workflow or the workflow no longer exists
        (logged); characters the reader cannot read exactly raise ``ValueError``.
        """
        if not workflow_id:
            return CsvDialect()
        try:
            workflow = self.get_workflow(workflow_id, instance_id=instance_id)
        except AmcNotFoundError:
            self.log.warning(
                "Workflow %s not found: reading its results with default CSV characters", workflow_id
            )
            return CsvDialect()
        return CsvDialect.from_output_format(workflow.output_format)

    def find_executions(
        self,
        *,
        workflow_id: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        instance_id: str | None = None,
        include_cancelled: bool = False,
        max_items: int | None = None,
    ) -> list[WorkflowExecution]:
        """Executions by workflow and/or creation time, oldest first, whoever started them (the AMC
        console, a schedule, another tool). Datetimes are sent in UTC; strings as AMC local times
        (``YYYY-MM-DDTHH:MM:SS``, UTC). AMC needs ``workflow_id`` or ``created_after``."""
        return self.list_executions(
            instance_id=instance_id,
            workflow_id=workflow_id,
            min_creation_time=amc_time(created_after),
            max_creation_time=amc_time(created_before),
            include_cancelled=include_cancelled,
            sort_ascending=True,
            max_items=max_items,
        )

    def discover(self) -> list[dict[str, Any]]:
        """The AMC accounts the credentials can use, each with its instances (JSON-native).

        ``[{"account_id", "account_name", "marketplace_id", "instances": [{"instance_id", ...}]}]``;
        the ``account_id`` is the connection's ``advertiser_id`` value for that account.
        """
        found = []
        for account in self.list_accounts():
            settings = self.settings.model_copy(
                update={
                    "advertiser_id": account.account_id,
                    "marketplace_id": account.marketplace_id or self.settings.marketplace_id,
                }
            )
            with AmcClient(settings, on_new_token=_mask) as client:
                instances = client.list_instances()
            found.append(
                {
                    **account.model_dump(mode="json", exclude_none=True),
                    "instances": [item.model_dump(mode="json", exclude_none=True) for item in instances],
                }
            )
        return found

    # ---- async calls used by the trigger ----------------------------------------------------
    async def aget_execution(self, execution_id: str, *, instance_id: str | None = None) -> WorkflowExecution:
        async with await self.get_async_client() as client:
            return await client.get_execution(execution_id, instance_id=instance_id)

    async def acancel_execution(self, execution_id: str, *, instance_id: str | None = None) -> bool:
        async with await self.get_async_client() as client:
            return await client.cancel_execution(execution_id, instance_id=instance_id)

    # ---- Airflow UI -------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """Get an access token and list the AMC instances: fails when the account/marketplace sees
        none, or when the connection's default ``instance_id`` is not among them.

        The token is asked for here, not taken from the process-wide cache: a token cached before
        the refresh token was revoked (or the client secret rotated) must not pass the test.
        """
        try:
            with AmcClient(self.settings, token_cache=TokenCache(), on_new_token=_mask) as client:
                client.get_access_token()
                instances = client.list_instances()
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        settings = self.settings
        visible = sorted(item.instance_id for item in instances)
        if not visible:
            return False, (
                f"no AMC instance is visible for advertiser_id {settings.advertiser_id!r} in "
                f"marketplace {settings.marketplace_id!r}: check the extras advertiser_id and "
                "marketplace_id (AmcHook.discover() lists the accounts these credentials can use)"
            )
        if settings.instance_id and settings.instance_id not in visible:
            return False, (
                f"the default instance_id {settings.instance_id!r} is not visible for advertiser_id "
                f"{settings.advertiser_id!r}; visible instances: {', '.join(visible)}"
            )
        return (
            True,
            f"Connection successfully tested: {len(visible)} AMC instance(s) visible: {', '.join(visible)}.",
        )
