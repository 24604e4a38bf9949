"""Storage of the fleet: hosts and their history, incidents, identity certificates, the tenant CA,
webhooks and their deliveries. Every state change and its history row are written in one
transaction, so replicas on PostgreSQL agree on a host's state."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from attestd.store.db import Prepared
from attestd.store.models import (
    Host,
    HostCertificate,
    HostEvent,
    HostSecret,
    HostView,
    Incident,
    NewCertificate,
    TenantCA,
    Webhook,
    WebhookDelivery,
)
from attestd.store.repo import NotFound, Store

__all__ = ["STATES", "FleetStore"]

_HOSTS = Host.__table__
_UPDATE_HOST = update(_HOSTS).where(_HOSTS.c.id == bindparam("b_host_id"))
_INSERT_CERTIFICATE = Prepared(insert(HostCertificate.__table__), [c.key for c in HostCertificate.__table__.columns])
#: the host's UPDATE for each set of columns an attestation writes
_UPDATES: dict[tuple[str, ...], Prepared] = {}


def _update_host(columns: Iterable[str]) -> Prepared:
    key = tuple(sorted(columns))
    prepared = _UPDATES.get(key)
    if prepared is None:
        prepared = _UPDATES[key] = Prepared(_UPDATE_HOST, key)
    return prepared
_SECRET_TABLE = HostSecret.__table__
#: the host and its secrets, one row a secret (or one row with NULL secret columns): one query for
#: what every host attestation reads
_HOST_AND_SECRETS = Prepared(
    select(_HOSTS, _SECRET_TABLE.c.name.label("secret_name"), _SECRET_TABLE.c.value_sealed.label("secret_sealed"))
    .select_from(_HOSTS.outerjoin(_SECRET_TABLE, _SECRET_TABLE.c.host_id == _HOSTS.c.id))
    .where(_HOSTS.c.id == bindparam("id")).order_by(_SECRET_TABLE.c.name))
_HOST_COLUMNS = tuple(c.key for c in _HOSTS.columns)
_TENANT = _HOST_COLUMNS.index("tenant_name")
_SECRETS = (select(_SECRET_TABLE.c.name, _SECRET_TABLE.c.value_sealed)
            .where(_SECRET_TABLE.c.host_id == bindparam("host_id")).order_by(_SECRET_TABLE.c.name))

STATES = ("enrolling", "trusted", "stale", "quarantined", "remediating", "retired")
#: a replica that took a webhook delivery has this long to record its outcome (one pass sends up
#: to 50, 5 s timeout each) before another replica may take it again
DELIVERY_LEASE = timedelta(minutes=5)


class FleetStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- CA --------------------------------------------------------------------------------------
    def get_ca(self, tenant: str) -> TenantCA | None:
        with self.store.read_session() as s:
            return s.get(TenantCA, tenant)

    def add_ca(self, tenant: str, key_der: bytes, cert_der: bytes, *, now: datetime) -> TenantCA:
        """Store the tenant's CA; if another replica stored one first, that one wins."""
        sealed = self.store.sealer.seal(key_der, context=f"tenant:{tenant}:ca")
        try:
            with self.store.session() as s:
                s.add(TenantCA(tenant_name=tenant, key_sealed=sealed, cert_der=cert_der, created_at=now, crl_number=0))
        except IntegrityError:
            pass
        ca = self.get_ca(tenant)
        assert ca is not None
        return ca

    def open_ca_key(self, ca: TenantCA) -> bytes:
        return self.store.sealer.open(ca.key_sealed, context=f"tenant:{ca.tenant_name}:ca")

    def next_crl_number(self, tenant: str) -> int:
        with self.store.session() as s:
            s.execute(update(TenantCA).where(TenantCA.tenant_name == tenant)
                      .values(crl_number=TenantCA.crl_number + 1))
            return s.get(TenantCA, tenant).crl_number

    # -- hosts -----------------------------------------------------------------------------------
    def get_host(self, tenant: str, host_id: str) -> HostView:
        """The host (a read-only snapshot of its row: one Core read)."""
        return self.host_and_secrets(tenant, host_id, secrets=False)[0]

    def host_and_secrets(self, tenant: str, host_id: str, *, secrets: bool = True
                         ) -> tuple[HostView, list[tuple[str, bytes]]]:
        """The host and its secrets (opened), read on one connection: what every host attestation
        reads."""
        with self.store.connection() as conn:
            rows = _HOST_AND_SECRETS.rows(conn, {"id": host_id})
        n = len(_HOST_COLUMNS)
        if not rows or rows[0][_TENANT] != tenant:
            raise NotFound("host.not_found", f"no host {host_id!r} in tenant {tenant!r}", field="hostId")
        host = HostView(*rows[0][:n])
        if not secrets or rows[0][n] is None:
            return host, []
        return host, self._open_secrets(host_id, [(r[n], r[n + 1]) for r in rows])

    def _open_secrets(self, host_id: str, rows: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        return [(name, self.store.sealer.open(sealed, context=f"host:{host_id}:secret:{name}"))
                for name, sealed in rows]

    def attested_writes(self, host_id: str, *, now: datetime, certificate: HostCertificate | NewCertificate | None = None,
                        **values: Any) -> Callable[[Any], None]:
        """The writes of a trusted host's successful attestation, for the transaction that records
        it (``Store.record_attestation(also=...)``): the host's columns ``values`` and, when it
        asked for one, its new identity certificate. The previous certificate is not revoked: it
        certifies the same TPM-resident key of the same host and expires within its short lifetime;
        revocation (quarantine, retirement) takes every certificate of the host that has not
        expired."""
        params = {**values, "updated_at": now}
        cert = None
        if certificate is not None:
            cert = {c.key: getattr(certificate, c.key) for c in HostCertificate.__table__.columns}
            params["cert_serial"] = certificate.serial
        update_host = _update_host(params)
        params["b_host_id"] = host_id

        def write(conn: Any) -> None:
            if cert is not None:
                _INSERT_CERTIFICATE.execute(conn, cert)
            update_host.execute(conn, params)

        return write

    def host_by_ek(self, tenant: str, ek_fingerprint: str) -> Host | None:
        with self.store.session() as s:
            return s.scalar(select(Host).where(Host.tenant_name == tenant, Host.ek_fingerprint == ek_fingerprint))

    def list_hosts(self, tenant: str, *, state: str | None = None) -> list[Host]:
        with self.store.session() as s:
            q = select(Host).where(Host.tenant_name == tenant)
            if state is not None:
                q = q.where(Host.state == state)
            return list(s.scalars(q.order_by(Host.created_at, Host.id)))

    def overdue(self, now: datetime, margin: float) -> list[Host]:
        """Trusted hosts whose last attestation is older than ``interval x margin``."""
        with self.store.read_session() as s:
            rows = list(s.scalars(select(Host).where(Host.state == "trusted", Host.last_attested_at.is_not(None))))
        return [h for h in rows if (now - h.last_attested_at).total_seconds() > h.interval_seconds * margin]

    def enroll(self, tenant: str, values: dict[str, Any], *, now: datetime, actor: str) -> Host:
        """Create the host, or re-enroll the one with this EK (new AK, back to ``enrolling``).

        Two replicas enrolling one EK at the same moment: the second INSERT fails on the unique
        ``(tenant, ek)`` constraint after the first committed; it is then a re-enrollment."""
        try:
            return self._enroll(tenant, values, now=now, actor=actor)
        except IntegrityError:
            return self._enroll(tenant, values, now=now, actor=actor)

    def _enroll(self, tenant: str, values: dict[str, Any], *, now: datetime, actor: str) -> Host:
        with self.store.session() as s:
            host = s.scalar(select(Host).where(Host.tenant_name == tenant,
                                               Host.ek_fingerprint == values["ek_fingerprint"]))
            previous = None
            if host is None:
                host = Host(id=str(uuid.uuid4()), tenant_name=tenant, created_at=now, **values)
                s.add(host)
            else:
                previous = host.state
                for k, v in values.items():
                    setattr(host, k, v)
            host.state = "enrolling"
            host.updated_at = now
            s.flush()
            s.add(HostEvent(host_id=host.id, at=now, from_state=previous, to_state="enrolling",
                            reason="enroll" if previous is None else "re-enroll", actor=actor, details={}))
            return host

    def update_host(self, host_id: str, *, now: datetime, **values: Any) -> Host:
        with self.store.session() as s:
            host = s.get(Host, host_id)
            for k, v in values.items():
                setattr(host, k, v)
            host.updated_at = now
            return host

    def transition(self, host_id: str, to_state: str, *, now: datetime, reason: str, actor: str,
                   details: dict | None = None, expect: Sequence[str] | None = None, **values: Any) -> Host:
        """Move a host to ``to_state`` (recorded in its history), optionally only from ``expect``."""
        with self.store.session() as s:
            host = s.get(Host, host_id, with_for_update=True)
            if host is None:
                raise NotFound("host.not_found", f"no host {host_id!r}", field="hostId")
            if expect is not None and host.state not in expect:
                from attestd.store.repo import Conflict

                raise Conflict("host.state", f"host {host_id} is {host.state}; this needs {' or '.join(expect)}",
                               field="state", details={"state": host.state})
            previous = host.state
            host.state = to_state
            host.updated_at = now
            for k, v in values.items():
                setattr(host, k, v)
            s.add(HostEvent(host_id=host_id, at=now, from_state=previous, to_state=to_state, reason=reason,
                            actor=actor, details=details or {}))
            return host

    def history(self, host_id: str) -> list[HostEvent]:
        with self.store.session() as s:
            return list(s.scalars(select(HostEvent).where(HostEvent.host_id == host_id).order_by(HostEvent.id)))

    # -- incidents -------------------------------------------------------------------------------
    def open_incident(self, incident: Incident) -> Incident:
        with self.store.session() as s:
            s.add(incident)
            return incident

    def close_incidents(self, host_id: str, *, now: datetime) -> int:
        with self.store.session() as s:
            return s.execute(update(Incident).where(Incident.host_id == host_id, Incident.closed_at.is_(None))
                             .values(closed_at=now)).rowcount

    def list_incidents(self, tenant: str, *, host_id: str | None = None, open_only: bool = False) -> list[Incident]:
        with self.store.session() as s:
            q = select(Incident).where(Incident.tenant_name == tenant)
            if host_id is not None:
                q = q.where(Incident.host_id == host_id)
            if open_only:
                q = q.where(Incident.closed_at.is_(None))
            return list(s.scalars(q.order_by(Incident.opened_at.desc())))

    def get_incident(self, tenant: str, incident_id: str) -> Incident:
        with self.store.session() as s:
            inc = s.get(Incident, incident_id)
        if inc is None or inc.tenant_name != tenant:
            raise NotFound("incident.not_found", f"no incident {incident_id!r}", field="incidentId")
        return inc

    # -- certificates ----------------------------------------------------------------------------
    def add_certificate(self, cert: HostCertificate | NewCertificate, *, now: datetime, **host_values: Any) -> None:
        """Store ``cert`` and update the host, in one transaction (see :meth:`attested_writes` on
        the previous certificate)."""
        write = self.attested_writes(cert.host_id, now=now, certificate=cert, **host_values)
        with self.store.session() as s:
            write(s.connection())

    def revoke_certificates(self, host_id: str, *, now: datetime) -> int:
        with self.store.session() as s:
            return s.execute(update(HostCertificate).where(HostCertificate.host_id == host_id,
                                                           HostCertificate.revoked_at.is_(None))
                             .values(revoked_at=now)).rowcount

    def prune_certificates(self, now: datetime) -> int:
        """Forget certificates that expired (an expired certificate needs no CRL entry)."""
        with self.store.session() as s:
            return s.execute(delete(HostCertificate).where(HostCertificate.not_after < now)).rowcount

    def revoked(self, tenant: str, *, now: datetime) -> list[HostCertificate]:
        """Revoked certificates that have not expired (expired ones need no CRL entry)."""
        with self.store.session() as s:
            return list(s.scalars(select(HostCertificate).where(
                HostCertificate.tenant_name == tenant, HostCertificate.revoked_at.is_not(None),
                HostCertificate.not_after > now)))

    # -- secrets released to hosts ----------------------------------------------------------------
    def set_secret(self, host_id: str, name: str, value: bytes, *, now: datetime) -> None:
        sealed = self.store.sealer.seal(value, context=f"host:{host_id}:secret:{name}")
        for attempt in (1, 2):  # another replica may insert the same secret between our read and write
            try:
                with self.store.session() as s:
                    row = s.get(HostSecret, (host_id, name))
                    if row is None:
                        s.add(HostSecret(host_id=host_id, name=name, value_sealed=sealed, created_at=now))
                    else:
                        row.value_sealed, row.created_at = sealed, now
                return
            except IntegrityError:
                if attempt == 2:
                    raise

    def secrets(self, host_id: str) -> list[tuple[str, bytes]]:
        with self.store.connection() as conn:
            rows = conn.execute(_SECRETS, {"host_id": host_id}).all()
        return self._open_secrets(host_id, [(r.name, r.value_sealed) for r in rows])

    # -- webhooks --------------------------------------------------------------------------------
    def add_webhook(self, tenant: str, url: str, secret: bytes, events: list[str], *, now: datetime) -> Webhook:
        sealed = self.store.sealer.seal(secret, context=f"tenant:{tenant}:webhook")
        with self.store.session() as s:
            hook = Webhook(tenant_name=tenant, url=url, secret_sealed=sealed, events=events, created_at=now)
            s.add(hook)
            s.flush()
            return hook

    def webhooks(self, tenant: str) -> list[Webhook]:
        with self.store.read_session() as s:
            return list(s.scalars(select(Webhook).where(Webhook.tenant_name == tenant).order_by(Webhook.id)))

    def webhook_secret(self, hook: Webhook) -> bytes:
        return self.store.sealer.open(hook.secret_sealed, context=f"tenant:{hook.tenant_name}:webhook")

    def enqueue(self, hook: Webhook, event: str, payload: dict, *, now: datetime) -> int:
        with self.store.session() as s:
            d = WebhookDelivery(webhook_id=hook.id, event=event, payload=payload, status="pending", attempts=0,
                                created_at=now, next_attempt_at=now)
            s.add(d)
            s.flush()
            return d.id

    def due_deliveries(self, now: datetime, limit: int = 50) -> list[tuple[WebhookDelivery, Webhook]]:
        """Take the pending deliveries that are due: each is leased to this caller for
        :data:`DELIVERY_LEASE` (its next attempt moves past the lease), so replicas do not send one
        delivery twice; ``record_delivery`` then sets the outcome. PostgreSQL skips the rows another
        replica is taking at this moment (``FOR UPDATE SKIP LOCKED``)."""
        with self.store.session() as s:
            rows = s.execute(select(WebhookDelivery, Webhook).join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                             .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                             .order_by(WebhookDelivery.id).limit(limit)
                             .with_for_update(skip_locked=True, of=WebhookDelivery)).all()
            if rows:
                s.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_([d.id for d, _ in rows]))
                          .values(next_attempt_at=now + DELIVERY_LEASE))
            return [(d, w) for d, w in rows]

    def record_delivery(self, delivery_id: int, **values: Any) -> None:
        with self.store.session() as s:
            s.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values))

    def deliveries(self, tenant: str, limit: int = 100) -> list[WebhookDelivery]:
        with self.store.session() as s:
            return list(s.scalars(select(WebhookDelivery).join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                                  .where(Webhook.tenant_name == tenant)
                                  .order_by(WebhookDelivery.id.desc()).limit(limit)))
