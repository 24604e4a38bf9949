"""Attestation records at fleet scale, on a real SQLite database: an event log and a decision are
stored once however many records repeat them (attestd.store.blobs); retention deletes old records
but those hosts and incidents refer to, and the blobs only deleted records used; the 0004
migration keeps the records written before it readable, both ways."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from attestd.store import Sealer, Store
from attestd.store.fleet import FleetStore
from attestd.store.models import Attestation, AttestationBlob, Incident
from attestd.store.repo import _RECORD_FIELDS
from attestd.tokens import KeySet, generate_signing_key

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LOG_A, LOG_B = "AAECAwQF" * 100, "BgcICQoL" * 100
CLAIMS = {"secureBootEnabled": True, "kernelCommandLine": "ro quiet"}
TRACE = [{"rule": 1, "matched": False}]
PCRS = [{"algorithm": "sha256", "pcrs": {"7": "00" * 32}}]


def _store(url: str) -> tuple[Store, FleetStore, str]:
    store = Store(url, Sealer(os.urandom(32)))
    store.migrate()
    keyset = KeySet((generate_signing_key("http://x/tenants/t", now=T0, alg="ES256"),))
    for tenant in ("t", "u"):
        store.create_tenant(tenant, "token", keyset, now=T0, actor="test", policies=[])
    fleet = FleetStore(store)
    host = fleet.enroll("t", {"name": "h", "ek_public": b"ek", "ek_fingerprint": "f" * 64, "ak_public": b"ak",
                              "ak_name": b"name"}, now=T0, actor="test")
    return store, fleet, host.id


@pytest.fixture
def fleet(tmp_path):
    store, fleet, host_id = _store(f"sqlite:///{tmp_path}/attestd.db")
    yield fleet, host_id
    store.close()


def record(store: Store, n: int, *, at: datetime, log: str | None = LOG_A, claims=CLAIMS, tenant: str = "t",
           host_id: str | None = None) -> str:
    evidence = {"quote": f"q{n}", "nonce": f"n{n}"} | ({"eventLog": log, "pcrs": PCRS} if log is not None else {})
    a = Attestation(id=f"00000000-0000-4000-8000-{n:012d}", tenant_name=tenant, created_at=at, attestation_type="Tpm",
                    outcome="permit" if claims else "error", evidence=evidence, claims=claims,
                    issued_claims={"x-ms-ver": "1.0"} if claims else None, trace=TRACE if claims else None,
                    host_id=host_id)
    store.record_attestation(a, consume_nonce=None)
    return a.id


def blob_count(store: Store) -> int:
    with store.connection() as conn:
        return conn.execute(select(func.count()).select_from(AttestationBlob)).scalar()


def test_a_repeated_event_log_and_decision_are_stored_once(fleet):
    f, host_id = fleet
    ids = [record(f.store, n, at=T0 + timedelta(minutes=5 * n), host_id=host_id) for n in range(20)]
    assert blob_count(f.store) == 2  # the event log, the decision
    record(f.store, 20, at=T0, log=LOG_B)  # another boot: its log; the same decision
    record(f.store, 21, at=T0, claims={**CLAIMS, "kernelCommandLine": "ro debug"})
    record(f.store, 22, at=T0, log=None, claims=None)  # an error before claims: no blob at all
    assert blob_count(f.store) == 4
    for i in (ids[0], ids[-1]):
        a = f.store.get_attestation(i, "t")
        assert a.evidence == {"quote": a.evidence["quote"], "nonce": a.evidence["nonce"], "eventLog": LOG_A,
                              "pcrs": PCRS}
        assert (a.claims, a.issued_claims, a.trace) == (CLAIMS, {"x-ms-ver": "1.0"}, TRACE)
        boot = json.dumps({"eventLog": LOG_A, "pcrs": PCRS}, separators=(",", ":")).encode()
        assert a.boot_sha256 == hashlib.sha256(boot).hexdigest()
    listed = f.store.list_attestations("t", limit=30, whole=True)
    assert len(listed) == 23 and {a.evidence.get("eventLog") for a in listed} == {LOG_A, LOG_B, None}
    assert all("eventLog" not in a.evidence for a in f.store.list_attestations("t", limit=30))  # columns only
    bare = f.store.get_attestation("00000000-0000-4000-8000-000000000022")
    assert bare.evidence == {"quote": "q22", "nonce": "n22"} and bare.claims is None and bare.decision_sha256 is None
    assert f.store.get_attestation(ids[0], "u") is None  # another tenant's record stays hidden


def test_retention_keeps_what_hosts_and_incidents_refer_to_and_the_blobs_they_use(fleet):
    f, host_id = fleet
    old, new = T0 - timedelta(days=40), T0 - timedelta(days=1)
    olds = [record(f.store, n, at=old + timedelta(minutes=n), host_id=host_id) for n in range(10)]
    only_old = record(f.store, 10, at=old, log=LOG_B, claims={"only": "old"})  # its blobs are its own
    other_tenant = record(f.store, 11, at=old, tenant="u")
    recent = record(f.store, 12, at=new, host_id=host_id)
    f.update_host(host_id, now=T0, last_good_attestation_id=olds[3])  # the host's last good: kept
    f.open_incident(Incident(id="i1", tenant_name="t", host_id=host_id, opened_at=T0, code="policy.denied",
                             summary="s", details={}, attestation_id=olds[5], last_good_attestation_id=olds[6]))
    assert blob_count(f.store) == 4

    assert f.store.prune_attestations(T0 - timedelta(days=30), batch=3) == 9  # 12 old, 3 referenced
    with f.store.connection() as conn:
        left = set(conn.execute(select(Attestation.id)).scalars())
    assert left == {olds[3], olds[5], olds[6], recent}
    assert only_old not in left and other_tenant not in left
    assert blob_count(f.store) == 2  # LOG_B and {"only": "old"} went; what the kept records use stayed
    for i in left:
        assert f.store.get_attestation(i).evidence["eventLog"] == LOG_A
    assert f.store.prune_attestations(T0 - timedelta(days=30)) == 0
    # the host moves on: its old last good goes at the next round, the incident's stay
    f.update_host(host_id, now=T0, last_good_attestation_id=recent)
    assert f.store.prune_attestations(T0 - timedelta(days=30)) == 1
    assert f.store.get_attestation(olds[3]) is None and f.store.get_attestation(olds[5]) is not None


def test_retention_deletes_at_most_its_limit_a_round(fleet):
    f, _ = fleet
    for n in range(7):
        record(f.store, n, at=T0 - timedelta(days=31, minutes=n))
    assert f.store.prune_attestations(T0 - timedelta(days=30), batch=2, limit=5) == 5
    assert f.store.prune_attestations(T0 - timedelta(days=30), batch=2, limit=5) == 2
    assert blob_count(f.store) == 0


def test_records_written_before_0004_stay_readable_and_a_downgrade_puts_parts_back_inline(tmp_path):
    from alembic import command
    from sqlalchemy import insert

    from attestd.store.db import _config

    store = Store(f"sqlite:///{tmp_path}/attestd.db", Sealer(os.urandom(32)))
    with store.engine.begin() as conn:
        command.upgrade(_config(conn), "0003")
    store.create_tenant("t", "token", KeySet((generate_signing_key("http://x/tenants/t", now=T0, alg="ES256"),)),
                        now=T0, actor="test", policies=[])
    inline = {"id": "legacy", "tenant_name": "t", "created_at": T0, "attestation_type": "Tpm", "outcome": "permit",
              "evidence": {"eventLog": LOG_A, "nonce": "n"}, "claims": CLAIMS, "issued_claims": {"a": 1},
              "trace": TRACE, "draft": False}
    legacy_table = Attestation.__table__.c
    with store.engine.begin() as conn:
        conn.execute(insert(Attestation.__table__).values(
            {k: v for k, v in inline.items() if k in legacy_table}))
    store.migrate()
    assert store.get_attestation("legacy").evidence == inline["evidence"]
    record(store, 1, at=T0)
    expected = {c: getattr(store.get_attestation("00000000-0000-4000-8000-000000000001"), c) for c in _RECORD_FIELDS}
    with store.engine.begin() as conn:
        command.downgrade(_config(conn), "0003")
        rows = {r.id: r for r in conn.exec_driver_sql("SELECT * FROM attestations")}
    row = rows["00000000-0000-4000-8000-000000000001"]
    assert "boot_sha256" not in row._fields
    assert json.loads(row.evidence) == expected["evidence"] and "pcrs" in expected["evidence"] and json.loads(row.claims) == expected["claims"]
    assert json.loads(row.trace) == expected["trace"] and json.loads(row.issued_claims) == expected["issued_claims"]
    store.migrate()  # and up again
    assert store.get_attestation("legacy").claims == CLAIMS
    store.close()


def test_the_sqlite_schema_is_what_the_models_describe(fleet):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from attestd.store import Base

    f, _ = fleet
    with f.store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        fks = {(r[3], r[2], r[4]) for r in conn.exec_driver_sql("PRAGMA foreign_key_list(attestations)")}
    assert {("boot_sha256", "attestation_blobs", "sha256"),
            ("decision_sha256", "attestation_blobs", "sha256")} <= fks


def test_a_blob_a_record_uses_cannot_be_deleted(fleet):
    from sqlalchemy import delete
    from sqlalchemy.exc import IntegrityError

    f, _ = fleet
    record(f.store, 1, at=T0)
    with pytest.raises(IntegrityError), f.store.session() as s:
        s.execute(delete(AttestationBlob))
    assert blob_count(f.store) == 2


def test_a_record_whose_blob_another_process_pruned_stores_it_again(tmp_path, fleet):
    """A process remembers the blobs it stored and inserts none again; when retention in another
    process deleted one meanwhile, the record's foreign key fails, and it is stored with its blobs."""
    f, _ = fleet
    other = Store(f.store.url, f.store.sealer)  # another worker process on the same database
    record(f.store, 1, at=T0 - timedelta(days=40))
    assert other.prune_attestations(T0 - timedelta(days=30)) == 1 and blob_count(f.store) == 0
    record(f.store, 2, at=T0)  # the same blobs: this store believed them stored
    assert blob_count(f.store) == 2
    assert f.store.get_attestation("00000000-0000-4000-8000-000000000002").evidence["eventLog"] == LOG_A
    record(f.store, 3, at=T0)
    other.close()


def test_a_decision_only_the_standard_library_can_write_is_read_back(fleet):
    """orjson refuses a lone surrogate and integers beyond 64 bits (a TEE's runtime data can carry
    both): the blob is then the standard library's JSON, and read back by it."""
    f, _ = fleet
    claims = {"x-ms-runtime": {"odd": "\ud800", "big": 2**70}}
    record(f.store, 1, at=T0, claims=claims)
    assert f.store.get_attestation("00000000-0000-4000-8000-000000000001").claims == claims


def test_the_blobs_a_process_remembers_take_concurrent_use(fleet):
    """Attestations inline on the event loop and in the thread pool, and housekeeping, use one
    Stored at once: adding, evicting, asking and clearing never fail."""
    import sys
    import threading

    from attestd.store.blobs import Stored

    stored = Stored(size=2)
    errors, stop = [], threading.Event()

    def use(n):
        try:
            while not stop.is_set():
                blobs = [{"sha256": f"{n}-{i}"} for i in range(3)]
                stored.missing(blobs)
                stored.add(blobs)
                if n == 0:
                    stored.clear()
        except Exception as exc:  # noqa: BLE001 - what the test looks for
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=use, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        stop.wait(0.5)
        stop.set()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
