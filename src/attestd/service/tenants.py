"""Tenant rules: creation, key sets, policies per attestation type, trusted policy signers.

Modes (as Azure Attestation's providers):

* ``shared`` - the built-in default policies only; policy and signer changes are refused.
* ``token``  - (Azure's "AAD" mode) the tenant's admin bearer token authorises changes; a policy is
  plain text, an unsigned policy JWS (``alg: none``), or a JWS signed by a trusted signer.
* ``isolated`` - besides the admin token, every policy must be a JWS signed by one of the tenant's
  trusted signer certificates, a reset must be a JWS signed by one, and adding or removing a signer
  certificate takes a JWS signed by a currently trusted signer (payload
  ``{"policyCertificate": {JWK with x5c}}``, Azure's format). The last signer cannot be removed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from attestd.errors import AttestdError
from attestd.policy import builtin, compile_policy, parse_signed_policy, policy_hash
from attestd.policy.evaluate import Policy
from attestd.service.config import Settings
from attestd.service.problems import ApiError
from attestd.store import PolicyVersion, Store, Tenant
from attestd.tokens import KeyManagementError, KeySet, RotationPolicy, generate_signing_key
from attestd.tokens import policy_hash as document_hash

__all__ = ["ATTESTATION_TYPES", "DEFAULT_POLICIES", "MODES", "TEE_DEFAULT_POLICIES", "TenantService", "canonical_type",
           "default_policy_text", "is_jws"]

MODES = ("shared", "token", "isolated")
#: attestation types (Azure's spelling) and the ``x-ms-attestation-type`` of their tokens.
ATTESTATION_TYPES = {"Tpm": "tpm", "SgxEnclave": "sgx", "OpenEnclave": "sgx", "SevSnpVm": "sevsnpvm",
                     "TdxVm": "tdxvm"}
#: default (and reset) policy per type, never permit-all: a built-in of :mod:`attestd.policy.builtin`
#: (TPM) or one of :data:`TEE_DEFAULT_POLICIES` (the service's TEE defaults).
DEFAULT_POLICIES = {"Tpm": "linux-secure-boot", "SgxEnclave": "attestd-sgx-default",
                    "OpenEnclave": "attestd-sgx-default", "SevSnpVm": "attestd-sevsnpvm-default",
                    "TdxVm": "attestd-tdxvm-default"}

#: The TEE defaults. Azure's default SGX policy permits every verified enclave and issues
#: is-debuggable, sgx-mrsigner, sgx-mrenclave, product-id, svn and tee; these keep its issuance
#: rules but are fail-closed on what Azure leaves to the relying party:
#:
#: * a debuggable enclave / VM / TD is denied (its memory is readable by the host), and so is a
#:   missing debug claim;
#: * Intel quotes must have had their TCB evaluated (``attester_tcb_status`` present: collateral
#:   was configured or fetched) and not be OutOfDate / OutOfDateConfigurationNeeded (Revoked already
#:   fails verification);
#: * an SEV-SNP guest whose policy allows a migration agent is denied (the agent can export it).
#:
#: An administrator who accepts more sets a policy for the type.
TEE_DEFAULT_POLICIES = {
    "attestd-sgx-default": """version=1.2;
authorizationrules {
    // a debuggable enclave (or one whose debug flag is unknown) is never trusted by default
    ![type=="x-ms-sgx-is-debuggable", issuer=="AttestationService", value==false] => deny();
    // the TCB level must be known (Intel collateral configured or fetched) and current enough
    ![type=="attester_tcb_status", issuer=="AttestationService"] => deny();
    [type=="attester_tcb_status", value=="OutOfDate"] => deny();
    [type=="attester_tcb_status", value=="OutOfDateConfigurationNeeded"] => deny();
    => permit();
};
issuancerules {
    c:[type=="x-ms-sgx-is-debuggable"] => issue(type="is-debuggable", value=c.value);
    c:[type=="x-ms-sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value);
    c:[type=="x-ms-sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);
    c:[type=="x-ms-sgx-product-id"] => issue(type="product-id", value=c.value);
    c:[type=="x-ms-sgx-svn"] => issue(type="svn", value=c.value);
    c:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);
};
""",
    "attestd-sevsnpvm-default": """version=1.2;
authorizationrules {
    // a guest launched with debugging allowed (or whose debug flag is unknown) is not trusted
    ![type=="x-ms-sevsnpvm-is-debuggable", issuer=="AttestationService", value==false] => deny();
    // nor one whose policy lets a migration agent export it
    ![type=="x-ms-sevsnpvm-migration-allowed", issuer=="AttestationService", value==false] => deny();
    => permit();
};
issuancerules {
    c:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);
};
""",
    "attestd-tdxvm-default": """version=1.2;
