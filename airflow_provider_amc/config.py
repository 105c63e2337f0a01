"""The provider's Airflow configuration: ``[amc] default_deferrable``.

Resolution (read when a DAG file builds the sensor):

1. ``[amc] default_deferrable`` when the deployment sets it (``AIRFLOW__AMC__DEFAULT_DEFERRABLE``,
   ``airflow.cfg``, ``_CMD``/``_SECRET`` variants);
2. else ``[operators] default_deferrable`` — the switch official providers read — when the
   deployment sets it: through its environment variable, or in ``airflow.cfg`` with a value other
   than Airflow's default ``false``. (Airflow writes every default into a new ``airflow.cfg``, so
   ``default_deferrable = false`` there cannot be told apart from "never set"; to turn deferral
   off for AMC sensors in ``airflow.cfg``, set ``[amc] default_deferrable = False``.)
3. else ``True``: an AMC execution runs for minutes to hours, so waiting in the triggerer is the
   provider's default (DESIGN: the sensor is deferrable by default).
"""

from __future__ import annotations

import configparser
import os

SECTION = "amc"
OPTION = "default_deferrable"


def _explicit(section: str, key: str) -> bool:
    """Whether the deployment itself sets ``[section] key`` (see the module docstring)."""
    from airflow.sdk import conf

    prefix = f"AIRFLOW__{section.upper()}__{key.upper()}"
    if any(name in os.environ for name in (prefix, f"{prefix}_CMD", f"{prefix}_SECRET")):
        return True
    # The base class looks only at what was read from airflow.cfg, not at Airflow's built-in defaults.
    if not configparser.ConfigParser.has_option(conf, section, key):
        return False
    default = conf.get_default_value(section, key)
    return default is None or str(conf.get(section, key)).strip().lower() != str(default).strip().lower()


def default_deferrable() -> bool:
    """The default of the sensor's ``deferrable`` argument (see the module docstring)."""
    from airflow.sdk import conf

    for section in (SECTION, "operators"):
        if _explicit(section, OPTION):
            return conf.getboolean(section, OPTION)
    return True


__all__ = ["OPTION", "SECTION", "default_deferrable"]
