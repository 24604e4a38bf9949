"""The routes every host calls each interval, run without FastAPI's per-request parameter solving.

FastAPI runs a route through its dependency solver on every request: it reads the JSON body into
Python objects, then validates them against the body's model, then calls the endpoint. For the
routes a fleet calls each interval (the challenge and the host attestation) that machinery cost
more than the challenge itself. :func:`lean` gives such a route a handler that does the same work
directly: path parameters as strings, the ``Request``, and a JSON body validated in one pass by
pydantic's own JSON parser (``model_validate_json``).

What stays FastAPI's: the route's declaration and so its OpenAPI schema, the exception handlers,
and every request this handler does not take - a body that is not ``application/json``, an empty
body, a body that does not validate: those go to FastAPI's own handler for the route (built
once), which answers them in its own words. A document that validates in JSON mode validates in
FastAPI's (``json.loads`` then Python mode) to the same model: the evidence models hold strings,
integers, lists and objects only (``tests/service/test_service_hotpath.py`` checks both).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, request_response
from pydantic import BaseModel, ValidationError

__all__ = ["JsonResponse", "lean"]


class JsonResponse(JSONResponse):
    """``JSONResponse`` rendered by orjson: the same bytes for the hot routes' answers (strings,
    integers, lists, objects; compact, non-ASCII kept), 3 instead of 20 µs for an attestation's.
    What orjson cannot render (an integer beyond 64 bits) is rendered as ``JSONResponse`` does."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return super().render(content)


def lean(route: APIRoute) -> bool:
    """Give ``route`` the direct handler when its endpoint has the shape it handles (``async``;
    ``str`` path parameters, optionally the ``Request`` and one pydantic-model body; no query,
    header or cookie parameters, no dependencies). Returns whether it did."""
    handler = _handler(route)
    if handler is None:
        return False
    route.app = request_response(handler)
    return True


def _handler(route: APIRoute) -> Callable[[Request], Awaitable[Response]] | None:
    d = route.dependant
    if (not inspect.iscoroutinefunction(d.call) or d.dependencies or d.query_params or d.header_params
            or d.cookie_params or len(d.body_params) > 1 or any(p.field_info.annotation is not str
                                                                 for p in d.path_params)):
        return None
    model = d.body_params[0].field_info.annotation if d.body_params else None
    if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    endpoint = d.call
    path_names = tuple(p.name for p in d.path_params)
    request_name = d.request_param_name
    body_name = d.body_params[0].name if model is not None else None
    fastapi_handler = route.get_route_handler()

    async def handle(request: Request) -> Response:
        kwargs: dict[str, Any] = {name: request.path_params[name] for name in path_names}
        if request_name is not None:
            kwargs[request_name] = request
        if model is not None:
            ctype = request.headers.get("content-type", "")
            if ctype.partition(";")[0].strip().lower() != "application/json":
                return await fastapi_handler(request)
            body = await request.body()  # kept on the request: FastAPI's handler reads it again
            if not body:
                return await fastapi_handler(request)
            try:
                kwargs[body_name] = model.model_validate_json(body)
            except ValidationError:  # FastAPI's handler says what is wrong, in its words
                return await fastapi_handler(request)
        return await endpoint(**kwargs)

    return handle
