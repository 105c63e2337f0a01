"""A local Amazon Marketing Cloud Reporting API + Login-with-Amazon emulator (FastAPI).

Run it with ``python -m airflow_provider_amc.emulator --port 8765``; in tests use
:class:`airflow_provider_amc.emulator.testing.EmulatorServer`. See docs/emulator.md.
"""

from airflow_provider_amc.emulator.app import create_app
from airflow_provider_amc.emulator.state import EmulatorState

__all__ = ["EmulatorState", "create_app"]
