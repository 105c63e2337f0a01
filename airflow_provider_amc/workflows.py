"""Workflows as code: the pure helpers behind ``AmcUpsertWorkflowOperator`` (no Airflow, no HTTP).

* :func:`custom_parameters` finds the ``CUSTOM_PARAMETER('name')`` uses in AMC SQL (comments ignored);
* :func:`check_parameters` compares them with the declared ``inputParameters``;
* :func:`normalise_sql` gives the single-line SQL that is sent and compared (comments removed,
  whitespace outside literals collapsed, no trailing ``;``), so a re-indented query is not a change;
* :func:`reconcile` decides what to write: nothing, a create, or an update that replaces only the
  fields the caller manages and keeps the rest of the saved definition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from airflow_provider_amc.client import Workflow

#: One SQL token: a string literal, a quoted identifier, a comment, whitespace or anything else.
_TOKEN: Final = re.compile(
    r"""(?P<literal>'(?:[^']|'')*'?)
      | (?P<ident>"(?:[^"]|"")*"?)
      | (?P<line_comment>--[^\n]*)
      | (?P<block_comment>/\*.*?(?:\*/|\Z))
      | (?P<space>\s+)
      | (?P<other>[^'"\s/-]+|.)""",
    re.VERBOSE | re.DOTALL,
)
_CUSTOM_PARAMETER: Final = re.compile(r"\bCUSTOM_PARAMETER\s*\(\s*'((?:[^']|'')*)'\s*\)", re.IGNORECASE)

#: Workflow fields the operator always manages (the others only when passed as keyword arguments).
ALWAYS_MANAGED: Final = ("sql_query", "input_parameters", "output_columns")
#: Workflow fields that may be passed to the operator as extra keyword arguments.
EXTRA_WORKFLOW_FIELDS: Final = tuple(
    name for name in Workflow.model_fields if name not in {"workflow_id", "query", *ALWAYS_MANAGED}
)

UpsertAction = Literal["created", "updated", "unchanged"]


def _tokens(sql: str) -> Iterable[tuple[str, str]]:
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        assert kind is not None
        yield kind, match.group()


def strip_comments(sql: str) -> str:
    """``sql`` with ``--`` and ``/* */`` comments replaced by a space (literals untouched)."""
    return "".join(" " if kind.endswith("comment") else text for kind, text in _tokens(sql))


def normalise_sql(sql: str) -> str:
    """The single-line form AMC asks for, also used to compare: comments removed, whitespace runs
    outside string literals and quoted identifiers collapsed to one space, no trailing ``;``.

    Removing comments matters: in single-line SQL a ``--`` comment would swallow the rest of the query.
    """
    out: list[str] = []
    for kind, text in _tokens(sql):
        if kind == "space" or kind.endswith("comment"):
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(text)
    return "".join(out).strip().rstrip(";").strip()


def custom_parameters(sql: str) -> list[str]:
    """Names used as ``CUSTOM_PARAMETER('name')`` in ``sql``, in order of first use (outside comments)."""
    names = (match.group(1).replace("''", "'") for match in _CUSTOM_PARAMETER.finditer(strip_comments(sql)))
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class ParameterCheck:
    """Declared input parameters compared with the SQL's ``CUSTOM_PARAMETER`` uses."""

    undeclared: list[str]
    unused: list[str]


def check_parameters(sql: str, declared: Iterable[str]) -> ParameterCheck:
    """Which used parameters are not declared (an AMC compile error) and which declared ones are unused."""
    used = custom_parameters(sql)
    declared_names = list(dict.fromkeys(declared))
    return ParameterCheck(
        undeclared=[name for name in used if name not in declared_names],
        unused=[name for name in declared_names if name not in used],
    )


def _comparable(field: str, body: Mapping[str, Any]) -> Any:
    value = body.get(field)
    if field == "sqlQuery" and isinstance(value, str):
        return normalise_sql(value)
    if value in (None, [], {}):
        return None
    return value


def _alias(field: str) -> str:
    alias = Workflow.model_fields[field].alias
    return alias or field


def reconcile(current: Workflow | None, wanted: Workflow, managed: Iterable[str]) -> Workflow | None:
    """The definition to write, or ``None`` when the saved workflow already matches.

    Only ``managed`` fields (snake_case ``Workflow`` attributes) are compared and written; the other
    fields of ``current`` (set in the AMC console, say) are kept, because AMC's PUT replaces the
    whole definition. Fields the server adds that the model does not know are never sent back.
    """
    managed_aliases = [_alias(field) for field in managed]
    wanted_body = wanted.to_body()
    if current is None:
        return wanted
    current_body = current.definition()
    if all(_comparable(a, current_body) == _comparable(a, wanted_body) for a in managed_aliases):
        return None
    kept = {key: value for key, value in current_body.items() if key not in managed_aliases}
    return Workflow.model_validate({**kept, **wanted_body})


__all__ = [
    "ALWAYS_MANAGED",
    "EXTRA_WORKFLOW_FIELDS",
    "ParameterCheck",
    "UpsertAction",
    "check_parameters",
    "custom_parameters",
    "normalise_sql",
    "reconcile",
    "strip_comments",
]
