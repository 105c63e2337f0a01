"""Apache Airflow provider for the Amazon Marketing Cloud (AMC) Reporting API."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, object]:
    """Provider metadata for Airflow's providers manager (also the entry point's target)."""
    from airflow_provider_amc.provider_info import provider_info

    return provider_info()
