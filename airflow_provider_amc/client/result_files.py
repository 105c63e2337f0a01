"""An execution's result files: download URLs by object key, part names, re-fetch of expired URLs.

Airflow-free like the rest of the client. ``AmcClient.iter_result_parts`` streams a SUCCEEDED
execution's files with these rules; the hook only hands the call through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from airflow_provider_amc.client.errors import AmcDownloadExpiredError, AmcResponseError
from airflow_provider_amc.client.models import DownloadUrls

log = logging.getLogger(__name__)

#: ``downloadUrls`` holds at most this many URLs (``maxItems: 5`` in AMC's spec).
MAX_DOWNLOAD_URLS = 5


def part_name(url: str, index: int) -> str:
    """A file name for result part ``index``: the URL's last path segment, else ``part-NNNNN``."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return name if name and name not in {".", ".."} else f"part-{index:05d}"


def object_key(url: str) -> str:
    """The object a pre-signed URL points at: its path (the query string is only the signature)."""
    return urlsplit(url).path


def check_download_url(url: str, api_base_url: str, execution_id: str) -> None:
    """A result URL must be an absolute ``https`` URL (AMC's are pre-signed S3 HTTPS URLs); plain
    ``http`` only when the API itself is reached over ``http`` (a local emulator). Anything else —
    another scheme, no host, ``http`` beside an ``https`` API — is refused before it is fetched:
    the rows would come from somewhere AMC did not put them."""
    parts = urlsplit(url)
    allowed = ("https", "http") if urlsplit(api_base_url).scheme == "http" else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        raise AmcResponseError(
            f"downloadUrls of execution {execution_id} holds a URL that is not an absolute "
            f"{' or '.join(allowed)} URL ({parts.scheme or 'no'} scheme, host "
            f"{parts.hostname or 'missing'}); refusing to download results from it"
        )


def result_urls_by_key(answer: DownloadUrls, execution_id: str, api_base_url: str) -> dict[str, str]:
    """``{object key: URL}`` in AMC's order; no URL, more URLs than the spec allows, a repeated
    object, a URL that is not https (see :func:`check_download_url`) or a ``nextToken`` (a second
    page the spec does not have) raise instead of loading part of a result (or none of it,
    reported as 0 rows)."""
    urls = list(answer.download_urls)
    if not urls:
        # The spec allows an empty list, but an empty result is a header-only CSV (amc-api.md §5):
        # no file means there is nothing to count (a dry run, output not downloadable), not 0 rows.
        raise AmcResponseError(
            f"downloadUrls of execution {execution_id} lists no result file (a SUCCEEDED execution "
            "has at least one, header-only when empty); refusing to report 0 rows. Dry runs and "
            "executions whose output is not downloadable have no result files."
        )
    if answer.next_token:
        raise AmcResponseError(
            f"downloadUrls of execution {execution_id} has a nextToken: a second page of result files "
            "is not part of AMC's API; refusing to load part of the result"
        )
    if len(urls) > MAX_DOWNLOAD_URLS:
        raise AmcResponseError(
            f"downloadUrls of execution {execution_id} lists {len(urls)} files; AMC's API allows at most "
            f"{MAX_DOWNLOAD_URLS}"
        )
    for url in urls:
        check_download_url(url, api_base_url, execution_id)
    by_key = {object_key(url): url for url in urls}
    if len(by_key) != len(urls):
        raise AmcResponseError(f"downloadUrls of execution {execution_id} lists the same file twice")
    return by_key


def amc_time(value: datetime | str | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS`` for AMC list filters: aware datetimes are converted to UTC."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def iter_result_parts(
    fetch_urls: Callable[[], dict[str, str]],
    download: Callable[[str], Iterator[bytes]],
    execution_id: str,
) -> Iterator[tuple[str, Iterator[bytes]]]:
    """``(file name, chunk iterator)`` per result file, from ``fetch_urls()`` (by object key).

    Pre-signed URLs live 10 minutes. When one has expired before its first byte, the URLs are
    fetched again and the fresh URL **of the same object key** is used, whatever the order of the
    new list; a key the new list lacks is an error. Consume each part before the next one.
    """
    urls = fetch_urls()

    def chunks(key: str) -> Iterator[bytes]:
        try:
            yield from download(urls[key])
        except AmcDownloadExpiredError:
            fresh = fetch_urls()
            if key not in fresh:
                raise AmcResponseError(
                    f"the refreshed downloadUrls of execution {execution_id} no longer list the "
                    f"result file {key!r}"
                ) from None
            log.info("Download URL of %s expired; using fresh URLs", key)
            urls.update(fresh)
            yield from download(urls[key])

    for index, key in enumerate(list(urls)):
        yield part_name(urls[key], index), chunks(key)
