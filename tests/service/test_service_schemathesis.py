"""schemathesis against the service's own OpenAPI document, in process (ASGI): every operation,
a bounded number of generated requests each; no request, however odd, gets a 5xx, and every
response conforms to the document (status code documented, media type documented, body valid
against the documented schema - including the RFC 9457 problems and Azure's error shape).

Requests carry the operator token and name tenant ``default``, so they reach the routes' work
rather than stopping at authentication or ``tenant.not_found``; the TEE routes accept requests
without a nonce here (``tee_nonce = "optional"``) and trust throwaway roots, so generated evidence
reaches the TEE parsers instead of stopping at the nonce.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from service_tee_pki import throwaway_roots

from attestd.service.app import create_app
from attestd.service.config import load_settings

#: generated requests per operation (35+ operations: well under a minute in all)
MAX_EXAMPLES = 25


@schemathesis.serializer("application/jose")
def _jose(ctx, value):
    """Policies may be sent as JWS (application/jose): compact text."""
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


_DATA = Path(tempfile.mkdtemp(prefix="attestd-schemathesis-"))
APP = create_app(load_settings(None, env={}, data_dir=_DATA / "data", tee_nonce="optional",
                               **throwaway_roots(_DATA)), announce=lambda _: None)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

@pytest.fixture(scope="module", autouse=True)
def _lifespan():
    from fastapi.testclient import TestClient

    with TestClient(APP):  # runs the lifespan: migrations and the default tenant
        yield
    shutil.rmtree(_DATA, ignore_errors=True)


def _operator() -> dict[str, str]:
    creds = json.loads((_DATA / "data" / "initial-credentials.json").read_text())
    return {"Authorization": f"Bearer {creds['operatorToken']}"}


def test_openapi_document_describes_errors():
    doc = APP.openapi()
    assert "HTTPValidationError" not in json.dumps(doc)  # invalid requests are 400 problems, not FastAPI's 422
    for path, item in doc["paths"].items():
        for op in item.values():
            assert "4XX" in op["responses"], (path, op.get("operationId"))
    tee = doc["paths"]["/tenants/{t}/attest/SevSnpVm"]["post"]
    assert tee["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("AttestSevSnpVmRequest")
    assert set(tee["responses"]["400"]["content"]) == {"application/problem+json", "application/json"}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors_and_conforming_responses(case):
    case.headers = {**(case.headers or {}), **_operator()}
    if "t" in (case.path_parameters or {}):
        case.path_parameters["t"] = "default"  # reach the routes' work, not only tenant.not_found
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])
