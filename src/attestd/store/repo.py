"""Data access: one :class:`Store` per process, every method one short transaction.

Objects returned are detached snapshots (``expire_on_commit=False``); callers never hold a session.
Domain rules (who may change what, policy validation) live in :mod:`attestd.service`; this module
only reads and writes rows, and turns database constraint violations into typed errors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, bindparam, delete, exists, func, insert, select, text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from attestd.errors import AttestdError
from attestd.store import blobs
from attestd.store.db import (
    READ_ONLY,
    WRITE,
    Prepared,
    SqliteWriter,
    checkpoint,
    make_engine,
    migrate,
    sqlite_path,
)
from attestd.store.models import (
    ApiToken,
    Attestation,
    AttestationBlob,
    AuditEvent,
    ConsumedNonce,
    Host,
    Incident,
    NewAttestation,
    PolicySigner,
    PolicyVersion,
    Tenant,
)
from attestd.store.sealing import Sealer
from attestd.tokens import KeySet

__all__ = ["Conflict", "InvalidValue", "NotFound", "PolicyChanged", "Store", "StoreError", "hash_token", "new_token"]

TOKEN_PREFIX = "atd_"


class StoreError(AttestdError):
    http_status = 500
    title = "Storage error"


class NotFound(AttestdError):
    http_status = 404
    title = "Not found"


class Conflict(AttestdError):
    http_status = 409
    title = "Conflict"


class PolicyChanged(StoreError):
    """The policy a decision was made under is no longer the current one (a new version was set,
    maybe through another replica, while the evidence was being verified): nothing was stored;
    decide again under the current policy."""

    http_status = 409
    title = "Conflict"


class InvalidValue(AttestdError):
    """A value the database refuses (``request.invalid``, 400): on PostgreSQL text with a NUL
    character (U+0000: not storable, nor usable in a lookup), a string longer than its column, a
    number out of its column's range. SQLite, which checks none of these, never raises it."""

    http_status = 400
    title = "Bad request"


@contextmanager
def _data_errors() -> Iterator[None]:
    """Turn the database's refusal of a value (``DataError``) into :class:`InvalidValue`: a request
    carrying such a value is malformed (400), on any backend, rather than an internal error."""
    try:
        yield
    except DataError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "invalid value"
        if "NUL" in reason:
            reason = "text with a NUL character (U+0000)"
        raise InvalidValue("request.invalid", f"a value cannot be stored or looked up: {reason}") from None


