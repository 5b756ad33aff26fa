"""The OpenAPI document (``/openapi.json``) and its Swagger UI (``/docs``).

Operations are described in each endpoint's docstring (YAML after ``---``); the shared
schemas live here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.schemas import SchemaGenerator
from starlette.staticfiles import StaticFiles

from fieldreport import __version__

_STR = {"type": "string"}

COMPONENTS: dict[str, Any] = {
    "securitySchemes": {
        "publicKey": {"type": "apiKey", "in": "header", "name": "X-Fieldreport-Key"},
        "secretKey": {"type": "http", "scheme": "bearer"},
        "sessionToken": {"type": "http", "scheme": "bearer", "description": "from `start`"},
    },
    "responses": {
        "Problem": {
            "description": "An error, with a message saying what was wrong.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    },
    "schemas": {
        "Problem": {
            "type": "object",
            "required": ["error", "code"],
            "properties": {"error": _STR, "code": _STR},
        },
        "ReportForm": {
            "type": "object",
            "properties": {
                "key": _STR,
                "subject": _STR,
                "sendercomment": _STR,
                "senderemail": {"type": "string", "format": "email"},
                "additionalinfo": _STR,
                "notelist[]": {"type": "array", "items": _STR},
                "referer": _STR,
                "browser": _STR,
                "recording": _STR,
                "file": {"type": "string", "format": "binary"},
                "attachment": {"type": "array", "items": {"type": "string", "format": "binary"}},
            },
        },
        "ReportJSON": {
            "type": "object",
            "properties": {
                "key": _STR,
                "subject": _STR,
                "sendercomment": _STR,
                "senderemail": {"type": "string", "format": "email"},
                "additionalinfo": {},
                "notelist": {"type": "array", "items": _STR},
                "referer": _STR,
                "browser": _STR,
                "recording": _STR,
                "file": {"type": "string", "description": "data:image/png;base64,..."},
                "attachments": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["data"],
                        "properties": {"filename": _STR, "content_type": _STR, "data": _STR},
                    },
                },
            },
        },
        "ReportCreated": {
            "type": "object",
            "required": ["reportid", "ticketnr", "ticketurl"],
            "properties": {
                "reportid": {"type": "string", "format": "uuid"},
                "ticketnr": {"type": "integer"},
                "ticketurl": _STR,
            },
        },
        "StoredFile": {
            "type": "object",
            "properties": {
                "filename": _STR,
                "content_type": _STR,
                "size": {"type": "integer"},
                "sha256": _STR,
                "url": _STR,
            },
        },
        "Report": {
            "type": "object",
            "required": ["reportid", "ticketnr", "ticketurl", "created_at"],
            "properties": {
                "reportid": _STR,
                "project": _STR,
                "project_id": {"type": "integer"},
                "ticketnr": {"type": "integer"},
                "ticketurl": _STR,
                "created_at": {"type": "string", "format": "date-time"},
                "subject": _STR,
                "browser": _STR,
                "ipaddress": _STR,
                "referer": _STR,
                "senderemail": _STR,
                "sendercomment": _STR,
                "additionalinfo": _STR,
                "notelist": {"type": "array", "items": _STR},
                "recording": {"type": ["string", "null"]},
                "screenshot": {
                    "oneOf": [{"$ref": "#/components/schemas/StoredFile"}, {"type": "null"}]
                },
                "attachments": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/StoredFile"},
                },
            },
        },
        "SessionStart": {
            "type": "object",
            "required": ["trackerVersion"],
            "properties": {
                "projectKey": {"type": "string", "description": "the public key (or projectID)"},
                "projectID": {"type": ["integer", "string"], "description": "the project's id"},
                "trackerVersion": _STR,
                "revID": _STR,
                "userUUID": _STR,
                "userOSVersion": _STR,
                "userDevice": _STR,
                "userDeviceType": {"type": "integer"},
                "performance": {},
            },
        },
        "SessionStarted": {
            "type": "object",
            "required": ["imagesHashList", "token", "userUUID", "sessionID"],
            "properties": {
                "imagesHashList": {"type": "array", "items": _STR},
                "token": _STR,
                "userUUID": _STR,
                "sessionID": {"type": "string", "format": "uuid"},
                "expiresAt": {"type": "integer", "description": "token expiry, ms since epoch"},
                "maxBatchBytes": {"type": "integer"},
            },
        },
        "BatchStored": {"type": "object", "properties": {"seq": {"type": "integer"}}},
        "ImagesStored": {
            "type": "object",
            "properties": {"stored": {"type": "integer"}, "known": {"type": "integer"}},
        },
        "Session": {
            "type": "object",
            "required": ["id", "project_id", "platform", "started_at"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "project": _STR,
                "project_id": {"type": "integer"},
                "platform": {"type": "string", "enum": ["web", "ios", "android", "mobile"]},
                "user_uuid": _STR,
                "tracker_version": _STR,
                "rev_id": _STR,
                "user_os_version": _STR,
                "user_device": _STR,
                "user_device_type": {"type": ["integer", "null"]},
                "user_agent": _STR,
                "performance": {},
                "started_at": {"type": "string", "format": "date-time"},
                "first_batch_at": {"type": ["string", "null"], "format": "date-time"},
                "last_batch_at": {"type": ["string", "null"], "format": "date-time"},
                "batch_count": {"type": "integer"},
                "byte_count": {"type": "integer"},
                "events_url": _STR,
                "reports": {"type": "array", "items": {"type": "object"}},
                "batches": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "seq": {"type": "integer"},
                            "late": {"type": "boolean"},
                            "received_at": {"type": "string", "format": "date-time"},
                            "size": {"type": "integer"},
                            "encoding": {"type": "string", "enum": ["identity", "gzip"]},
                        },
                    },
                },
            },
        },
        "SessionList": {
            "type": "object",
            "properties": {
                "sessions": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}},
                "next_before": {"type": ["string", "null"]},
            },
        },
        "ReportList": {
            "type": "object",
            "properties": {
                "reports": {"type": "array", "items": {"$ref": "#/components/schemas/Report"}},
                "next_before": {"type": ["integer", "null"]},
            },
        },
    },
}

# --- full-stack API (seed 001) and backend events ----------------------------------------------
_EVENT_OUT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "uuid": _STR,
        "type": {"type": "string", "enum": ["log", "exception"]},
        "level": _STR,
        "timestamp": {"type": "integer", "description": "unix milliseconds"},
        "title": _STR,
        "payload": _STR,
        "metadata": _STR,
        "origin": _STR,
        "received_at": {"type": "string", "format": "date-time"},
    },
}
_FULLSTACK_ERROR = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"type": "string", "enum": ["false"]},
        "error": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["error_name", "message"],
                "properties": {"error_name": _STR, "message": _STR},
            },
        },
    },
}
_FULLSTACK_OK = {
    "type": "object",
    "required": ["success", "data"],
    "properties": {
        "success": {"type": "string", "enum": ["true"]},
        "data": {
            "type": "object",
            "properties": {
                "data": {"type": "object", "properties": {"ok": _EVENT_OUT}},
                "success": {"type": "boolean"},
            },
        },
    },
}
COMPONENTS["schemas"].update(
    {
        "BackendEventIn": {
            "type": "object",
            "required": ["uuid", "type", "payload", "timestamp"],
            "properties": {
                "uuid": {"type": "string", "description": "the recording UUID (br-recording-uuid)"},
                "type": {"type": "string", "enum": ["log", "exception"]},
                "payload": {"type": "string", "description": "text, XML or JSON as a string"},
                "level": _STR,
                "timestamp": {"type": "integer", "description": "unix milliseconds"},
                "metadata": _STR,
                "title": _STR,
                "origin": _STR,
            },
        },
        "BackendEventBatch": {
            "type": "array",
            "maxItems": 1000,
            "items": {"$ref": "#/components/schemas/BackendEventIn"},
        },
        "BackendEvent": _EVENT_OUT,
        "BackendEventList": {
            "type": "object",
            "properties": {
                "recording": _STR,
                "recording_known": {"type": "boolean"},
                "events": {"type": "array", "items": _EVENT_OUT},
                "next_offset": {"type": ["integer", "null"]},
            },
        },
        "FullstackOk": _FULLSTACK_OK,
        "FullstackError": _FULLSTACK_ERROR,
        "FullstackBatchResult": {
            "type": "object",
            "properties": {
                "success": {"type": "string", "enum": ["true", "false"]},
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "description": "`status` plus the body `send` would have answered",
                        "properties": {"status": {"type": "integer"}},
                    },
                },
            },
        },
    }
)
COMPONENTS["responses"].update(
    {
        name: {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
        for name, description in (
            ("FullstackOk", "Stored (seed 001's success body)."),
            ("FullstackError", "Refused (seed 001's error body, one entry per problem)."),
            ("FullstackBatchResult", "One result per event."),
        )
    }
)

schemas = SchemaGenerator(
    {
        "openapi": "3.1.0",
        "info": {
            "title": "fieldreport",
            "version": __version__,
            "description": "Collects bug reports from the field and pushes them to your systems.",
        },
        "components": COMPONENTS,
    }
)


async def openapi_json(request: Request) -> Response:
    return JSONResponse(schemas.get_schema(routes=request.app.routes))


_DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fieldreport API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/init.js"></script></body></html>"""

_INIT_JS = "window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#ui'});"


async def docs(request: Request) -> Response:
    return HTMLResponse(_DOCS_HTML)


async def docs_init(request: Request) -> Response:
    return Response(_INIT_JS, media_type="text/javascript")


def routes() -> list[BaseRoute]:
    from swagger_ui_bundle import swagger_ui_path

    return [
        Route("/openapi.json", openapi_json, include_in_schema=False),
        Route("/docs", docs, include_in_schema=False),
        Route("/docs/static/init.js", docs_init, include_in_schema=False),
        Mount("/docs/static", StaticFiles(directory=Path(swagger_ui_path)), name="swagger"),
    ]
