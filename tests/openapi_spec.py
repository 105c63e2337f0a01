"""Amazon's OpenAPI files (``../shared/spec`` next to the repository, or ``$AMC_SPEC_DIR``).

Tests that need them skip with a clear message only when the folder is absent; the project never
needs them at run time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

REPORTING_SPEC = "WorkflowManagementService_prod_3p.json"
ADMIN_SPEC = "AMCAdministration_prod_3p.json"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def spec_dir() -> Path:
    configured = os.environ.get("AMC_SPEC_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "spec"


@cache
def load(name: str) -> dict[str, Any]:
    path = spec_dir() / name
    if not path.is_file():
        pytest.skip(
            f"AMC OpenAPI spec not found at {path}; set AMC_SPEC_DIR to the folder holding {name}",
            allow_module_level=True,  # parametrized spec walks read the spec while collecting
        )
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _uri(name: str) -> str:
    return f"urn:amc:spec:{name}"


@cache
def _registry(name: str) -> Registry:
    return Registry().with_resource(
        _uri(name), Resource.from_contents(load(name), default_specification=DRAFT7)
    )


def _pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


@dataclass(frozen=True)
class SpecOperation:
    spec: str
    method: str  # upper case
    path: str  # the spec's template, e.g. /amc/reporting/{instanceId}/workflows
    operation_id: str
    raw: dict[str, Any]

    def statuses(self) -> set[int]:
        return {int(code) for code in self.raw["responses"]}

    def media_type(self, status: int) -> str:
        content = self.raw["responses"][str(status)]["content"]
        (media_type,) = content
        return str(media_type)

    def schema_pointer(self, status: int) -> str:
        return _pointer("paths", self.path, self.method.lower(), "responses", str(status), "content") + (
            _pointer(self.media_type(status), "schema")
        )

    def schema_name(self, status: int) -> str:
        ref = self.raw["responses"][str(status)]["content"][self.media_type(status)]["schema"]["$ref"]
        return str(ref).rsplit("/", 1)[-1]

    def validator(self, status: int) -> Draft7Validator:
        return Draft7Validator(
            {"$ref": f"{_uri(self.spec)}#{self.schema_pointer(status)}"}, registry=_registry(self.spec)
        )


def operations(name: str) -> Iterator[SpecOperation]:
    for path, item in load(name)["paths"].items():
        for method, raw in item.items():
            if method in HTTP_METHODS:
                yield SpecOperation(name, method.upper(), path, raw["operationId"], raw)


def schema_validator(name: str, *parts: str) -> Draft7Validator:
    """A validator of the schema at ``components/schemas/<parts...>`` of spec file ``name``."""
    ref = f"{_uri(name)}#{_pointer('components', 'schemas', *parts)}"
    return Draft7Validator({"$ref": ref}, registry=_registry(name))


def schema(name: str, schema_name: str) -> dict[str, Any]:
    return load(name)["components"]["schemas"][schema_name]  # type: ignore[no-any-return]


def errors_of(validator: Draft7Validator, body: Any) -> list[str]:
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(body)]
