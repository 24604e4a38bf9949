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


def error_response(exc: AttestdError, request: Request) -> JSONResponse:
    problem = exc.to_problem(instance=request.url.path)
    rid = getattr(request.state, "request_id", None)
    if rid:
        problem["requestId"] = rid
    return problem_response(problem, getattr(exc, "headers", None))


_LEADING_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*): ")


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def install_handlers(app: FastAPI) -> None:
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
