"""FleetStore's certificate bookkeeping on a real SQLite database: renewal keeps the previous
certificate (it expires soon and certifies the same TPM-resident key), revocation takes every
certificate of the host that has not expired, expired ones are pruned and never listed."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from attestd.store import Attestation, Sealer, Store
from attestd.store.fleet import FleetStore
from attestd.store.models import Host, HostCertificate
from attestd.tokens import KeySet, generate_signing_key

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def fleet(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/attestd.db", Sealer(os.urandom(32)))
    store.migrate()
    store.create_tenant("t", "token", KeySet((generate_signing_key("http://x/tenants/t", now=T0, alg="ES256"),)), now=T0,
                        actor="test", policies=[])
    f = FleetStore(store)
    host = f.enroll("t", {"name": "h", "ek_public": b"ek", "ek_fingerprint": "f" * 64, "ak_public": b"ak",
                          "ak_name": b"name"}, now=T0, actor="test")
    yield f, host.id
    store.close()


def _cert(host_id: str, serial: str, issued: datetime) -> HostCertificate:
    return HostCertificate(serial=serial, tenant_name="t", host_id=host_id, not_before=issued,
                           not_after=issued + timedelta(hours=1), der=b"der")


def _record(host_id: str, n: int) -> Attestation:
    return Attestation(id=f"00000000-0000-4000-8000-{n:012d}", tenant_name="t", created_at=T0, attestation_type="Tpm",
                       outcome="permit", evidence={}, host_id=host_id)


def test_renewal_in_the_attestation_transaction_keeps_the_previous_certificate(fleet):
    f, host_id = fleet
    for n, serial in enumerate(("a1", "a2", "a3")):
        now = T0 + timedelta(minutes=5 * n)
        f.store.record_attestation(_record(host_id, n), consume_nonce=(f"nonce{n}", now + timedelta(minutes=5)),
                                   also=f.attested_writes(host_id, now=now, certificate=_cert(host_id, serial, now),
                                                          identity_public=b"key", last_attested_at=now,
                                                          last_good_attestation_id=_record(host_id, n).id))
    host = f.get_host("t", host_id)
    assert host.cert_serial == "a3" and host.identity_public == b"key"
    assert host.last_attested_at == T0 + timedelta(minutes=10) and host.last_good_attestation_id.endswith("2")
    assert f.revoked("t", now=T0 + timedelta(minutes=11)) == []
    # quarantine: every certificate not yet expired is revoked (and listed for the CRL)
    assert f.revoke_certificates(host_id, now=T0 + timedelta(minutes=11)) == 3
    assert sorted(c.serial for c in f.revoked("t", now=T0 + timedelta(minutes=11))) == ["a1", "a2", "a3"]
    # expired certificates leave the CRL, then the database
    assert [c.serial for c in f.revoked("t", now=T0 + timedelta(minutes=66))] == ["a3"]
    assert f.prune_certificates(T0 + timedelta(minutes=66)) == 2
    with f.store.read_session() as s:
        assert s.scalars(select(HostCertificate.serial)).all() == ["a3"]


def test_a_failed_transaction_leaves_the_host_as_it_was(fleet):
    f, host_id = fleet
    f.store.record_attestation(_record(host_id, 1), consume_nonce=("n1", T0))
    from attestd.store import Conflict

    with pytest.raises(Conflict):  # the nonce was used: nothing of this attestation is stored
        f.store.record_attestation(_record(host_id, 2), consume_nonce=("n1", T0),
                                   also=f.attested_writes(host_id, now=T0, certificate=_cert(host_id, "b1", T0),
                                                          last_attested_at=T0))
    host = f.get_host("t", host_id)
    assert host.last_attested_at is None and host.cert_serial is None
    with f.store.read_session() as s:
        assert s.scalars(select(HostCertificate.serial)).all() == []
        assert s.get(Host, host_id).state == "enrolling"


def test_a_new_attestation_is_stored_with_every_column(fleet):
    """What the attestation routes build (NewAttestation, no ORM instrumentation) has exactly the
    columns of Attestation but the blob references the store sets, and is read back as one: the
    event log and the decision stored apart, put back."""
    from dataclasses import fields

    from attestd.store import NewAttestation

    f, host_id = fleet
    refs = {"boot_sha256", "decision_sha256"}
    assert sorted(x.name for x in fields(NewAttestation)) == sorted(
        c.key for c in Attestation.__table__.columns if c.key not in refs)
    record = NewAttestation(id="00000000-0000-4000-8000-000000000099", tenant_name="t", created_at=T0,
                            attestation_type="Tpm", evidence={"nonce": "n", "eventLog": "AAEC"}, outcome="permit",
                            claims={"a": [1]}, issued_claims={"b": True}, trace=[{"rule": 1}], policy_hash="h",
                            nonce_id="99", token_jti="j", host_id=host_id, explanation="ok")
    f.store.record_attestation(record, consume_nonce=("99", T0 + timedelta(minutes=5)))
    stored = f.store.get_attestation(record.id, "t")
    assert {c.key: getattr(stored, c.key) for c in Attestation.__table__.columns if c.key not in refs} == {
        x.name: getattr(record, x.name) for x in fields(NewAttestation)}
    assert stored.boot_sha256 == hashlib.sha256(b'{"eventLog":"AAEC"}').hexdigest() and stored.decision_sha256
    with f.store.connection() as conn:  # the row itself holds neither
        row = conn.execute(select(Attestation.__table__).where(Attestation.id == record.id)).one()
    assert "eventLog" not in row.evidence and row.claims is row.issued_claims is row.trace is None


def test_single_statement_reads_open_no_sqlite_transaction(fleet):
    """Store.connection() reads in autocommit on SQLite: no BEGIN, so nothing to roll back."""
    f, host_id = fleet
    with f.store.connection() as conn:
        conn.execute(select(Attestation.id)).all()
        assert not conn.connection.dbapi_connection.in_transaction
    with f.store.engine.connect() as conn:  # any other connection still opens one
        conn.execute(select(Attestation.id)).all()
        assert conn.connection.dbapi_connection.in_transaction


def test_a_nonce_is_consumed_once_and_a_refused_record_writes_nothing(fleet):
    """The record's writes run on the DBAPI cursor (attestd.store.db.Prepared): the database's
    refusal is still the store's Conflict, and the transaction is rolled back whole."""
    from attestd.store import Conflict

    f, host_id = fleet
    expires = T0 + timedelta(minutes=5)
    f.store.record_attestation(_record(host_id, 1), consume_nonce=("same", expires))
    with pytest.raises(Conflict) as exc:
        f.store.record_attestation(_record(host_id, 2), consume_nonce=("same", expires),
                                   also=f.attested_writes(host_id, now=T0, certificate=_cert(host_id, "c2", T0),
                                                          last_attested_at=T0))
    assert exc.value.code == "nonce.replayed"
    assert f.store.get_attestation(_record(host_id, 2).id, "t") is None
    host = f.get_host("t", host_id)
    assert host.cert_serial is None and host.last_attested_at is None


