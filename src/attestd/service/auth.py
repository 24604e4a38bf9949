"""Bearer-token authentication.

Tokens are ``atd_`` + 43 base64url characters (256 random bits), stored as SHA-256 hashes only.
A ``tenant`` token administers exactly one tenant; an ``operator`` token (created on first start)
creates tenants and may administer any tenant. Requests for another tenant with a tenant token
are refused with 403 ``auth.wrong_tenant`` (before the tenant's existence is checked, so tokens do
not reveal which tenants exist).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from attestd.service.problems import ApiError
from attestd.store import Store

__all__ = ["Principal", "authenticate", "require_operator", "require_tenant_admin"]


@dataclass(frozen=True)
class Principal:
    scope: str  # "tenant" | "operator"
    tenant: str | None
    token_id: int

    @property
    def actor(self) -> str:
        return f"{self.scope}-token:{self.token_id}"


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, field="Authorization",
                    headers={"WWW-Authenticate": 'Bearer realm="attestd"'})


def authenticate(request: Request, store: Store) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("auth.missing", "this request needs an Authorization: Bearer token")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        raise _unauthorized("auth.malformed", "use Authorization: Bearer <token>")
    row = store.lookup_token(token)
    if row is None:
        raise _unauthorized("auth.invalid_token", "the bearer token is not valid (unknown or revoked)")
    return Principal(row.scope, row.tenant_name, row.id)


def require_operator(request: Request, store: Store) -> Principal:
    p = authenticate(request, store)
    if p.scope != "operator":
        raise ApiError(403, "auth.operator_required", "this request needs an operator token")
    return p


def require_tenant_admin(request: Request, store: Store, tenant: str) -> Principal:
    p = authenticate(request, store)
    if p.scope == "operator":
        return p
    if p.scope != "tenant" or p.tenant != tenant:
        raise ApiError(403, "auth.wrong_tenant", "this token does not administer this tenant")
    return p
