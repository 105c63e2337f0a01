"""Token and download-URL lifetimes are wall-clock seconds, whatever ``--speed`` says.

A client that refreshes its token on a wall-clock schedule (as real clients do) must not see a
401 because the emulator runs fast. Instead of sleeping two real minutes, each test moves the
emulated clock far beyond both lifetimes (``/emulator/clock/advance``) and shows that only the
emulated clock moved - the checks fail when lifetimes follow the emulated clock
(``--scaled-lifetimes``, kept for tests of expiry).
"""

from __future__ import annotations

import pytest
import requests
from emulator_cli import Cli, emulator_cli

from airflow_provider_amc.emulator import defaults as d

pytestmark = pytest.mark.integration

SPEED = 50
TWO_REAL_MINUTES_AT_SPEED = 2 * 60 * SPEED  # 6000 emulated seconds > 3600 (token) > 600 (URL)
EXPLICIT = {
    "workflowId": d.DEMO_WORKFLOW_ID,
    "timeWindowType": "EXPLICIT",
    "timeWindowStart": "2026-01-01T00:00:00",
    "timeWindowEnd": "2026-01-02T00:00:00",
}


def token_and_download_url(cli: Cli) -> tuple[str, str]:
    token = cli.token()
    base = f"{cli.url}/amc/reporting/{d.DEFAULT_INSTANCE_ID}/workflowExecutions"
    created = requests.post(base, json=EXPLICIT, headers=cli.headers(token), timeout=10)
    assert created.status_code == 200, created.text
    cli.admin("POST", "/clock/advance", {"seconds": 60})
    urls = requests.get(
        f"{base}/{created.json()['workflowExecutionId']}/downloadUrls", headers=cli.headers(token), timeout=10
    )
    assert urls.status_code == 200, urls.text
    return token, urls.json()["downloadUrls"][0]


def still_accepted(cli: Cli, token: str, url: str) -> tuple[int, int]:
    listed = requests.get(
        f"{cli.url}/amc/reporting/{d.DEFAULT_INSTANCE_ID}/workflows", headers=cli.headers(token), timeout=10
    )
    return listed.status_code, requests.get(url, timeout=10).status_code


def test_token_from_speed_50_still_works_after_two_real_minutes_of_emulated_time() -> None:
    with emulator_cli("--speed", str(SPEED)) as cli:
        token, url = token_and_download_url(cli)
        before = cli.admin("GET", "/clock").json()["offset_seconds"]
        cli.admin("POST", "/clock/advance", {"seconds": TWO_REAL_MINUTES_AT_SPEED})
        assert cli.admin("GET", "/clock").json()["offset_seconds"] - before == TWO_REAL_MINUTES_AT_SPEED
        assert still_accepted(cli, token, url) == (200, 200)
        # expire_tokens still works on wall-clock tokens
        cli.admin("POST", "/tokens/expire", {})
        assert still_accepted(cli, token, url)[0] == 401


def test_scaled_lifetimes_expire_with_the_emulated_clock() -> None:
    with emulator_cli("--speed", str(SPEED), "--scaled-lifetimes") as cli:
        token, url = token_and_download_url(cli)
        cli.admin("POST", "/clock/advance", {"seconds": TWO_REAL_MINUTES_AT_SPEED})
        assert still_accepted(cli, token, url) == (401, 403)
        assert cli.admin("GET", "/config").json()["scaled_lifetimes"] is True
        cli.admin("POST", "/reset", {})
        assert cli.admin("GET", "/config").json()["scaled_lifetimes"] is True  # reset keeps the CLI's choice
