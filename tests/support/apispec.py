"""moby's per-version Engine API specs (tests/fixtures/moby-api, Swagger 2.0 in YAML) as
JSON Schemas that `catalog serve`'s answers are validated against with `jsonschema`.

Swagger 2.0 is JSON Schema draft 4 plus extensions. Two of them matter here:

* `$ref: '#/definitions/X'` resolves against the spec's own `definitions`, which the
  validator's root carries.
* Nothing is nullable unless it says `x-nullable: true` (go-swagger's reading, and
  moby's). Such a schema gets `null` added to its type; a `$ref` marked nullable becomes
  `anyOf: [ref, null]` (draft 4 ignores a `$ref`'s siblings).

moby's real answers are looser than its specs in a few known places (SOURCES.md beside
the specs): it sends `null` for a nil Go map or slice the schema does not mark nullable.
catalog sends what moby sends there, so those places, and only those, tolerate `null`:
`TOLERATED_NULLS` names each one with its reason and the versions it applies to.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
import yaml

from catalog.server.versions import compare
from support.files import FIXTURES_DIR

SPEC_DIR = FIXTURES_DIR / "moby-api"
SPEC_VERSIONS = ("1.41", "1.44", "1.50", "1.52")
# Keys whose values are data, not schemas: never rewritten.
_DATA_KEYS = frozenset({"enum", "default", "example", "examples", "x-go-name", "required"})


def _always(version: str) -> bool:
    return True


def _below(limit: str) -> Callable[[str], bool]:
    return lambda version: compare(version, limit) < 0


@dataclass(frozen=True)
class ToleratedNull:
    """One place where moby sends null although its spec says the value is not nullable:
    a property of a definition, or of a path's inline response schema."""

    # ("definitions", NAME) or ("paths", PATH, METHOD, STATUS)
    owner: tuple[Any, ...]
    prop: str
    applies: Callable[[str], bool]
    why: str


TOLERATED_NULLS = (
    ToleratedNull(
        ("definitions", "ImageSummary"),
        "Labels",
        _always,
        "an image without labels: moby's Labels map is nil",
    ),
    ToleratedNull(
        ("definitions", "ImageSummary"),
        "RepoTags",
        _below("1.43"),
        "below 1.43 an image with digests but no tags has a nil RepoTags",
    ),
    ToleratedNull(
        ("definitions", "ImageSummary"),
        "RepoDigests",
        _below("1.43"),
        "below 1.43 an image with tags but no digests has a nil RepoDigests",
    ),
    ToleratedNull(
        ("definitions", "ImageHistoryResponseItem"),
        "Tags",
        _always,
        "a history entry of an untagged (or missing) image: nil Tags",
    ),
    ToleratedNull(
        ("paths", "/images/prune", "post", 200),
        "ImagesDeleted",
        _always,
        "a prune that deleted nothing: nil ImagesDeleted",
    ),
    *(
        ToleratedNull(
            ("definitions", "ImageConfig"),
            key,
            _below("1.52"),
            "moby's legacyConfigFields: null for an unset list or map below 1.52",
        )
        for key in ("Cmd", "Entrypoint", "Env", "Labels", "Volumes")
    ),
    ToleratedNull(
        ("definitions", "SystemInfo"),
        "Warnings",
        _always,
        "no warnings: a nil slice",
    ),
    *(
        ToleratedNull(
            ("definitions", "ContainerConfig"),
            key,
            _always,
            "a container's unset Cmd, Entrypoint, Env or Volumes: nil, as moby keeps them",
        )
        for key in ("Cmd", "Entrypoint", "Env", "Volumes")
    ),
)


@cache
def load_spec(version: str) -> dict[str, Any]:
    """The spec of `version`, as the YAML says (response codes are integers)."""
    with (SPEC_DIR / f"v{version}.yaml").open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` accepting null too."""
    if "$ref" in schema:
        return {"anyOf": [{"$ref": schema["$ref"]}, {"type": "null"}]}
    result = dict(schema)
    kind = result.get("type")
    if isinstance(kind, str):
        result["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        result["type"] = [*kind, "null"]
    elif "enum" in result and None not in result["enum"]:
        result["enum"] = [*result["enum"], None]
    return result


def to_json_schema(node: Any) -> Any:
    """A Swagger 2.0 schema as draft 4 JSON Schema, `x-nullable` honoured."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {
        key: (value if key in _DATA_KEYS else to_json_schema(value)) for key, value in node.items()
    }
    if converted.get("x-nullable") is True:
        return _nullable(converted)
    return converted


def _owner(spec: dict[str, Any], owner: tuple[Any, ...]) -> dict[str, Any]:
    if owner[0] == "definitions":
        node: dict[str, Any] = spec["definitions"][owner[1]]
        return node
    _, path, method, status = owner
    schema: dict[str, Any] = spec["paths"][path][method]["responses"][status]["schema"]
    return schema


@cache
def _tolerant_spec(version: str) -> dict[str, Any]:
    """The spec with the tolerated nulls of `version` allowed (a copy)."""
    spec = copy.deepcopy(load_spec(version))
    for tolerated in TOLERATED_NULLS:
        if not tolerated.applies(version):
            continue
        properties = _owner(spec, tolerated.owner).get("properties", {})
        if tolerated.prop in properties:
            properties[tolerated.prop] = {**properties[tolerated.prop], "x-nullable": True}
    return spec


@cache
def _definitions(version: str) -> dict[str, Any]:
    converted: dict[str, Any] = to_json_schema(_tolerant_spec(version)["definitions"])
    return converted


def schema_validator(version: str, schema: dict[str, Any]) -> jsonschema.Draft4Validator:
    """A validator of `schema` (Swagger, from the spec of `version`) with its refs."""
    root = {**to_json_schema(schema), "definitions": _definitions(version)}
    return jsonschema.Draft4Validator(root)


def response_schema(version: str, method: str, path: str, status: int) -> dict[str, Any]:
    """The schema of a response, as the spec of `version` documents it. Errors without
    one of their own are moby's ErrorResponse."""
    spec = _tolerant_spec(version)
    responses = spec["paths"][path][method.lower()]["responses"]
    documented = responses.get(status) or {}
    if "schema" in documented:
        schema: dict[str, Any] = documented["schema"]
        return schema
    if status >= 400:
        return {"$ref": "#/definitions/ErrorResponse"}
    raise AssertionError(f"{method} {path} {status} has no schema in v{version}")


def definition(version: str, name: str) -> dict[str, Any]:
    schema: dict[str, Any] = load_spec(version)["definitions"][name]
    return schema


def validation_errors(
    version: str, method: str, path: str, status: int, document: Any
) -> Iterator[str]:
    """Each way `document` breaks the spec's schema for this response, as one line."""
    validator = schema_validator(version, response_schema(version, method, path, status))
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        yield f"v{version} {method} {path} {status}: {where}: {error.message}"


def assert_valid(version: str, method: str, path: str, status: int, document: Any) -> None:
    errors = list(validation_errors(version, method, path, status, document))
    assert errors == [], "\n".join(errors[:20])
