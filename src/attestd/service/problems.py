"""RFC 9457 problem details for every error the API returns.

Every error body is ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail``,
``code`` (the stable :class:`~attestd.errors.AttestdError` code), ``field`` when one input is at
fault, and - for clients written against Azure Attestation - ``error: {code, message}``, which is
what Azure's routes answer. Unexpected exceptions become a 500 ``internal`` problem carrying the
request id only (the traceback goes to the log).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from attestd.errors import AttestdError

__all__ = ["ApiError", "install_handlers", "problem_response"]

log = logging.getLogger("attestd.service")


class ApiError(AttestdError):
    """An error of the service itself (auth, not found, conflicts); status chosen per instance."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 details: dict[str, Any] | None = None, title: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(code, message, field=field, details=details)
        self.http_status = status
        self.title = title or _TITLES.get(status, "Request failed")
        self.headers = headers or {}

    def at(self, *, field=None, offset=None):  # keep status/title when relocated
        e = ApiError(self.http_status, self.code, self.message, field=self.field or field,
                     details=self.details, title=self.title, headers=self.headers)
        return e


_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 413: "Request too large", 415: "Unsupported media type",
           422: "Evidence did not verify", 500: "Internal error", 503: "Service unavailable"}


def problem_response(problem: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    body = dict(problem)
    body["error"] = {"code": body.get("code", "error"), "message": body.get("detail", body.get("title", ""))}
    return JSONResponse(body, status_code=int(body["status"]), headers=headers,
                        media_type="application/problem+json")


#: Azure-shaped routes (``/tenants/{t}/attest/{type}``): errors carry Azure's ``x-ms-error-code``
#: header, and a client that asks for ``application/json`` rather than ``application/problem+json``
#: gets Azure's CloudError body ``{"error": {"code", "message"}}`` alone.
_AZURE_ROUTE = re.compile(r"^/tenants/[^/]+/attest/[^/]+$")


def wants_azure_error(accept: str | None) -> bool:
    """True when ``Accept`` prefers ``application/json`` to ``application/problem+json`` (Azure SDKs
    send ``Accept: application/json``; ``*/*`` or no header keeps RFC 9457)."""
    if not accept:
        return False
    weights: dict[str, float] = {}
    for part in accept.split(","):
        items = part.split(";")
        media = items[0].strip().lower()
        weight = 1.0
        for param in items[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
        weights[media] = max(weights.get(media, 0.0), weight)
    json_q = weights.get("application/json", 0.0)
    return json_q > 0 and json_q > weights.get("application/problem+json", 0.0)


def error_response(exc: AttestdError, request: Request) -> JSONResponse:
    problem = exc.to_problem(instance=request.url.path)
    rid = getattr(request.state, "request_id", None)
    if rid:
        problem["requestId"] = rid
    headers = dict(getattr(exc, "headers", None) or {})
    if _AZURE_ROUTE.match(request.url.path):
        headers["x-ms-error-code"] = exc.code
        if wants_azure_error(request.headers.get("accept")):
            return JSONResponse({"error": {"code": exc.code, "message": problem["detail"]}},
                                status_code=int(problem["status"]), headers=headers)
    return problem_response(problem, headers or None)


_LEADING_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*): ")


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "title": "Problem",
    "description": "RFC 9457 problem details; `code` is stable, `error` is Azure's shape of the same error",
    "required": ["type", "title", "status", "code", "error"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "code": {"type": "string"}, "field": {"type": "string"},
        "offset": {"type": "integer"}, "details": {"type": "object"}, "instance": {"type": "string"},
        "requestId": {"type": "string"},
        "error": {"$ref": "#/components/schemas/AzureErrorDetail"},
    },
}
AZURE_ERROR_SCHEMAS: dict[str, Any] = {
    "AzureErrorDetail": {"type": "object", "title": "AzureErrorDetail", "required": ["code", "message"],
                         "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
    "AzureCloudError": {"type": "object", "title": "AzureCloudError", "required": ["error"],
                        "description": "Azure's error body (Azure-shaped routes, `Accept: application/json`)",
                        "properties": {"error": {"$ref": "#/components/schemas/AzureErrorDetail"}}},
}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Describe the error bodies in an OpenAPI document FastAPI generated: every 4xx/5xx response
    is a ``Problem`` (``application/problem+json``; also ``AzureCloudError`` as ``application/json``
    on the Azure-shaped routes), undocumented 4xx fall under ``4XX``, and FastAPI's 422
    ``HTTPValidationError`` goes (invalid requests are 400 problems here)."""
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    comps["Problem"] = PROBLEM_SCHEMA
    comps.update(AZURE_ERROR_SCHEMAS)
    for path, item in schema.get("paths", {}).items():
        azure = bool(_AZURE_ROUTE.match(path.replace("{t}", "t")))
        content: dict[str, Any] = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        if azure:
            content["application/json"] = {"schema": {"$ref": "#/components/schemas/AzureCloudError"}}
        for op in item.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses = op["responses"]
            if "HTTPValidationError" in str(responses.get("422", "")):
                del responses["422"]
            for code, resp in responses.items():
                if code[:1] in "45":
                    resp["content"] = content
            responses.setdefault("4XX", {"description": "error (RFC 9457 problem details)", "content": content})
            if path == "/readyz":
                responses["503"] = {"description": "starting, stopping, or the database is unreachable",
                                    "content": content}
    if "HTTPValidationError" not in str(schema.get("paths", {})):
        comps.pop("HTTPValidationError", None)
        if "ValidationError" not in str({k: v for k, v in comps.items() if k != "ValidationError"}):
            comps.pop("ValidationError", None)
    return schema


def install_handlers(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if getattr(app.state, "openapi_documented", False) and app.openapi_schema is not None:
            return app.openapi_schema
        schema = document_problems(generate())
        app.openapi_schema = schema
        app.state.openapi_documented = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(AttestdError)
    async def _attestd(request: Request, exc: AttestdError):
        status = int(getattr(exc, "http_status", 400))
        if status >= 500:
            log.error("request failed: %s", exc, extra={"code": exc.code})
        return error_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        field = _field_of(tuple(first.get("loc", ())))
        if first.get("type") == "json_invalid":  # loc is ("body", <character position>)
            field = "body"
        msg = str(first.get("msg", "invalid"))
        # The ValueError text our validators raise is the useful part ("Value error, ..." prefix dropped).
        msg = msg.removeprefix("Value error, ")
        # Model-level checks start their message with the member at fault ("quote: ...").
        lead = _LEADING_FIELD.match(msg)
        if lead and field == "body":
            field = lead.group(1)
        details = {"errors": [{"field": _field_of(tuple(e.get("loc", ()))),
                               "message": str(e.get("msg", "")).removeprefix("Value error, "),
                               "type": e.get("type")} for e in errors[:20]]}
        code = "request.invalid_json" if first.get("type") == "json_invalid" else "request.invalid"
        return error_response(ApiError(400, code, f"{field}: {msg}", field=field, details=details), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "http.not_found", 405: "http.method_not_allowed", 400: "request.unparseable",
                413: "request.too_large"}.get(exc.status_code, f"http.{exc.status_code}")
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "error")
        field = "body" if exc.status_code in (400, 413) else None
        return error_response(ApiError(exc.status_code, code, detail, field=field, headers=dict(exc.headers or {})),
                              request)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("unhandled error")
        return error_response(ApiError(500, "internal", "internal error; see the server log for this request id"),
                              request)
