"""Prometheus metrics and structured JSON logs with a request id.

Metrics live in a per-application :class:`prometheus_client.CollectorRegistry` (several apps in one
process - tests - do not collide):

* ``attestd_http_requests_total{method,route,status}``
* ``attestd_http_request_duration_seconds{method,route}`` (histogram)
* ``attestd_attestations_total{type,outcome,reason}`` - outcome ``permit``/``deny``/``error``;
  reason is ``ok``, the denying rule (``authorizationrules:3``, ``no_permit``) or the error code.
* ``attestd_attestation_duration_seconds{type}`` (histogram, verification + policy + signing)

Every request gets an id (``X-Request-Id`` from the client when it is 1-64 safe characters, else
a new one), echoed in the response header, in problem details (``requestId``) and in every log
line written while the request runs.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["JsonFormatter", "Metrics", "RequestContextMiddleware", "configure_logging", "request_id_var"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("attestd_request_id", default=None)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
log = logging.getLogger("attestd.access")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("attestd_http_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("attestd_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.attestations = Counter("attestd_attestations_total", "Attestations by type, outcome and reason",
                                    ["type", "outcome", "reason"], registry=self.registry)
        self.attestation_latency = Histogram("attestd_attestation_duration_seconds",
                                             "Attestation processing time", ["type"], registry=self.registry,
                                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


class JsonFormatter(logging.Formatter):
    _SKIP = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,  # which worker process (`attestd serve --workers N`)
        }
        rid = request_id_var.get()
        if rid:
            doc["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in self._SKIP and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(level: str = "INFO", json_logs: bool = True, stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s"))
    for name in ("attestd", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # attestd.access replaces it


class RequestContextMiddleware:
    """Pure ASGI middleware: request id, access log, HTTP metrics, body size limit."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        #: (method, route, status) -> the request counter's and the latency histogram's children
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        status = {"code": 500}

        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            from attestd.service.problems import problem_response

            resp = problem_response({"type": "urn:attestd:error:request.too_large", "title": "Request too large",
                                     "status": 413, "code": "request.too_large", "field": "body",
                                     "detail": f"the body is limited to {self.max_body} bytes",
                                     "requestId": rid}, headers={"x-request-id": rid})
            status["code"] = 413
            await resp(scope, receive, send)
            self._done(scope, status["code"], start)
            request_id_var.reset(token)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _BodyTooLarge()
            return message

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_wrapper)
        except _BodyTooLarge:
            status["code"] = 413
        finally:
            self._done(scope, status["code"], start)
            request_id_var.reset(token)

    def _done(self, scope: Scope, status: int, start: float) -> None:
        elapsed = time.perf_counter() - start
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        series = self._series.get((method, template, status))
        if series is None:
            series = (self.metrics.requests.labels(method, template, str(status)),
                      self.metrics.latency.labels(method, template))
            if len(self._series) < 1024:  # routes x methods x statuses: a few hundred in use
                self._series[(method, template, status)] = series
        series[0].inc()
        series[1].observe(elapsed)
        if log.isEnabledFor(logging.INFO):
            log.info("request", extra={"method": method, "path": scope.get("path"), "route": template,
                                       "status": status, "duration_ms": round(elapsed * 1000, 2),
                                       "request_id": request_id_var.get()})


class _BodyTooLarge(Exception):
    pass
