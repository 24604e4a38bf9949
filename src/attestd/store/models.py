"""SQLAlchemy 2 models of the service's state (see ``docs/service.md``, "Storage").

Everything a replica needs lives here, so any number of replicas can share one PostgreSQL
database: tenants with their (encrypted) signing key sets, admin tokens (hashed), policy versions,
trusted policy signers, consumed nonces (single use enforced by a primary key), attestation records
and an administrative audit trail. The schema is created and upgraded by Alembic
(``attestd.store.migrations``); these classes are the ORM view of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from attestd.store.types import UtcDateTime


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: ``shared`` | ``token`` | ``isolated`` (see docs/service.md, "Modes").
    mode: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: AES-GCM sealed ``attestd.keyset/1`` JSON (see :mod:`attestd.store.sealing`).
    keyset_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: bumped on every key set change (optimistic concurrency between replicas).
    keyset_version: Mapped[int] = mapped_column(Integer, default=1)


class ApiToken(Base):
    """A bearer token: ``tenant`` scope (admin of one tenant) or ``operator`` scope (tenant_id NULL)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_name: Mapped[str | None] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"), nullable=True)
    scope: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class PolicyVersion(Base):
    """One version of a tenant's policy for one attestation type. The current one has the highest
    ``version``; a reset stores the default policy as a new version (history is never rewritten)."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("tenant_name", "attestation_type", "version", name="uq_policy_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_name: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"))
    attestation_type: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    #: the policy text evaluated.
    text: Mapped[str] = mapped_column(Text)
    #: what was submitted and whose hash goes into tokens: the text, or the policy JWS.
    document: Mapped[str] = mapped_column(Text)
    #: ``x-ms-policy-hash`` (Azure's formula over the policy text, :func:`attestd.policy.policy_hash`).
    policy_hash: Mapped[str] = mapped_column(String(64))
    #: ``x-ms-policy-token-hash``: base64url(SHA-256(document)), the hash of what was submitted.
    token_hash: Mapped[str] = mapped_column(String(64))
    signer_cert_pem: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: ``set`` | ``reset`` | ``default`` (created with the tenant)
    action: Mapped[str] = mapped_column(String(16))
    builtin: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(100))


class PolicySigner(Base):
    __tablename__ = "policy_signers"
    __table_args__ = (UniqueConstraint("tenant_name", "fingerprint", name="uq_policy_signer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_name: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"))
    #: SHA-256 of the certificate DER, hex.
    fingerprint: Mapped[str] = mapped_column(String(64))
    cert_pem: Mapped[str] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime())
    added_by: Mapped[str] = mapped_column(String(100))


class ConsumedNonce(Base):
    """A challenge nonce that was used. The primary key makes use single across replicas: the
    second INSERT of the same nonce fails inside the database, whichever replica runs it."""

    __tablename__ = "consumed_nonces"

    tenant_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    consumed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class AttestationBlob(Base):
    """A part of attestation records stored once per content, keyed by its SHA-256
    (:mod:`attestd.store.blobs`).

    A host sends the same event log and PCR values at every attestation until it boots into
    something else, and gets the same claims, issued claims and policy trace: kept in each record
    they were ~30 KB of its ~32 KB, written again every interval. A record refers to them instead
    (:attr:`Attestation.boot_sha256`, :attr:`Attestation.decision_sha256`); the foreign keys keep
    a blob while a record refers to it, and retention (:meth:`attestd.store.Store.prune_attestations`)
    deletes the blobs its deleted records leave unreferenced. ``data`` is a JSON object's text."""

    __tablename__ = "attestation_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Attestation(Base):
    """Everything needed to re-run one attestation later (``attestd audit reverify``).

    Records written since schema 0004 keep their large parts in :class:`AttestationBlob`: the
    evidence's ``eventLog`` and ``pcrs`` (``boot_sha256``; absent from ``evidence``) and the
    decision - ``claims``, ``issued_claims`` and ``trace`` (``decision_sha256``; the three columns
    NULL). :meth:`attestd.store.Store.get_attestation` puts them back; older records hold them inline."""

    __tablename__ = "attestations"
    __table_args__ = (Index("ix_attestations_tenant_time", "tenant_name", "created_at"),
                      Index("ix_attestations_boot", "boot_sha256"),
                      Index("ix_attestations_decision", "decision_sha256"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_name: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    attestation_type: Mapped[str] = mapped_column(String(32))
    #: ``permit`` | ``deny`` | ``error``
    outcome: Mapped[str] = mapped_column(String(8))
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    explanation: Mapped[str | None] = mapped_column(Text, nullable=True)
    evidence: Mapped[dict] = mapped_column(JSON)
    claims: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    issued_claims: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    trace: Mapped[list | None] = mapped_column(JSON, nullable=True)
    #: NULL for a draft-policy attestation (the draft text is in ``evidence``).
    policy_version_id: Mapped[int | None] = mapped_column(ForeignKey("policy_versions.id"), nullable=True)
    policy_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    nonce_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token_jti: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    #: the enrolled host whose AK made the quote (fleet attestations; ``aikValidated`` came from it)
    host_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    boot_sha256: Mapped[str | None] = mapped_column(ForeignKey("attestation_blobs.sha256"), nullable=True)
    decision_sha256: Mapped[str | None] = mapped_column(ForeignKey("attestation_blobs.sha256"), nullable=True)


@dataclass(slots=True, eq=False)
class NewAttestation:
    """An attestation about to be stored (:meth:`attestd.store.Store.record_attestation`): the
    columns of :class:`Attestation` as a plain object. One is built for every attestation, and the
    ORM's attribute instrumentation cost more than the rest of the record's bookkeeping."""

    id: str
    tenant_name: str
    created_at: datetime
    attestation_type: str
    evidence: dict[str, Any]
    outcome: str | None = None
    error_code: str | None = None
    explanation: str | None = None
    claims: dict[str, Any] | None = None
    issued_claims: dict[str, Any] | None = None
    trace: list[Any] | None = None
    policy_version_id: int | None = None
    policy_hash: str | None = None
    draft: bool = False
    nonce_id: str | None = None
    token_jti: str | None = None
    host_id: str | None = None


class AuditEvent(Base):
    """Administrative actions: tenant creation, policy changes, signer changes, key rotation."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_tenant_time", "tenant_name", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_name: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSON)


# -- the fleet: enrolled hosts, their identity certificates, incidents, webhooks (issue 5) ----------


class TenantCA(Base):
    """A tenant's host identity CA: its key (sealed) and self-signed certificate."""

    __tablename__ = "tenant_cas"

    tenant_name: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"), primary_key=True)
    key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    cert_der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    crl_number: Mapped[int] = mapped_column(Integer, default=0)


class Host(Base):
    """An enrolled host: its TPM's EK and AK, lifecycle state, identity key and last attestations.

    ``state``: ``enrolling`` (credential not yet activated) -> ``trusted`` <-> ``quarantined`` ->
    ``remediating`` -> ``trusted``; ``retired`` is final. ``stale`` is computed from
    ``last_attested_at`` and ``interval_seconds``."""

    __tablename__ = "hosts"
    __table_args__ = (UniqueConstraint("tenant_name", "ek_fingerprint", name="uq_hosts_tenant_ek"),
                      Index("ix_hosts_tenant_state", "tenant_name", "state"),
                      Index("ix_hosts_last_good_attestation", "last_good_attestation_id"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_name: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(16))
    ek_public: Mapped[bytes] = mapped_column(LargeBinary)
    ek_fingerprint: Mapped[str] = mapped_column(String(64))
    ek_certificate: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    ak_public: Mapped[bytes] = mapped_column(LargeBinary)
    ak_name: Mapped[bytes] = mapped_column(LargeBinary)
    #: SHA-256 of the credential secret while enrolling (cleared once activated)
    activation_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    activation_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    interval_seconds: Mapped[int] = mapped_column(Integer, default=300)
    last_attested_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_good_attestation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    baseline: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    identity_public: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    cert_serial: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: ``{"replay": ReplayState JSON, "resetCount": n}`` after the last verified IMA entries
    ima_state: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class HostEvent(Base):
    """Every state change of a host (its history)."""

    __tablename__ = "host_events"
    __table_args__ = (Index("ix_host_events_host_time", "host_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(100))
    details: Mapped[dict] = mapped_column(JSON)


class Incident(Base):
    """Why a host was quarantined: the failure in plain words, the evidence, the last good attestation."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_tenant_time", "tenant_name", "opened_at"),
                      Index("ix_incidents_attestation", "attestation_id"),
                      Index("ix_incidents_last_good_attestation", "last_good_attestation_id"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_name: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"))
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    code: Mapped[str] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSON)
    attestation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    last_good_attestation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class HostCertificate(Base):
    """An identity certificate the tenant CA issued (revocations feed the CRL)."""

    __tablename__ = "host_certificates"
    __table_args__ = (Index("ix_host_certificates_host", "host_id"),
                      Index("ix_host_certificates_not_after", "not_after"))

    serial: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_name: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"))
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    not_before: Mapped[datetime] = mapped_column(UtcDateTime())
    not_after: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    der: Mapped[bytes] = mapped_column(LargeBinary)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_name: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    #: AES-GCM sealed HMAC secret
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    events: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class HostSecret(Base):
    """A secret the service releases to a host after each successful attestation, sealed to the
    host's EK and to the PCR values it just attested (stored sealed with the master key)."""

    __tablename__ = "host_secrets"

    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


# -- plain snapshots of rows the hot path reads or writes -------------------------------------------


def _plain(model: type[Base], name: str, doc: str) -> type:
    """A slotted, frozen dataclass with ``model``'s columns as its fields (None unless given): a
    row read or about to be written, without the ORM's attribute instrumentation (constructing ``Host`` cost ~30 µs of
    it; the snapshot ~2 µs)."""
    fields = [(c.key, Any, field(default=None)) for c in model.__table__.columns]
    cls = make_dataclass(name, fields, slots=True, frozen=True, eq=False)
    cls.__doc__ = doc
    cls.__module__ = __name__
    return cls


#: A host as :meth:`attestd.store.fleet.FleetStore.get_host` reads it: :class:`Host`'s columns.
HostView = _plain(Host, "HostView", "A host row read for an attestation: Host's columns, read-only.")
#: An identity certificate about to be stored: :class:`HostCertificate`'s columns.
NewCertificate = _plain(HostCertificate, "NewCertificate",
                        "An identity certificate about to be stored: HostCertificate's columns.")
