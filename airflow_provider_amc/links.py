"""Extra links of the create operator and the sensor: "AMC execution" and "AMC results".

Airflow 3 stores each link's URL in XCom at the end of every worker run, also when the task defers
(the API server never runs provider code). The operators therefore push the URLs under their own
XCom keys (``amc_execution_url``, ``amc_results_url``) as soon as they are known, before deferring,
and the links only read them back, so the buttons work while the task waits in the triggerer.

"AMC execution": Amazon documents no URL for an execution's page in the AMC console (amc-api.md
lists none; the Reporting API returns no console link for an execution), so it is built from the
connection extra ``console_url_template`` when one is set, e.g.
``https://advertising.amazon.com/marketing-cloud/instances/{instance_id}/executions/{execution_id}``
— placeholders ``{instance_id}``, ``{execution_id}``, ``{workflow_id}``, ``{advertiser_id}``,
``{marketplace_id}``, ``{region}``. Without the extra the link is empty (the UI hides it).

"AMC results": the S3 console location of ``outputS3URI`` when it is an ``s3://`` URI, in the
S3 console's bucket-browse form ``https://s3.console.aws.amazon.com/s3/buckets/{bucket}?prefix={key}``
(the form Airflow's Amazon provider uses for its S3 console links). AMC reports ``outputS3URI``
once the execution runs (absent while PENDING, literal ``N/A`` without a bucket: amc-api.md §3.2.5,
§10.17), so this link appears when it is known and is refreshed when the execution finishes.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

EXECUTION_URL_KEY = "amc_execution_url"
RESULTS_URL_KEY = "amc_results_url"
#: The placeholders ``console_url_template`` may use.
CONSOLE_URL_PLACEHOLDERS = (
    "instance_id",
    "execution_id",
    "workflow_id",
    "advertiser_id",
    "marketplace_id",
    "region",
)
S3_CONSOLE = "https://s3.console.aws.amazon.com/s3/buckets/"


def check_console_url_template(template: str | None) -> str | None:
    """The template itself when valid (http(s) URL, known placeholders only); ValueError naming the field."""
    if template is None or template == "":
        return None
    if not isinstance(template, str):
        raise ValueError(f"console_url_template must be a string, got {type(template).__name__}")
    template = template.strip()  # pasted with a line break
    if not template:
        return None
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"console_url_template {template!r} is not a valid template: {exc}") from None
    unknown = sorted(set(names) - set(CONSOLE_URL_PLACEHOLDERS))
    if unknown:
        raise ValueError(
            f"console_url_template uses unknown placeholder(s) {', '.join(unknown)}; "
            f"allowed: {', '.join('{' + name + '}' for name in CONSOLE_URL_PLACEHOLDERS)}"
        )
    parts = urlsplit(template)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"console_url_template must be an http(s) URL, got {template!r}")
    return template


def console_url(template: str | None, values: Mapping[str, str | None]) -> str:
    """The execution's console URL from ``template`` (values URL-quoted), or ``""`` without one."""
    template = check_console_url_template(template)
    if not template:
        return ""
    quoted = {name: quote(str(values.get(name) or ""), safe="") for name in CONSOLE_URL_PLACEHOLDERS}
    return template.format(**quoted)


def s3_console_url(uri: str | None) -> str:
    """The S3 console location of an ``s3://bucket/key`` URI; ``""`` for anything else (``N/A``, None)."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return ""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        return ""
    url = S3_CONSOLE + quote(bucket, safe="")
    return f"{url}?prefix={quote(key, safe='/')}" if key else url


#: Operator attribute holding this run's link URLs (read by the links in the same worker process).
URLS_ATTRIBUTE = "_amc_link_urls"


def push_execution_links(
    context: Context,
    *,
    console_template: str | None,
    ids: Mapping[str, str | None],
    output_s3_uri: str | None = None,
    operator: Any = None,
) -> None:
    """Push the URLs the two links read (call before deferring and again when the execution ends)."""
    urls = {
        EXECUTION_URL_KEY: console_url(console_template, ids),
        RESULTS_URL_KEY: s3_console_url(output_s3_uri),
    }
    if operator is not None:
        setattr(operator, URLS_ATTRIBUTE, urls)
    ti = context["ti"]
    for key, url in urls.items():
        if url:  # an unknown URL stays absent: the link reads "" and the UI hides the button
            ti.xcom_push(key=key, value=url)


def _link_url(operator: Any, ti_key: TaskInstanceKey, key: str) -> str:
    """This run's URL when the operator instance knows it, else the one an earlier run stored.

    Airflow asks for the links at the end of every worker run, in that run's process: the operator
    instance then holds what this run published. A resumed task (a new instance) that ended before
    publishing falls back to the XCom pushed before the deferral; a run that never reached AMC
    (no execution id) has no link and does not ask XCom at all.
    """
    urls = getattr(operator, URLS_ATTRIBUTE, None)
    if isinstance(urls, dict) and key in urls:
        return str(urls[key] or "")
    if getattr(operator, "_amc_execution_id", None) is None:
        return ""
    from airflow.providers.common.compat.sdk import XCom

    value: Any = XCom.get_value(ti_key=ti_key, key=key)
    return value if isinstance(value, str) else ""


class AmcExecutionLink(BaseOperatorLink):
    """The AMC console page of the task's execution (needs the ``console_url_template`` extra)."""

    name = "AMC execution"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return _link_url(operator, ti_key, EXECUTION_URL_KEY)


class AmcResultsLink(BaseOperatorLink):
    """The S3 console location of the execution's ``outputS3URI``."""

    name = "AMC results"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return _link_url(operator, ti_key, RESULTS_URL_KEY)


__all__ = [
    "CONSOLE_URL_PLACEHOLDERS",
    "EXECUTION_URL_KEY",
    "RESULTS_URL_KEY",
    "AmcExecutionLink",
    "AmcResultsLink",
    "check_console_url_template",
    "console_url",
    "push_execution_links",
    "s3_console_url",
]