def test_prepared_statements_store_and_read_what_core_does(fleet):
    """Prepared runs SQLAlchemy's compiled SQL with SQLAlchemy's type processing: the bytes in the
    database are the same as Connection.execute's (datetimes, JSON, booleans), and so is a read."""
    from sqlalchemy import insert, text

    from attestd.store.db import Prepared

    f, host_id = fleet
    table = Attestation.__table__
    values = {"tenant_name": "t", "created_at": T0, "attestation_type": "Tpm", "outcome": "permit",
              "error_code": None, "explanation": "é\u2603", "evidence": {"a": [1, "x"], "b": None},
              "claims": {"secureBootEnabled": True}, "issued_claims": None, "trace": [{"r": 1}],
              "policy_version_id": None, "policy_hash": "h", "draft": True, "nonce_id": "n", "token_jti": None,
              "host_id": host_id, "boot_sha256": None, "decision_sha256": None}
    with f.store.engine.begin() as conn:
        conn.execute(insert(table), {**values, "id": "core"})
        Prepared(insert(table), [c.key for c in table.columns]).execute(conn, {**values, "id": "prepared"})
    with f.store.engine.connect() as conn:
        raw = {r[0]: r[1:] for r in conn.exec_driver_sql(
            "SELECT id, " + ", ".join(c.key for c in table.columns if c.key != "id") + " FROM attestations")}
        assert raw["core"] == raw["prepared"]
        query = select(table).where(table.c.id == "prepared")
        assert Prepared(query).rows(conn, {"id_1": "prepared"}) == [tuple(conn.execute(query).one())]


def test_a_host_is_read_as_a_read_only_snapshot_of_its_row(fleet):
    """get_host returns HostView (Host's columns, no ORM instrumentation): every column as the
    ORM reads it, and no attribute to set by mistake."""
    import dataclasses

    from attestd.store.models import HostView

    f, host_id = fleet
    assert [x.name for x in dataclasses.fields(HostView)] == [c.key for c in Host.__table__.columns]
    view = f.get_host("t", host_id)
    with f.store.read_session() as s:
        row = s.get(Host, host_id)
        assert {c.key: getattr(view, c.key) for c in Host.__table__.columns} == {
            c.key: getattr(row, c.key) for c in Host.__table__.columns}
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.state = "trusted"