authorizationrules {
    // a debuggable TD (or one whose debug attribute is unknown) is not trusted
    ![type=="tdx_td_attributes_debug", issuer=="AttestationService", value==false] => deny();
    // the TCB level must be known (Intel collateral configured or fetched) and current enough
    ![type=="attester_tcb_status", issuer=="AttestationService"] => deny();
    [type=="attester_tcb_status", value=="OutOfDate"] => deny();
    [type=="attester_tcb_status", value=="OutOfDateConfigurationNeeded"] => deny();
    => permit();
};
issuancerules {
    c:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);
};
""",
}


def default_policy_text(name: str) -> str:
    """The text of default policy ``name``: a service TEE default or a built-in."""
    return TEE_DEFAULT_POLICIES[name] if name in TEE_DEFAULT_POLICIES else builtin.text(name)

TENANT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
_JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$")
MAX_POLICY_BYTES = 1024 * 1024


def canonical_type(name: str) -> str:
    for t in ATTESTATION_TYPES:
        if t.lower() == name.lower():
            return t
    raise ApiError(404, "policy.unknown_type",
                   f"unknown attestation type {name!r}; types: {', '.join(ATTESTATION_TYPES)}",
                   field="attestationType")


def is_jws(body: str) -> bool:
    return bool(_JWS.match(body.strip()))


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_pem_certificate(pem: str, field: str = "certificate") -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, TypeError):
        raise ApiError(400, "signer.invalid_certificate", "not a PEM X.509 certificate", field=field) from None


class _Registry(JWSRegistry):
    max_header_length = 64 * 1024
    max_payload_length = 1024 * 1024


@dataclass(frozen=True)
class SignerJws:
    payload: Any
    signer: x509.Certificate


def verify_signer_jws(token: str, trusted: Sequence[x509.Certificate], *, now: datetime, field: str) -> SignerJws:
    """A compact JWS signed (RS256/PS256/ES256) by one of ``trusted``; the header's ``x5c`` leaf (or
    ``jwk``) only *selects* the trusted certificate, whose key verifies the signature."""
    token = token.strip()
    if not _JWS.match(token):
        raise ApiError(400, "signer.jws_malformed", "expected a compact JWS", field=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = jws.extract_compact(token.encode(), registry=_Registry())
        header = dict(obj.headers())
    except (JoseError, ValueError, TypeError) as exc:
        raise ApiError(400, "signer.jws_malformed", f"cannot decode JWS: {exc}", field=field) from None
    alg = header.get("alg")
    if alg not in ("RS256", "PS256", "ES256"):
        raise ApiError(403, "signer.unsupported_alg", f"the JWS must be signed (RS256, PS256 or ES256), not {alg!r}",
                       field=field)
    claimed = None
    try:
        if isinstance(header.get("x5c"), list) and header["x5c"]:
            claimed = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0], validate=True)).public_key()
        elif isinstance(header.get("jwk"), dict):
            claimed = (ECKey if header["jwk"].get("kty") == "EC" else RSAKey).import_key(header["jwk"]).public_key
    except (ValueError, TypeError, binascii.Error, JoseError, KeyError):
        raise ApiError(400, "signer.jws_malformed", "the JWS header's x5c/jwk is not a certificate/key",
                       field=field) from None
    if claimed is None:
        raise ApiError(403, "signer.missing", "the JWS names no signer (x5c or jwk header)", field=field)
    spki = claimed.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    signer = next((c for c in trusted if c.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == spki), None)
    if signer is None:
        raise ApiError(403, "signer.untrusted", "the JWS is not signed by a trusted policy signer", field=field)
    if not (signer.not_valid_before_utc <= now <= signer.not_valid_after_utc):
        raise ApiError(403, "signer.expired", "the trusted signer certificate is outside its validity period",
                       field=field)
    pub = signer.public_key()
    key = ECKey.import_key(pub) if alg == "ES256" else RSAKey.import_key(pub)
    try:
        verified = jws.deserialize_compact(token, key, registry=_Registry(algorithms=[alg]))
    except (BadSignatureError, JoseError, ValueError, TypeError):
        raise ApiError(403, "signer.signature_invalid", "the JWS signature does not verify", field=field) from None
    try:
        payload = json.loads(verified.payload) if verified.payload else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "signer.jws_malformed", "the JWS payload is not JSON", field=field) from None
    return SignerJws(payload, signer)


#: how long the attestation path may use a tenant row it read (seconds)
TENANT_CACHE_SECONDS = 2.0


class TenantService:
    def __init__(self, store: Store, settings: Settings, *, clock: Callable[[], datetime],
                 randbytes: Callable[[int], bytes]) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.randbytes = randbytes
        self._keysets: dict[str, tuple[int, KeySet]] = {}
        self._lock = threading.Lock()
        #: tenant rows read in the last TENANT_CACHE_SECONDS (every attestation reads its tenant)
        self._tenants: dict[str, tuple[float, Tenant]] = {}
        #: (tenant, type, version) -> policy row: a version number is immutable
        self._policies: dict[tuple[str, str, int], PolicyVersion] = {}
        #: (tenant, type) -> the current policy as last read by this process
        self._latest: dict[tuple[str, str], PolicyVersion] = {}

    # -- tenants --------------------------------------------------------------------------------
    def issuer(self, name: str) -> str:
        return self.settings.issuer(name)

    def get(self, name: str, *, cached: bool = False) -> Tenant:
        """The tenant; ``cached=True`` accepts a row read within TENANT_CACHE_SECONDS (the
        attestation path: a tenant's mode and key set version change rarely, and a key is
        published before it signs)."""
        if cached:
            hit = self._tenants.get(name)
            if hit is not None and time.monotonic() - hit[0] < TENANT_CACHE_SECONDS:
                return hit[1]
        tenant = self.store.get_tenant(name) if TENANT_NAME.match(name) else None
        if tenant is None:
            raise ApiError(404, "tenant.not_found", f"no tenant {name!r}", field="tenant")
        self._tenants[name] = (time.monotonic(), tenant)
        return tenant

    def create(self, name: str, mode: str, *, signer_pems: Sequence[str] = (), actor: str) -> tuple[Tenant, str]:
        """Create a tenant; returns it and its first admin token (shown once, stored hashed)."""
        if not isinstance(name, str) or not TENANT_NAME.match(name):
            raise ApiError(400, "tenant.invalid_name",
                           "tenant names are 1-32 lower-case letters, digits and inner hyphens", field="name")
        if mode not in MODES:
            raise ApiError(400, "tenant.invalid_mode", f"mode is one of {', '.join(MODES)}", field="mode")
        certs = [load_pem_certificate(p, f"signers.{i}") for i, p in enumerate(signer_pems)]
        if mode == "isolated" and not certs:
            raise ApiError(400, "tenant.signers_required",
                           "an isolated tenant needs at least one trusted policy signer certificate", field="signers")
        now = self.clock()
        issuer = self.issuer(name)
        if len(issuer) > 64:
            raise ApiError(400, "tenant.issuer_too_long",
                           f"issuer {issuer!r} is longer than 64 characters (the signing certificate's CN "
                           "limit); use a shorter tenant name or public_url", field="name")
        key = generate_signing_key(issuer, now=now, alg=self.settings.signing_alg)
        keyset = KeySet.create(key, now=now, policy=RotationPolicy(
            max_token_lifetime=timedelta(seconds=self.settings.token_lifetime_seconds)))
        policies = []
        for t, b in DEFAULT_POLICIES.items():
            text = default_policy_text(b)
            policies.append({"attestation_type": t, "text": text, "document": text,
                             "policy_hash": policy_hash(text), "token_hash": document_hash(text), "builtin": b})
        tenant = self.store.create_tenant(name, mode, keyset, now=now, actor=actor, policies=policies,
                                          signers=[(fingerprint(c), cert_pem(c)) for c in certs])
        token = self.store.add_token(name, scope="tenant", label="initial admin token", now=now, actor=actor,
                                     randbytes=self.randbytes)
        return tenant, token

    def keyset(self, tenant: Tenant) -> KeySet:
        with self._lock:
            cached = self._keysets.get(tenant.name)
        if cached is not None and cached[0] == tenant.keyset_version:
            return cached[1]
        keyset = self.store.load_keyset(tenant)
        with self._lock:
            self._keysets[tenant.name] = (tenant.keyset_version, keyset)
        return keyset

    def rotate_key(self, tenant: Tenant, *, actor: str) -> KeySet:
        now = self.clock()
        keyset = self.keyset(tenant).prune(now)
        key = generate_signing_key(self.issuer(tenant.name), now=now, alg=self.settings.signing_alg)
        try:
            new = keyset.rotate(now, key)
        except KeyManagementError as exc:  # keys.rotation_pending while a successor waits to activate
            raise ApiError(409, exc.code, exc.message) from None
        self.store.replace_keyset(tenant.name, new, expected_version=tenant.keyset_version, now=now, actor=actor,
                                  action="keys.rotate", details={"kid": key.kid})
        return new

    # -- signers --------------------------------------------------------------------------------
    def signers(self, tenant: str) -> list[x509.Certificate]:
        return [x509.load_pem_x509_certificate(s.cert_pem.encode()) for s in self.store.list_signers(tenant)]

    def change_signer(self, tenant: Tenant, body: bytes, *, add: bool, actor: str) -> tuple[x509.Certificate, bool]:
        if tenant.mode == "shared":
            raise ApiError(403, "tenant.shared_mode", "a shared-mode tenant has no policy signers")
        now = self.clock()
        text = _text(body, "body")
        if is_jws(text):
            signed = verify_signer_jws(text, self.signers(tenant.name), now=now, field="body")
            cert = _policy_certificate(signed.payload)
        elif tenant.mode == "isolated":
            raise ApiError(403, "signer.signature_required",
                           "an isolated tenant changes signers only with a JWS signed by a trusted signer",
                           field="body")
        else:
            try:
                doc = json.loads(text)
            except (ValueError, RecursionError):
                doc = None
            if not isinstance(doc, dict) or not isinstance(doc.get("certificate"), str):
                raise ApiError(400, "signer.invalid_request",
                               'send {"certificate": "<PEM>"} or a signed JWS', field="certificate")
            cert = load_pem_certificate(doc["certificate"])
        fp = fingerprint(cert)
        if add:
            changed = self.store.add_signer(tenant.name, fp, cert_pem(cert), now=now, actor=actor)
        else:
            current = self.store.list_signers(tenant.name)
            if tenant.mode == "isolated" and [s.fingerprint for s in current] == [fp]:
                raise ApiError(409, "signer.last", "the last trusted signer of an isolated tenant cannot be removed")
            changed = self.store.remove_signer(tenant.name, fp, now=now, actor=actor)
        return cert, changed

    # -- policies -------------------------------------------------------------------------------
    def current_policy(self, tenant: str, attestation_type: str, *, cached: bool = False) -> PolicyVersion:
        """The current policy. Its version number is read every time (a policy set through another
        replica applies at once); the row of a version, which never changes, is cached.

        ``cached``: the version this process saw last, without a query - for attestations, which
        confirm it when they commit (``Store.record_attestation(policy_version=...)``) and decide
        again under the new version when it changed."""
        if cached:
            row = self._latest.get((tenant, attestation_type))
            if row is not None:
                return row
        row = self._current_policy(tenant, attestation_type)
        if len(self._latest) > 4096:
            self._latest.clear()
        self._latest[(tenant, attestation_type)] = row
        return row

    def _current_policy(self, tenant: str, attestation_type: str) -> PolicyVersion:
        version = self.store.current_policy_version(tenant, attestation_type)
        key = (tenant, attestation_type, version) if version is not None else None
        row = self._policies.get(key) if key is not None else None
        if row is None:
            row = self.store.current_policy(tenant, attestation_type)
            if row is None:
                return self._unstored_default(tenant, attestation_type)
            if len(self._policies) > 4096:
                self._policies.clear()
            self._policies[(tenant, attestation_type, row.version)] = row
        return row

    def _unstored_default(self, tenant: str, attestation_type: str) -> PolicyVersion:
        """A tenant created before its type had a default (no stored version): the default, as an
        unsaved version 0 (``id`` None). Setting or resetting the policy stores version 1."""
        name = DEFAULT_POLICIES.get(attestation_type)
        if name is None:
            raise ApiError(404, "policy.not_set", f"tenant {tenant!r} has no {attestation_type} policy",
                           field="attestationType")
        text = default_policy_text(name)
        return PolicyVersion(id=None, tenant_name=tenant, attestation_type=attestation_type, version=0, text=text,
                             document=text, policy_hash=policy_hash(text), token_hash=document_hash(text),
                             signer_cert_pem=None, action="default", builtin=name,
                             created_at=self.get(tenant, cached=True).created_at, created_by="builtin")

    def parse_policy_document(self, tenant: Tenant, document: str, *, field: str) -> tuple[str, x509.Certificate | None]:
        """(policy text, signer) of a submitted document, checked against the tenant's mode."""
        if is_jws(document):
            signed = parse_signed_policy(document.strip(), self.signers(tenant.name),
                                         allow_unsigned=tenant.mode != "isolated", now=self.clock())
            text, signer = signed.text, signed.signer
        elif tenant.mode == "isolated":
            raise ApiError(403, "policy.signature_required",
                           "an isolated tenant accepts only policies signed by a trusted signer (a JWS)", field=field)
        else:
            text, signer = document, None
        try:
            compile_policy(text)  # PolicySyntaxError (400) with line and column
        except AttestdError as exc:
            if exc.field is None:
                exc.field = field
            raise
        return text, signer

    def set_policy(self, tenant: Tenant, attestation_type: str, body: bytes, *, actor: str) -> PolicyVersion:
        if tenant.mode == "shared":
            raise ApiError(403, "tenant.shared_mode", "a shared-mode tenant uses the default policies only")
        document = _text(body, "policy")
        if not document.strip():
            raise ApiError(400, "policy.empty", "the request body is empty; send the policy text or JWS",
                           field="policy")
        text, signer = self.parse_policy_document(tenant, document, field="policy")
        document = document.strip() if is_jws(document) else document
        return self.store.add_policy_version(
            tenant.name, attestation_type, text=text, document=document, policy_hash=policy_hash(text),
            token_hash=document_hash(document),
            signer_cert_pem=cert_pem(signer) if signer is not None else None, action="set", builtin=None,
            now=self.clock(), actor=actor)

    def reset_policy(self, tenant: Tenant, attestation_type: str, body: bytes, *, actor: str) -> PolicyVersion:
        if tenant.mode == "shared":
            raise ApiError(403, "tenant.shared_mode", "a shared-mode tenant uses the default policies only")
        if tenant.mode == "isolated":
            verify_signer_jws(_text(body, "body"), self.signers(tenant.name), now=self.clock(), field="body")
        name = DEFAULT_POLICIES.get(attestation_type)
        if name is None:
            raise ApiError(409, "policy.no_default", f"{attestation_type} has no default policy to reset to")
        text = default_policy_text(name)
        return self.store.add_policy_version(
            tenant.name, attestation_type, text=text, document=text, policy_hash=policy_hash(text),
            token_hash=document_hash(text),
            signer_cert_pem=None, action="reset", builtin=name, now=self.clock(), actor=actor)

    def compiled(self, row: PolicyVersion) -> Policy:
        return compile_policy(row.text)


def _text(body: bytes, field: str) -> str:
    if len(body) > MAX_POLICY_BYTES:
        raise ApiError(413, "request.too_large", f"at most {MAX_POLICY_BYTES} bytes", field=field)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "request.not_utf8", "the body is not UTF-8 text", field=field) from None


def _policy_certificate(payload: Any) -> x509.Certificate:
    jwk = payload.get("policyCertificate") if isinstance(payload, dict) else None
    chain = jwk.get("x5c") if isinstance(jwk, dict) else None
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise ApiError(400, "signer.invalid_request",
                       'the JWS payload must be {"policyCertificate": {JWK with "x5c": [certificate]}}',
                       field="policyCertificate")
    try:
        return x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
    except (ValueError, binascii.Error):
        raise ApiError(400, "signer.invalid_certificate", "policyCertificate.x5c[0] is not a base64 DER certificate",
                       field="policyCertificate.x5c") from None
