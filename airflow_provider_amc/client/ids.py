"""The one rule for AMC ids (workflow, instance, execution ids) that go into a URL path.

Checked for ids given by users and for ids that come back from AMC alike (a create answer, a list
of executions, a stored id read back on reattach): ``..`` or ``/`` must never reach a URL path.
"""

from __future__ import annotations

import re
from typing import Any, Final

from airflow_provider_amc.client.errors import AmcConfigError

#: Letters, digits, ``.``, ``-``, ``_``; 1-200 characters; not ``.`` or ``..``.
IDENTIFIER_PATTERN: Final = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def is_valid_id(value: Any) -> bool:
    return isinstance(value, str) and bool(IDENTIFIER_PATTERN.fullmatch(value)) and value not in {".", ".."}


def check_id(field: str, value: Any) -> str:
    """``value`` when it is a valid AMC id, else AmcConfigError naming ``field`` and the rule."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise AmcConfigError(f"{field} is required (got {value!r})")
    if not is_valid_id(value):
        raise AmcConfigError(
            f"{field} {value!r} is not a valid AMC id: use 1-200 letters, digits, '.', '-' or '_'"
        )
    return str(value)
