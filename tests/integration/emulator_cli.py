"""Start ``python -m airflow_provider_amc.emulator`` as a user would, and read what it prints."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests

from airflow_provider_amc.emulator import defaults as d

TOKEN_FORM = {
    "grant_type": "refresh_token",
    "refresh_token": d.DEFAULT_REFRESH_TOKEN,
    "client_id": d.DEFAULT_CLIENT_ID,
    "client_secret": d.DEFAULT_CLIENT_SECRET,
}


@dataclass
class Cli:
    url: str
    ca_file: str | None
    lines: list[str]

    @property
    def verify(self) -> str | bool:
        return self.ca_file or True

    def token(self) -> str:
        response = requests.post(f"{self.url}/auth/o2/token", data=TOKEN_FORM, timeout=10, verify=self.verify)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def headers(self, token: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token}",
            "Amazon-Advertising-API-ClientId": d.DEFAULT_CLIENT_ID,
            "Amazon-Advertising-API-AdvertiserId": d.DEFAULT_ADVERTISER_ID,
            "Amazon-Advertising-API-MarketplaceId": d.DEFAULT_MARKETPLACE_ID,
        }

    def admin(self, method: str, path: str, json: object = None) -> requests.Response:
        response = requests.request(
            method, f"{self.url}/emulator{path}", json=json, timeout=10, verify=self.verify
        )
        assert response.status_code == 200, response.text
        return response


@contextmanager
def emulator_cli(*args: str) -> Iterator[Cli]:
    """The CLI on a free port with ``args``; yields once it prints its listening line."""
    command = [sys.executable, "-m", "airflow_provider_amc.emulator", "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not (lines and lines[-1].startswith("AMC emulator listening on ")):
            line = process.stdout.readline()
            assert line, f"the emulator exited early: {lines}"
            lines.append(line.strip())
        ca_lines = [line for line in lines if line.startswith("AMC emulator CA certificate: ")]
        ca_file = ca_lines[0].split(": ", 1)[1] if ca_lines else None
        yield Cli(lines[-1].rsplit(" ", 1)[1], ca_file, lines)
    finally:
        process.terminate()
        process.wait(timeout=10)
