"""attestd.store on a real PostgreSQL server, with several stores (several connections pools: what
replicas have) on one database: migrations of replicas starting together, the schema the models
describe, single-use nonces under a race, policy writers, values PostgreSQL refuses, webhook
deliveries taken once, a restarted server."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import text

from attestd.store import Attestation, Base, Conflict, Sealer, Store, make_engine, migrate, schema_is_current
from attestd.store.fleet import DELIVERY_LEASE, FleetStore
from attestd.store.repo import InvalidValue
from attestd.tokens import KeySet, generate_signing_key

NOW = datetime.now(UTC).replace(microsecond=123456)
SEALER = Sealer(os.urandom(32))


def _keyset() -> KeySet:
    return KeySet.create(generate_signing_key("http://x/tenants/t", now=NOW, alg="ES256"), now=NOW)


@pytest.fixture
def stores(pg_database):
    """Two stores on one migrated database, with tenant ``t`` - two replicas."""
    a, b = Store(pg_database, SEALER), Store(pg_database, SEALER)
    a.migrate()
    b.migrate()
    a.create_tenant("t", "token", _keyset(), now=NOW, actor="test", policies=[])
    yield a, b
    a.close()
    b.close()


def _record(i: int, **kw) -> Attestation:
    return Attestation(id=f"00000000-0000-4000-8000-{i:012d}", tenant_name="t", created_at=NOW,
                       attestation_type="Tpm", outcome="deny", evidence={}, draft=False, **kw)


def test_replicas_starting_together_migrate_once(pg_database):
    engines = [make_engine(pg_database) for _ in range(4)]
    barrier = threading.Barrier(len(engines))

    def start(engine):
        barrier.wait()
        migrate(engine)
        return schema_is_current(engine)

    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            assert list(pool.map(start, engines)) == [True] * 4
        with engines[0].connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        for e in engines:
            e.dispose()


def test_schema_is_what_the_models_describe(stores):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    a, _ = stores
    with a.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        types = dict(conn.execute(text(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'consumed_nonces'")).all())
        pk = conn.execute(text(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = 'consumed_nonces'::regclass AND i.indisprimary ORDER BY a.attname")).scalars().all()
    assert types["expires_at"] == "timestamp with time zone"
    assert pk == ["nonce_id", "tenant_name"]  # what makes a nonce single use


def test_values_round_trip(stores):
    a, b = stores
    claims = {"s": "ü \u0000 \U0001f600", "n": 2**62, "f": 0.5, "l": [True, None]}
    a.record_attestation(_record(1, claims=claims, explanation="cmdline \x00 ends", error_code=None),
                         consume_nonce=("n1", NOW + timedelta(minutes=5)))
    row = b.get_attestation(_record(1).id)
    assert row.created_at == NOW and row.created_at.tzinfo is not None  # microseconds and UTC kept
    assert row.claims == claims and row.draft is False
    assert row.explanation == "cmdline \ufffd ends"  # PostgreSQL text cannot hold U+0000
    tenant = b.get_tenant("t")
    assert b.load_keyset(tenant).to_dict() == a.load_keyset(a.get_tenant("t")).to_dict()  # bytea


def test_nonce_single_use_across_replicas_under_a_race(stores):
    a, b = stores
    barrier = threading.Barrier(8)

    def consume(i):
        barrier.wait()
        try:
            (a if i % 2 else b).record_attestation(_record(i), consume_nonce=("race", NOW + timedelta(minutes=5)))
            return "ok"
        except Conflict as exc:
            return exc.code

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(consume, range(8)))
    assert sorted(outcomes) == ["nonce.replayed"] * 7 + ["ok"]  # the same error as on SQLite
    assert len(a.list_attestations("t")) == 1  # nothing stored with a refused nonce
    assert a.nonce_consumed("t", "race") and b.nonce_consumed("t", "race")
    assert b.prune_nonces(NOW + timedelta(minutes=6)) == 1


def test_policy_writers_at_two_replicas_queue(stores):
    a, b = stores
    barrier = threading.Barrier(6)

    def write(i):
        barrier.wait()
        return (a if i % 2 else b).add_policy_version(
            "t", "Tpm", text=f"p{i}", document=f"p{i}", policy_hash="h", token_hash="h", signer_cert_pem=None,
            action="set", builtin=None, now=NOW, actor="test").version

    with ThreadPoolExecutor(6) as pool:
        versions = sorted(pool.map(write, range(6)))
    assert versions == [1, 2, 3, 4, 5, 6]  # no policy.concurrent_update, no gap
    assert [p.version for p in b.policy_history("t", "Tpm")] == [6, 5, 4, 3, 2, 1]


def test_values_postgresql_refuses_are_bad_requests(stores):
    a, _ = stores
    for call in (lambda: a.add_token("t", scope="tenant", label="a\x00b", now=NOW),
                 lambda: a.add_token("t", scope="tenant", label="x" * 101, now=NOW),
                 lambda: a.get_attestation("a\x00b"),
                 lambda: a.nonce_consumed("t", "a\x00b"),
                 lambda: FleetStore(a).get_host("t", "a\x00b")):
        with pytest.raises(InvalidValue) as e:
            call()
        assert e.value.code == "request.invalid" and e.value.http_status == 400
    assert a.get_attestation("x" * 100) is None  # too long to exist, not an error


def test_webhook_delivery_is_taken_by_one_replica(stores):
    a, b = stores
    fa, fb = FleetStore(a), FleetStore(b)
    hook = fa.add_webhook("t", "http://127.0.0.1:9/hook", b"secret", ["quarantine"], now=NOW)
    ids = {fa.enqueue(hook, "quarantine", {"n": i}, now=NOW) for i in range(3)}
    assert {d.id for d, _ in fa.due_deliveries(NOW)} == ids
    assert fb.due_deliveries(NOW) == []  # leased to the first replica
    # the first replica died before recording an outcome: after the lease the other one sends them
    assert {d.id for d, _ in fb.due_deliveries(NOW + DELIVERY_LEASE + timedelta(seconds=1))} == ids


def test_one_ek_enrolled_at_two_replicas_at_once(stores):
    a, b = stores
    barrier = threading.Barrier(2)
    values = {"name": "h", "ek_public": b"ek", "ek_fingerprint": "f" * 64, "ak_public": b"ak", "ak_name": b"n",
              "interval_seconds": 300}

    def enroll(store):
        barrier.wait()
        return FleetStore(store).enroll("t", dict(values), now=NOW, actor="test").id

    with ThreadPoolExecutor(2) as pool:
        ids = list(pool.map(enroll, (a, b)))
    assert ids[0] == ids[1] and len(FleetStore(a).list_hosts("t")) == 1


def test_connections_cut_by_the_server_are_replaced(stores, pg_database):
    a, _ = stores
    assert a.get_tenant("t") is not None  # the pool holds a connection now
    with psycopg.connect(pg_database, autocommit=True) as admin:
        cut = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE application_name = 'attestd' AND pid <> pg_backend_pid()").fetchone()[0]
    assert cut >= 1
    assert a.get_tenant("t") is not None  # pool_pre_ping: no error reaches the caller


def _blob_record(i: int, *, at: datetime, log: str) -> Attestation:
    return Attestation(id=f"00000000-0000-4000-8000-{i:012d}", tenant_name="t", created_at=at, attestation_type="Tpm",
                       outcome="permit", evidence={"eventLog": log, "nonce": str(i)}, claims={"c": 1},
                       issued_claims={"i": 2}, trace=[{"rule": 1}], draft=False)


def _blobs(store: Store) -> int:
    with store.connection() as conn:
        return conn.execute(text("SELECT count(*) FROM attestation_blobs")).scalar()


def test_replicas_store_one_blob_and_retention_prunes_it(stores):
    a, b = stores
    old = NOW - timedelta(days=40)
    with ThreadPoolExecutor(8) as pool:  # the same log from both replicas at once: one blob
        list(pool.map(lambda i: (a, b)[i % 2].record_attestation(_blob_record(i, at=old, log="AAAA" * 500),
                                                                 consume_nonce=None), range(16)))
    assert _blobs(a) == 2
    assert b.get_attestation(_blob_record(3, at=old, log="").id).evidence["eventLog"] == "AAAA" * 500
    b.record_attestation(_blob_record(99, at=NOW, log="BBBB"), consume_nonce=None)
    assert a.prune_attestations(NOW - timedelta(days=30), batch=5) == 16
    assert _blobs(a) == 2 and a.get_attestation(_blob_record(99, at=NOW, log="").id).evidence["eventLog"] == "BBBB"


@pytest.mark.parametrize("pause", ["after the blob insert", "after the record insert"])
def test_retention_at_one_replica_keeps_the_blob_a_record_at_another_is_committing(stores, monkeypatch, pause):
    """Replica A stores a record whose event log only an expired record used; replica B's retention
    deletes that expired record meanwhile. Wherever A's transaction is when B's starts - between
    A's blob insert (which locks the existing blob's row) and its record insert, or after it - B
    waits on the blob's row lock, then the foreign key check sees A's record: the blob stays, the
    expired record still goes, and both commit."""
    from attestd.store import repo

    a, b = stores
    log = "CCCC" * 500
    a.record_attestation(_blob_record(1, at=NOW - timedelta(days=40), log=log), consume_nonce=None)
    holding, release = threading.Event(), threading.Event()

    def wait(*_args):
        holding.set()
        assert release.wait(10)

    class Paused:
        def __init__(self, inner):
            self.inner = inner

        def execute(self, conn, params):
            wait()
            return self.inner.execute(conn, params)

    also = None
    if pause == "after the blob insert":
        monkeypatch.setattr(repo, "_INSERT_ATTESTATION", Paused(repo._INSERT_ATTESTATION))
    else:
        also = wait
    with ThreadPoolExecutor(2) as pool:
        stored = pool.submit(a.record_attestation, _blob_record(2, at=NOW, log=log), consume_nonce=None, also=also)
        assert holding.wait(10)
        pruned = pool.submit(b.prune_attestations, NOW - timedelta(days=30))
        with pytest.raises(TimeoutError):  # B waits for A's transaction
            pruned.result(timeout=1)
        release.set()
        stored.result(timeout=10)
        assert pruned.result(timeout=10) == 1
    assert a.get_attestation(_blob_record(1, at=NOW, log="").id) is None
    assert b.get_attestation(_blob_record(2, at=NOW, log="").id).evidence["eventLog"] == log


def test_replicas_storing_records_that_share_blobs_do_not_wait_for_each_other(stores, monkeypatch):
    """Hosts of one image send the same boot and get the same decision: replica A's transaction,
    paused after it stored (and share-locked) those blobs, does not hold up replica B's record of
    the same blobs."""
    from attestd.store import repo

    a, b = stores
    log = "DDDD" * 500
    a.record_attestation(_blob_record(1, at=NOW, log=log), consume_nonce=None)
    holding, release = threading.Event(), threading.Event()
    paused_thread = {}

    class Paused:
        def __init__(self, inner):
            self.inner = inner

        def execute(self, conn, params):
            if threading.get_ident() == paused_thread.get("id"):
                holding.set()
                assert release.wait(10)
            return self.inner.execute(conn, params)

    monkeypatch.setattr(repo, "_INSERT_ATTESTATION", Paused(repo._INSERT_ATTESTATION))

    def paused_record():
        paused_thread["id"] = threading.get_ident()
        a.record_attestation(_blob_record(2, at=NOW, log=log), consume_nonce=None)

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(paused_record)
        assert holding.wait(10)
        try:
            pool.submit(b.record_attestation, _blob_record(3, at=NOW, log=log), consume_nonce=None).result(timeout=5)
        finally:
            release.set()
        first.result(timeout=10)
    assert _blobs(a) == 2
    assert b.get_attestation(_blob_record(2, at=NOW, log="").id).evidence["eventLog"] == log