def _no_nul(value: str | None) -> str | None:
    """Text for a column that must take it whatever it holds (PostgreSQL text cannot hold U+0000)."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token(randbytes=secrets.token_bytes) -> str:
    import base64

    return TOKEN_PREFIX + base64.urlsafe_b64encode(randbytes(32)).rstrip(b"=").decode()


_ATTESTATION_COLUMNS = tuple(Attestation.__table__.columns)
#: what a record to store carries (:class:`NewAttestation`): the columns but the blob references,
#: which :func:`attestd.store.blobs.split` sets
_RECORD_FIELDS = tuple(c.key for c in _ATTESTATION_COLUMNS if c.key not in ("boot_sha256", "decision_sha256"))

# The statements of every attestation, built once with bound parameters: SQLAlchemy compiles each
# once and caches it (a statement built with literal values costs more to build than to run).
_INSERT_ATTESTATION = Prepared(insert(Attestation.__table__), [c.key for c in _ATTESTATION_COLUMNS])
_INSERT_NONCE = Prepared(insert(ConsumedNonce.__table__), [c.key for c in ConsumedNonce.__table__.columns])
_NONCE_CONSUMED = select(ConsumedNonce.__table__.c.nonce_id).where(
    ConsumedNonce.__table__.c.tenant_name == bindparam("tenant"),
    ConsumedNonce.__table__.c.nonce_id == bindparam("nonce_id"))
_POLICY_VERSION = Prepared(select(func.max(PolicyVersion.__table__.c.version)).where(
    PolicyVersion.__table__.c.tenant_name == bindparam("tenant"),
    PolicyVersion.__table__.c.attestation_type == bindparam("type")))


def _unreferenced_attestation() -> Any:
    a, hosts, incidents = Attestation.__table__, Host.__table__, Incident.__table__
    return and_(~exists().where(hosts.c.last_good_attestation_id == a.c.id),
                ~exists().where(incidents.c.attestation_id == a.c.id),
                ~exists().where(incidents.c.last_good_attestation_id == a.c.id))


def _unreferenced_blob() -> Any:
    a, b = Attestation.__table__, AttestationBlob.__table__
    return and_(~exists().where(a.c.boot_sha256 == b.c.sha256), ~exists().where(a.c.decision_sha256 == b.c.sha256))


# retention (Store.prune_attestations): a tenant's oldest records first, a range of the (tenant,
# time) index
_EXPIRED = (select(Attestation.__table__.c.id, Attestation.__table__.c.boot_sha256,
                   Attestation.__table__.c.decision_sha256)
            .where(Attestation.__table__.c.tenant_name == bindparam("tenant"),
                   Attestation.__table__.c.created_at < bindparam("cutoff"), _unreferenced_attestation())
            .order_by(Attestation.__table__.c.created_at).limit(bindparam("n")))
_DELETE_ATTESTATIONS = delete(Attestation.__table__).where(
    Attestation.__table__.c.id.in_(bindparam("ids", expanding=True)), _unreferenced_attestation())
_DELETE_BLOB = delete(AttestationBlob.__table__).where(
    AttestationBlob.__table__.c.sha256 == bindparam("digest"), _unreferenced_blob())


class Store:
    def __init__(self, url: str, sealer: Sealer, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        self.sealer = sealer
        #: SQLite has one writer at a time: threads and processes take turns (:class:`SqliteWriter`)
        self._write_lock = (SqliteWriter(sqlite_path(url)) if self.engine.dialect.name == "sqlite"
                            else contextlib.nullcontext())
        #: blobs known to be stored (SQLite; on PostgreSQL every record inserts its blobs, which
        #: locks them against retention at other replicas: see attestd.store.blobs)
        self._stored_blobs = blobs.Stored() if self.engine.dialect.name == "sqlite" else None

    def checkpoint(self) -> None:
        """Move SQLite's WAL into the database (``attestd serve`` calls this in the background, off
        the requests' path); nothing on PostgreSQL."""
        checkpoint(self.engine)

    # -- lifecycle ----------------------------------------------------------------------------
    def migrate(self) -> None:
        migrate(self.engine)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A Core connection for single-statement reads (the hot paths that skip the ORM). On
        SQLite no transaction is opened: each statement reads one consistent snapshot by itself."""
        with _data_errors(), self.engine.connect() as conn:
            conn.info[READ_ONLY] = True
            try:
                yield conn
            finally:
                conn.info.pop(READ_ONLY, None)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def read_session(self, *, snapshot: bool = False) -> Iterator[Session]:
        """A read-only transaction: no write lock (WAL readers do not block the writer). SQLite's
        reads all see one snapshot; with ``snapshot`` PostgreSQL's do too (REPEATABLE READ: a
        record and the blobs it refers to, read while retention deletes them, are read together)."""
        with _data_errors(), self.engine.connect() as conn:
            if snapshot and conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with Session(bind=conn, expire_on_commit=False) as s:
                yield s

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction that may write: on SQLite one at a time per process, and BEGIN IMMEDIATE."""
        with _data_errors(), self._write_lock, self.engine.connect() as conn:
            conn.info[WRITE] = True
            try:
                with Session(bind=conn, expire_on_commit=False) as s, s.begin():
                    yield s
            finally:
                conn.info.pop(WRITE, None)

    # -- tenants --------------------------------------------------------------------------------
    def _seal_keyset(self, name: str, keyset: KeySet) -> bytes:
        return self.sealer.seal(json.dumps(keyset.to_dict()).encode(), context=f"tenant:{name}:keyset")

    def create_tenant(
        self,
        name: str,
        mode: str,
        keyset: KeySet,
        *,
        now: datetime,
        actor: str,
        policies: Sequence[dict[str, Any]],
        signers: Sequence[tuple[str, str]] = (),
    ) -> Tenant:
        """Insert a tenant with its first key set, default policies (``{attestation_type, text,
        document, policy_hash, builtin}``) and trusted signers (``(fingerprint, pem)``)."""
        try:
            with self.session() as s:
                tenant = Tenant(name=name, mode=mode, created_at=now,
                                keyset_sealed=self._seal_keyset(name, keyset), keyset_version=1)
                s.add(tenant)
                s.flush()
                for p in policies:
                    s.add(PolicyVersion(tenant_name=name, version=1, action="default", created_at=now,
                                        created_by=actor, signer_cert_pem=None, **p))
                for fp, pem in signers:
                    s.add(PolicySigner(tenant_name=name, fingerprint=fp, cert_pem=pem, added_at=now,
                                       added_by=actor))
                s.add(AuditEvent(tenant_name=name, at=now, actor=actor, action="tenant.create",
                                 details={"mode": mode, "signers": [fp for fp, _ in signers]}))
            return tenant
        except IntegrityError:
            raise Conflict("tenant.exists", f"tenant {name!r} already exists", field="name") from None

    def get_tenant(self, name: str) -> Tenant | None:
        with self.session() as s:
            return s.get(Tenant, name)

    def list_tenants(self) -> list[Tenant]:
        with self.session() as s:
            return list(s.scalars(select(Tenant).order_by(Tenant.name)))

    def load_keyset(self, tenant: Tenant) -> KeySet:
        raw = self.sealer.open(tenant.keyset_sealed, context=f"tenant:{tenant.name}:keyset")
        return KeySet.from_dict(json.loads(raw))

    def replace_keyset(self, name: str, keyset: KeySet, *, expected_version: int, now: datetime,
                       actor: str, action: str, details: dict[str, Any]) -> int:
        """Compare-and-swap the key set; returns the new version, or raises ``tenant.keyset_changed``."""
        with self.session() as s:
            # FOR NO KEY UPDATE: concurrent writers of the key set queue here, while inserts that
            # reference the tenant (attestations, FOR KEY SHARE) go on
            tenant = s.get(Tenant, name, with_for_update={"key_share": True})
            if tenant is None:
                raise NotFound("tenant.not_found", f"no tenant {name!r}")
            if tenant.keyset_version != expected_version:
                raise Conflict("tenant.keyset_changed", "the key set changed concurrently; retry")
            tenant.keyset_sealed = self._seal_keyset(name, keyset)
            tenant.keyset_version = expected_version + 1
            s.add(AuditEvent(tenant_name=name, at=now, actor=actor, action=action, details=details))
            return tenant.keyset_version

    # -- API tokens ------------------------------------------------------------------------------
    def add_token(self, tenant: str | None, *, scope: str, label: str, now: datetime, actor: str = "system",
                  randbytes=secrets.token_bytes) -> str:
        token = new_token(randbytes)
        with self.session() as s:
            s.add(ApiToken(token_hash=hash_token(token), tenant_name=tenant, scope=scope, label=label,
                           created_at=now))
            if tenant is not None:
                s.add(AuditEvent(tenant_name=tenant, at=now, actor=actor,
                                 action="token.create", details={"label": label, "scope": scope}))
        return token

    def lookup_token(self, token: str) -> ApiToken | None:
        with self.session() as s:
            row = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
            if row is None or row.revoked_at is not None:
                return None
            return row

    # -- policies --------------------------------------------------------------------------------
    def current_policy_version(self, tenant: str, attestation_type: str) -> int | None:
        """The number of the tenant's current policy of that type (one indexed lookup)."""
        with self.connection() as conn:
            return _POLICY_VERSION.rows(conn, {"tenant": tenant, "type": attestation_type})[0][0]

    def current_policy(self, tenant: str, attestation_type: str) -> PolicyVersion | None:
        with self.session() as s:
            return s.scalar(
                select(PolicyVersion)
                .where(PolicyVersion.tenant_name == tenant, PolicyVersion.attestation_type == attestation_type)
                .order_by(PolicyVersion.version.desc())
                .limit(1)
            )

    def policy_history(self, tenant: str, attestation_type: str) -> list[PolicyVersion]:
        with self.session() as s:
            return list(s.scalars(
                select(PolicyVersion)
                .where(PolicyVersion.tenant_name == tenant, PolicyVersion.attestation_type == attestation_type)
                .order_by(PolicyVersion.version.desc())
            ))

    def get_policy_version(self, version_id: int) -> PolicyVersion | None:
        with self.session() as s:
            return s.get(PolicyVersion, version_id)

    def add_policy_version(self, tenant: str, attestation_type: str, *, text: str, document: str,
                           policy_hash: str, token_hash: str, signer_cert_pem: str | None, action: str, builtin: str | None,
                           now: datetime, actor: str) -> PolicyVersion:
        """Append a version (number = previous + 1). Writers of one tenant's policies queue on the
        tenant's row (PostgreSQL ``FOR NO KEY UPDATE``; SQLite has one writer at a time), so writes
        through different replicas at the same moment each get the next number; the unique
        constraint stays the backstop (``policy.concurrent_update``)."""
        try:
            with self.session() as s:
                s.get(Tenant, tenant, with_for_update={"key_share": True})
                last = s.scalar(select(func.max(PolicyVersion.version)).where(
                    PolicyVersion.tenant_name == tenant, PolicyVersion.attestation_type == attestation_type))
                row = PolicyVersion(tenant_name=tenant, attestation_type=attestation_type,
                                    version=(last or 0) + 1, text=text, document=document,
                                    policy_hash=policy_hash, token_hash=token_hash,
                                    signer_cert_pem=signer_cert_pem, action=action,
                                    builtin=builtin, created_at=now, created_by=actor)
                s.add(row)
                s.flush()
                s.add(AuditEvent(tenant_name=tenant, at=now, actor=actor, action=f"policy.{action}",
                                 details={"attestationType": attestation_type, "version": row.version,
                                          "policyHash": policy_hash, "signed": signer_cert_pem is not None}))
            return row
        except IntegrityError:
            raise Conflict("policy.concurrent_update", "the policy was changed concurrently; retry") from None

    # -- policy signers -------------------------------------------------------------------------
    def list_signers(self, tenant: str) -> list[PolicySigner]:
        with self.session() as s:
            return list(s.scalars(select(PolicySigner).where(PolicySigner.tenant_name == tenant)
                                  .order_by(PolicySigner.id)))

    def add_signer(self, tenant: str, fingerprint: str, pem: str, *, now: datetime, actor: str) -> bool:
        """False when the certificate was already trusted."""
        try:
            with self.session() as s:
                s.add(PolicySigner(tenant_name=tenant, fingerprint=fingerprint, cert_pem=pem, added_at=now,
                                   added_by=actor))
                s.flush()
                s.add(AuditEvent(tenant_name=tenant, at=now, actor=actor, action="signer.add",
                                 details={"fingerprint": fingerprint}))
            return True
        except IntegrityError:
            return False

    def remove_signer(self, tenant: str, fingerprint: str, *, now: datetime, actor: str) -> bool:
        with self.session() as s:
            n = s.execute(delete(PolicySigner).where(PolicySigner.tenant_name == tenant,
                                                     PolicySigner.fingerprint == fingerprint)).rowcount
            if n:
                s.add(AuditEvent(tenant_name=tenant, at=now, actor=actor, action="signer.remove",
                                 details={"fingerprint": fingerprint}))
            return bool(n)

    # -- attestations and nonces -------------------------------------------------------------------
    def record_attestation(self, record: Attestation | NewAttestation, *, consume_nonce: tuple[str, datetime] | None,
                           policy_version: int | None = None, also: Callable[[Any], None] | None = None) -> None:
        """Store ``record``; with ``consume_nonce=(nonce_id, expires_at)`` first consume the nonce in
        the same transaction. A nonce used before raises ``nonce.replayed`` and nothing is stored.
        With ``policy_version``, the decision was made under that version of the tenant's policy
        for ``record.attestation_type`` (0: the built-in default, never stored): when another is
        current at commit, :class:`PolicyChanged` is raised and nothing is stored. The decision
        stored is thus always the current policy's, without a lookup before each attestation.
        ``also(connection)``: more writes that stand or fall with the record (a host's update).

        Core INSERTs in one transaction (this runs on every attestation; the ORM unit of work cost
        more than the rest of the request's database work together)."""
        values = {key: getattr(record, key) for key in _RECORD_FIELDS}
        parts = blobs.split(values)
        if values.get("draft") is None:
            values["draft"] = False
        # the explanation may quote claim values read from evidence (event log strings can hold
        # NUL): the record is stored whatever they hold
        values["explanation"] = _no_nul(values.get("explanation"))
        values["error_code"] = _no_nul(values.get("error_code"))
        with _data_errors(), self._write_lock, self.engine.connect() as conn:
            conn.info[WRITE] = True
            try:
                with conn.begin():
                    self._insert_attestation(conn, record, values, consume_nonce, parts)
                    if policy_version is not None:
                        current = _POLICY_VERSION.rows(conn, {"tenant": record.tenant_name,
                                                              "type": record.attestation_type})[0][0]
                        if (current or 0) != policy_version:
                            raise PolicyChanged("policy.changed", f"the {record.attestation_type} policy changed "
                                                f"(version {policy_version} -> {current}) during the attestation")
                    if also is not None:
                        also(conn)
            finally:
                conn.info.pop(WRITE, None)
        if self._stored_blobs is not None:
            self._stored_blobs.add(parts)

    def _insert_attestation(self, conn, record: Attestation | NewAttestation, values: dict, consume_nonce,
                            parts: list[dict[str, Any]]) -> None:
        if consume_nonce is not None:
            nonce_id, expires = consume_nonce
            try:
                _INSERT_NONCE.execute(conn, {"tenant_name": record.tenant_name, "nonce_id": nonce_id,
                                             "consumed_at": record.created_at, "expires_at": expires})
            except IntegrityError:
                raise Conflict("nonce.replayed", "this nonce was already used; request a new challenge",
                               field="nonce") from None
        known = self._stored_blobs
        new_parts = parts if known is None else known.missing(parts)
        blobs.insert(conn, new_parts)
        try:
            _INSERT_ATTESTATION.execute(conn, values)
        except IntegrityError:
            if len(new_parts) == len(parts):
                raise
            # a blob this process stored was deleted since (retention, in another process):
            # SQLite undid just the failed statement; store the blobs, then the record
            known.clear()
            blobs.insert(conn, parts)
            _INSERT_ATTESTATION.execute(conn, values)

    def nonce_consumed(self, tenant: str, nonce_id: str) -> bool:
        with self.connection() as conn:
            return conn.execute(_NONCE_CONSUMED, {"tenant": tenant, "nonce_id": nonce_id}).first() is not None

    def prune_nonces(self, now: datetime) -> int:
        """Forget consumed nonces that expired: an expired nonce is refused by its MAC'd expiry."""
        with self.session() as s:
            return s.execute(delete(ConsumedNonce).where(ConsumedNonce.expires_at < now)).rowcount

    def prune_attestations(self, cutoff: datetime, *, batch: int = 500, limit: int = 50_000) -> int:
        """Delete attestation records created before ``cutoff`` (retention), except those a host
        (its last good attestation) or an incident (its attestation, the last good one before it)
        refers to, and then the blobs only they referred to. Up to ``limit`` records, ``batch`` a
        transaction: on SQLite each batch holds the write lock a few milliseconds, and attestations
        go on between batches. The number of records deleted."""
        total = 0
        with self.connection() as conn:
            tenants = list(conn.execute(select(Tenant.__table__.c.name)).scalars())
        for tenant in tenants:
            while total < limit:
                with self.session() as s:
                    conn = s.connection()
                    rows = conn.execute(_EXPIRED, {"tenant": tenant, "cutoff": cutoff,
                                                   "n": min(batch, limit - total)}).all()
                    if not rows:
                        break
                    conn.execute(_DELETE_ATTESTATIONS, {"ids": [r.id for r in rows]})
                    self._delete_unreferenced_blobs(conn, {d for r in rows for d in r[1:] if d is not None})
                    if self._stored_blobs is not None:
                        self._stored_blobs.clear()
                total += len(rows)
        return total

    @staticmethod
    def _delete_unreferenced_blobs(conn: Any, digests: set[str]) -> None:
        """Delete those of ``digests`` no record refers to, one at a time in digest order (the
        order attestations lock them in: no deadlock). On PostgreSQL a record another replica is
        committing may have just begun to refer to one (it holds the blob's key-share lock: this
        delete waits, then fails on the foreign key): that blob stays, the others go."""
        for digest in sorted(digests):
            with contextlib.suppress(IntegrityError), conn.begin_nested():
                conn.execute(_DELETE_BLOB, {"digest": digest})

    def get_attestation(self, attestation_id: str, tenant: str | None = None) -> Attestation | None:
        """The whole record, its event log and decision put back (:func:`attestd.store.blobs.inflate`)."""
        with self.read_session(snapshot=True) as s:
            row = s.get(Attestation, attestation_id)
            if row is None or (tenant is not None and row.tenant_name != tenant):
                return None
            return blobs.inflate_all(s.connection(), [row])[0]

    def list_attestations(self, tenant: str, *, limit: int = 50, before: datetime | None = None,
                          whole: bool = False) -> list[Attestation]:
        """A tenant's records, newest first; ``whole``: their parts put back, as :meth:`get_attestation`
        returns them (else the records' own columns: no evidence's boot, no decision)."""
        with self.read_session(snapshot=whole) as s:
            q = select(Attestation).where(Attestation.tenant_name == tenant)
            if before is not None:
                q = q.where(Attestation.created_at < before)
            rows = list(s.scalars(q.order_by(Attestation.created_at.desc(), Attestation.id).limit(limit)))
            return blobs.inflate_all(s.connection(), rows) if whole else rows

    # -- admin audit trail -----------------------------------------------------------------------
    def add_event(self, tenant: str, *, now: datetime, actor: str, action: str, details: dict[str, Any]) -> None:
        with self.session() as s:
            s.add(AuditEvent(tenant_name=tenant, at=now, actor=actor, action=action, details=details))

    def list_events(self, tenant: str, *, limit: int = 100) -> list[AuditEvent]:
        with self.session() as s:
            return list(s.scalars(select(AuditEvent).where(AuditEvent.tenant_name == tenant)
                                  .order_by(AuditEvent.id.desc()).limit(limit)))
