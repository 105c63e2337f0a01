"""AmcHook.iter_result_parts against a hostile fake server: refreshed URLs matched by object key,
more URLs than the spec allows, an unexpected nextToken, a refreshed list that lost a file."""

from __future__ import annotations

from airflow_env import amc_connection_env, apply_airflow_test_env

apply_airflow_test_env()

from typing import Any  # noqa: E402

import pytest  # noqa: E402
import requests_mock as rm  # noqa: E402

from airflow_provider_amc.client import AmcResponseError  # noqa: E402
from airflow_provider_amc.hooks.amc import AmcHook  # noqa: E402

API = "https://amc.urls.test"
INSTANCE = "amcurls0001"
EXECUTION_ID = "11111111-2222-4333-8444-555555555555"
URLS_ENDPOINT = f"{API}/amc/reporting/{INSTANCE}/workflowExecutions/{EXECUTION_ID}/downloadUrls"
BUCKET = "https://bucket.urls.test/results"
CONTENT = {i: f"h\npart {i}\n".encode() for i in range(3)}


def signed(index: int, signature: str) -> str:
    return f"{BUCKET}/part-{index:05d}.csv?X-Amz-Signature={signature}"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker) -> rm.Mocker:
    for name, value in amc_connection_env(API, instance_id=INSTANCE).items():
        monkeypatch.setenv(name, value)
    requests_mock.post(f"{API}/auth/o2/token", json={"access_token": "Atza|u", "expires_in": 3600})

    def download(request: Any, context: Any) -> bytes:
        index = int(request.path.rsplit("-", 1)[-1].split(".")[0])
        if "stale" in request.url:
            context.status_code = 403
            return b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
        return CONTENT[index]

    requests_mock.get(rm.ANY, content=download)  # any bucket GET; AMC routes are registered after
    return requests_mock


def parts(api: rm.Mocker, answers: list[dict[str, Any]]) -> dict[str, bytes]:
    api.get(URLS_ENDPOINT, [{"json": answer} for answer in answers])
    hook = AmcHook()
    return {
        name: b"".join(chunks) for name, chunks in hook.iter_result_parts(EXECUTION_ID, instance_id=INSTANCE)
    }


def test_refreshed_urls_in_another_order_are_matched_by_object_key(api: rm.Mocker) -> None:
    stale = {"downloadUrls": [signed(i, "stale") for i in range(3)]}
    fresh = {"downloadUrls": [signed(i, "fresh") for i in (2, 0, 1)]}  # another order
    got = parts(api, [stale, fresh, fresh, fresh])
    assert got == {f"part-{i:05d}.csv": CONTENT[i] for i in range(3)}


def test_a_refreshed_list_without_the_file_is_an_error(api: rm.Mocker) -> None:
    stale = {"downloadUrls": [signed(i, "stale") for i in range(2)]}
    fresh = {"downloadUrls": [signed(1, "fresh"), f"{BUCKET}/other.csv?X-Amz-Signature=f"]}
    with pytest.raises(AmcResponseError, match=r"no longer list the result file '/results/part-00000.csv'"):
        parts(api, [stale, fresh])


def test_more_urls_than_the_spec_allows_is_an_error(api: rm.Mocker) -> None:
    with pytest.raises(AmcResponseError, match="lists 6 files; AMC's API allows at most 5"):
        parts(api, [{"downloadUrls": [f"{BUCKET}/part-{i:05d}.csv?s=1" for i in range(6)]}])


def test_a_next_token_is_an_error_not_a_silently_shorter_result(api: rm.Mocker) -> None:
    with pytest.raises(AmcResponseError, match="has a nextToken"):
        parts(api, [{"downloadUrls": [signed(0, "fresh")], "nextToken": "page2"}])


def test_the_same_file_twice_is_an_error(api: rm.Mocker) -> None:
    with pytest.raises(AmcResponseError, match="the same file twice"):
        parts(api, [{"downloadUrls": [signed(0, "a"), signed(0, "b")]}])


# GetWorkflowExecutionDownloadUrlsResponse allows ``minItems: 0`` and no required field (spec), but a
# SUCCEEDED execution always has a file: an empty result is a header-only CSV (amc-api.md §5, §10.8).
# No file at all (a dry run, an ACR-only DOWNLOAD channel, an answer of another shape) must never be
# counted as "0 rows".
@pytest.mark.parametrize(
    "answer",
    [{"downloadUrls": [], "metadataDownloadUrls": []}, {}, {"metadataDownloadUrls": [signed(0, "m")]}],
)
def test_no_result_file_is_an_error_not_zero_rows(api: rm.Mocker, answer: dict[str, Any]) -> None:
    expected = f"downloadUrls of execution {EXECUTION_ID} lists no result file"
    with pytest.raises(AmcResponseError, match=expected):
        parts(api, [answer])


@pytest.mark.parametrize(
    "url",
    [
        "http://bucket.urls.test/results/part-00000.csv?X-Amz-Signature=s",  # http beside an https API
        "file:///etc/passwd",
        "ftp://bucket.urls.test/results/part-00000.csv",
        "/results/part-00000.csv?X-Amz-Signature=s",  # no scheme, no host
        "https:///results/part-00000.csv",  # no host
    ],
)
def test_a_result_url_that_is_not_https_is_refused_before_any_download(api: rm.Mocker, url: str) -> None:
    """AMC's result URLs are pre-signed S3 HTTPS URLs: rows fetched from anything else (a hostile
    answer pointing the worker at another scheme or at plain http) would not be AMC's result."""
    with pytest.raises(AmcResponseError, match="not an absolute https URL"):
        parts(api, [{"downloadUrls": [signed(0, "fresh"), url]}])
    assert not [r for r in api.request_history if "bucket" in r.url or r.url.startswith("file")]


def test_plain_http_result_urls_are_read_when_the_api_itself_is_http(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker
) -> None:
    """A local emulator serves its API and its result files over http: that pair is allowed."""
    api = "http://amc.urls.test"
    for name, value in amc_connection_env(api, instance_id=INSTANCE).items():
        monkeypatch.setenv(name, value)
    requests_mock.post(f"{api}/auth/o2/token", json={"access_token": "Atza|u", "expires_in": 3600})
    requests_mock.get("http://files.urls.test/r/part-00000.csv", content=b"h\n1\n")
    requests_mock.get(
        f"{api}/amc/reporting/{INSTANCE}/workflowExecutions/{EXECUTION_ID}/downloadUrls",
        json={"downloadUrls": ["http://files.urls.test/r/part-00000.csv?s=1"]},
    )
    got = {n: b"".join(c) for n, c in AmcHook().iter_result_parts(EXECUTION_ID, instance_id=INSTANCE)}
    assert got == {"part-00000.csv": b"h\n1\n"}
