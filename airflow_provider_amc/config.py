"""The provider's Airflow configuration: ``[amc] default_deferrable``.

Resolution (read when a DAG file builds the sensor):

1. ``[amc] default_deferrable`` when the deployment sets it (``AIRFLOW__AMC__DEFAULT_DEFERRABLE``
   or ``airflow.cfg``);
2. else ``[operators] default_deferrable`` when the deployment sets it — the switch official
   providers read;
3. else ``True``: an AMC execution runs for minutes to hours, so waiting in the triggerer is the
   provider's default (Airflow's own default for ``[operators] default_deferrable`` is ``False``,
   which is why an unset core option does not count).
"""

from __future__ import annotations

import configparser
import os

SECTION = "amc"
OPTION = "default_deferrable"


def _explicit(section: str, key: str) -> bool:
    """Whether the deployment itself sets ``[section] key`` (environment, airflow.cfg, command, secret)."""
    from airflow.sdk import conf

    prefix = f"AIRFLOW__{section.upper()}__{key.upper()}"
    if any(name in os.environ for name in (prefix, f"{prefix}_CMD", f"{prefix}_SECRET")):
        return True
    # The base class looks only at what was read from airflow.cfg, not at Airflow's built-in defaults.
    return configparser.ConfigParser.has_option(conf, section, key)


def default_deferrable() -> bool:
    """The default of the sensor's ``deferrable`` argument (see the module docstring)."""
    from airflow.sdk import conf

    for section in (SECTION, "operators"):
        if _explicit(section, OPTION):
            return conf.getboolean(section, OPTION)
    return True


__all__ = ["OPTION", "SECTION", "default_deferrable"]
