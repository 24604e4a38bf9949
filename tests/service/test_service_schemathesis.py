"""schemathesis against the service's own OpenAPI document: no request, however odd, gets a 5xx,
and responses conform to the schema."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from attestd.service.app import create_app
from attestd.service.config import load_settings

@schemathesis.serializer("application/jose")
def _jose(ctx, value):
    """Policies may be sent as JWS (application/jose): compact text."""
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


_DATA = tempfile.mkdtemp(prefix="attestd-schemathesis-")
APP = create_app(load_settings(None, env={}, data_dir=_DATA), announce=lambda _: None)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _lifespan():
    from fastapi.testclient import TestClient

    with TestClient(APP):  # runs the lifespan: migrations and the default tenant
        yield


def _admin() -> dict[str, str]:
    creds = json.loads((Path(_DATA) / "initial-credentials.json").read_text())
    return {"Authorization": f"Bearer {creds['adminToken']}"}


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.headers = {**(case.headers or {}), **_admin()}
    case.call_and_validate(checks=[not_a_server_error])
