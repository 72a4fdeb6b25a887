"""The OpenAPI document of catalog's own endpoints (those under `/catalog/`).

Docker's endpoints are described by Docker's own swagger; these are the ones only catalog
has. Pure data.
"""

from __future__ import annotations

from typing import Any

from catalog import __version__

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string", "description": "What went wrong, one line."}},
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 for `/catalog/...`."""
    paths: dict[str, Any] = {
        "/catalog/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/catalog/info": {
            "get": {
                "operationId": "info",
                "summary": "What the catalog holds, as `catalog info --format json` counts it.",
                "responses": {
                    "200": {
                        "description": "Row counts and the bytes of the stored blobs.",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Info"}}
                        },
                    },
                    "500": _error("The database could not be read."),
                },
            }
        },
        "/catalog/reports": {
            "get": {
                "operationId": "listReports",
                "summary": "The reports, their options (query parameters, with defaults) and "
                "columns, as `catalog report --list --format json`.",
                "responses": {
                    "200": {
                        "description": "One description per report.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/ReportDescription"},
                                }
                            }
                        },
                    }
                },
            }
        },
        "/catalog/reports/{name}": {
            "get": {
                "operationId": "runReport",
                "summary": "Run one report (one SQL statement), as `catalog report NAME "
                "--format json`: exact values (full IDs, byte counts, RFC 3339 times).",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "older_than",
                        "in": "query",
                        "description": "Docker's `until` syntax: a duration before now "
                        "(`720h`), a date or time, or Unix seconds.",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "max_tags",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1},
                    },
                    {
                        "name": "period",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["week", "month"]},
                    },
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                ],
                "responses": {
                    "200": {
                        "description": "The report's rows.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ReportResult"}
                            }
                        },
                    },
                    "400": _error("An option the report does not take, or a bad value."),
                    "404": _error("No such report."),
                },
            }
        },
        "/catalog/images/{name}/squash": {
            "post": {
                "operationId": "squashImage",
                "summary": "Squash an image's layers above a parent into one new layer, as "
                "`catalog image squash`; the image itself is not changed.",
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "description": "The image: name[:tag], name@digest or ID.",
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Squash"}}
                    },
                },
                "responses": {
                    "201": {
                        "description": "The new image.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/SquashResult"}
                            }
                        },
                    },
                    "400": _error("A bad option (both parent and layers, layers < 2, ...)."),
                    "404": _error("No such image (or parent)."),
                    "409": _error("The image or its parent was deleted while squashing."),
                    "413": _error("The body is over 1 MiB."),
                },
            }
        },
    }
    schemas: dict[str, Any] = {
        "Error": ERROR_SCHEMA,
        "Info": {
            "type": "object",
            "required": ["images", "layers", "references", "containers", "blobs", "blob_bytes"],
            "properties": {
                name: {"type": "integer", "minimum": 0}
                for name in ("images", "layers", "references", "containers", "blobs", "blob_bytes")
            },
        },
    }
    nullable_string = {"type": ["string", "null"]}
    schemas["Squash"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "parent": {
                **nullable_string,
                "description": "Keep PARENT's layers (the first layers of the image) and "
                "squash the rest. Default: the image's recorded parent, else every layer.",
            },
            "layers": {
                "type": ["integer", "null"],
                "minimum": 2,
                "description": "Squash the top N layers instead (not with parent).",
            },
            "tags": {"type": "array", "items": {"type": "string"}, "description": "New names."},
            "message": {**nullable_string, "description": "The new history entry's comment."},
        },
    }
    schemas["SquashResult"] = {
        "type": "object",
        "required": ["id", "diff_id", "diff_size", "squashed_layers", "parent_id"],
        "properties": {
            "id": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
            "diff_id": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
            "diff_size": {"type": "integer", "minimum": 0},
            "squashed_layers": {"type": "integer", "minimum": 1},
            "parent_id": nullable_string,
        },
    }
    schemas["ReportDescription"] = {
        "type": "object",
        "required": ["name", "title", "summary", "description", "options", "columns"],
        "properties": {
            "name": {"type": "string"},
            "title": {"type": "string"},
            "summary": {"type": "string"},
            "description": {"type": "string"},
            "options": {"type": "object", "description": "Query parameter -> default."},
            "columns": {"type": "array", "items": {"type": "object"}},
        },
    }
    schemas["ReportResult"] = {
        "type": "object",
        "required": ["report", "settings", "columns", "rows"],
        "properties": {
            "report": {"type": "string"},
            "settings": {"type": "object"},
            "columns": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": {"type": "object"}},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "catalog",
            "version": __version__,
            "description": "catalog's own endpoints, beside the Docker Engine API it serves "
            "for images (every Docker path takes an optional /vX.Y prefix; these do not).",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
