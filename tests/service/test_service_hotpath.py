"""The direct handler of the routes every host calls (attestd.service.hotpath) answers exactly as
FastAPI's own handler of the same route: each request here is sent twice, once through each, and
the two answers must be equal (status, content type, problem details but the request id)."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI, Query, Request
from fastapi.routing import APIRoute, request_response
from hypothesis import given, settings
from hypothesis import strategies as st
from test_service_evidence import AK_PEM, GOOD_PCRS

from attestd.service.app import HOT_ROUTES
from attestd.service.hotpath import lean


def _route(app, method: str, path: str) -> APIRoute:
    return next(r for r in app.router.routes if isinstance(r, APIRoute) and r.path == path and method in r.methods)


def _both(service, method: str, template: str, path: str, **kwargs):
    """The answer through the direct handler, then through FastAPI's."""
    route = _route(service.app, method, template)
    direct = route.app
    answers = []
    for app in (direct, request_response(route.get_route_handler())):
        route.app = app
        try:
            answers.append(service.client.request(method, path, **kwargs))
        finally:
            route.app = direct
    return answers


def _same(a, b) -> None:
    assert (a.status_code, a.headers["content-type"]) == (b.status_code, b.headers["content-type"]), (a.text, b.text)
    da, db = a.json(), b.json()
    if isinstance(da, dict):
        da.pop("requestId", None), db.pop("requestId", None)
    assert da == db


def test_hot_routes_skip_fastapis_parameter_solving(service, monkeypatch):
    import fastapi.routing

    for method, path in HOT_ROUTES:
        assert service.app.router.routes.index(_route(service.app, method, path)) < len(HOT_ROUTES)

    async def unavailable(*args, **kwargs):
        raise RuntimeError("FastAPI's dependency solver was called")

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", unavailable)
    assert service.client.post("/tenants/default/challenge").status_code == 200
    # a document that validates reaches the endpoint, which refuses its nonce
    r = service.client.post("/tenants/default/attest/Tpm", content=_doc(service, nonce="short"),
                            headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (400, "nonce.malformed")
    # every other route goes through it
    assert service.client.get("/tenants/default/.well-known/openid-configuration").status_code == 500


BODIES = [
    b"[" * 100_000, b'{"ak": ' * 50_000, b"\xff\xfe\x00garbage", b"not json", b"null", b"[]", b"{}", b"5",
    b'{"nonce": 1' + b"0" * 5000 + b"}", b'{"ak": "AAAA", "ak": 5}', b'{"ak": NaN}',
]


def _doc(service, **over) -> bytes:
    nonce = service.client.post("/tenants/default/challenge").json()["nonce"]
    doc = {"ak": AK_PEM, "quote": "AAAA", "signature": "AAAA", "pcrs": GOOD_PCRS, "nonce": nonce}
    doc.update(over)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


@pytest.mark.parametrize("over", [
    {"quote": "!!!not base64!!!"}, {"signature": "AAA"}, {"ak": "%%%%"}, {"pcrs": {"sha256": {"24": "00" * 32}}},
    {"pcrs": {"sha256": {"0": "zz" * 32}}}, {"nonce": ...}, {"quote": ..., "signature": ...}, {"extra": 1},
    {"eventLog": 5}, {"runtimeData": {"data": "AAAA", "dataType": "XML"}}, {"nonce": "short"},
    {"identity": {"public": 5}}, {"imaFirstIndex": -1}, {"imaFirstIndex": "1.5"},
])
@pytest.mark.parametrize("template", ["/tenants/{t}/attest/Tpm", "/tenants/{t}/hosts/{h}/attest"])
def test_invalid_documents_answer_as_fastapi_does(service, template, over):
    path = template.replace("{t}", "default").replace("{h}", "00000000-0000-0000-0000-000000000000")
    body = _doc(service, **over)
    a, b = _both(service, "POST", template, path, content=body, headers={"content-type": "application/json"})
    assert a.status_code in (400, 404)
    _same(a, b)


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8", "text/plain",
                                   "application/jose+json", None])
@pytest.mark.parametrize("body", BODIES + [b""])
def test_hostile_bodies_answer_as_fastapi_does(service, body, ctype):
    headers = {"content-type": ctype} if ctype else {}
    a, b = _both(service, "POST", "/tenants/{t}/attest/Tpm", "/tenants/default/attest/Tpm", content=body,
                 headers=headers)
    assert a.status_code == 400, a.text
    _same(a, b)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=8)
BASE = {"ak": AK_PEM, "quote": "AAAA", "signature": "AAAA", "pcrs": GOOD_PCRS, "nonce": "n" * 43,
        "identity": {"public": "AAAA", "certifyInfo": "AAAA", "signature": "AAAA"}, "imaFirstIndex": 0}


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from([*BASE, "eventLog", "imaLog", "runtimeData", "quotes", "draftPolicyForAttestation",
                            "other"]), value=JSON, drop=st.booleans())
def test_json_mode_and_fastapis_python_mode_agree(key, value, drop):
    """What model_validate_json takes, FastAPI's json.loads + model_validate takes to the same model."""
    from pydantic import ValidationError

    from attestd.service.fleet import HostEvidence

    doc = dict(BASE)
    if drop:
        doc.pop(key, None)
    else:
        doc[key] = value
    raw = json.dumps(doc).encode()
    try:
        direct = HostEvidence.model_validate_json(raw)
    except ValidationError:
        return  # the direct handler hands these to FastAPI's
    assert HostEvidence.model_validate(json.loads(raw)) == direct


def test_challenge_answers_as_fastapi_does(service):
    a, b = _both(service, "POST", "/tenants/{t}/challenge", "/tenants/nobody/challenge")
    assert a.status_code == 404
    _same(a, b)
    a, b = _both(service, "POST", "/tenants/{t}/challenge", "/tenants/default/challenge")
    assert a.status_code == b.status_code == 200
    assert set(a.json()) == set(b.json()) == {"nonce", "expiresAt"}


def test_a_valid_attestation_through_the_direct_handler(service):
    """The document the direct handler built is the one FastAPI would: the endpoint gets a model."""
    from service_tpm import BootedTPM

    from attestd.testing.swtpm import swtpm_available

    if not swtpm_available():
        pytest.skip("swtpm not installed")
    booted = BootedTPM("sb")
    try:
        nonce = service.client.post("/tenants/default/challenge").json()["nonce"]
        r = service.client.post("/tenants/default/attest/Tpm", content=json.dumps(booted.evidence(nonce)),
                                headers={"content-type": "application/json"})
    finally:
        booted.close()
    assert r.status_code in (200, 403), r.text  # the default policy decides; the document was taken
    assert r.json().get("code") != "request.invalid"


def test_openapi_unchanged_by_the_direct_handler(service):
    spec = service.client.get("/openapi.json").json()
    body = spec["paths"]["/tenants/{t}/attest/Tpm"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/TpmEvidence"}
    assert "requestBody" not in spec["paths"]["/tenants/{t}/challenge"]["post"]


def test_lean_refuses_what_it_does_not_handle():
    app = FastAPI()

    @app.get("/q/{x}")
    async def with_query(x: str, n: int = Query(1)) -> dict:
        return {}

    @app.get("/s/{x}")
    def sync_endpoint(x: str) -> dict:
        return {}

    @app.get("/i/{x}")
    async def int_path(x: int) -> dict:
        return {}

    @app.post("/ok/{x}")
    async def fine(request: Request, x: str) -> dict:
        return {}

    routes = {r.path: r for r in app.router.routes if isinstance(r, APIRoute)}
    assert not lean(routes["/q/{x}"]) and not lean(routes["/s/{x}"]) and not lean(routes["/i/{x}"])
    assert lean(routes["/ok/{x}"])


def test_the_hot_routes_json_is_byte_for_byte_starlettes():
    """JsonResponse (orjson) renders the same bytes as JSONResponse for what the hot routes answer
    - strings with any character, integers, booleans, null, lists, objects - and falls back to it
    for what orjson refuses (an integer beyond 64 bits)."""
    from fastapi.responses import JSONResponse
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from attestd.service.hotpath import JsonResponse

    values = st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20)

    @settings(max_examples=300, deadline=None)
    @given(values)
    def same(doc):
        assert JsonResponse(doc).body == JSONResponse(doc).body

    same()
    big = {"n": 2**70, "s": "\u00e9\x00\n\u2028"}
    assert JsonResponse(big).body == JSONResponse(big).body
