"""The storage-heavy service tests of ``tests/service`` (API, TPM attestation, evidence) run again,
unchanged, on PostgreSQL: the same test functions, collected here with a ``service`` fixture whose
app keeps its state in a fresh PostgreSQL database (a copy of one migrated template) instead of
SQLite. Three tests read the SQLite file itself; their PostgreSQL versions are below."""

from __future__ import annotations

import inspect
import sys
import warnings

import pytest
from corpus_paths import ROOT

warnings.filterwarnings("ignore", message=".*httpx2.*")

sys.path.insert(0, str(ROOT / "tests" / "service"))  # service_helpers, service_tpm, the test modules

import test_service_api  # noqa: E402
import test_service_attest  # noqa: E402
import test_service_evidence  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from service_helpers import Clock, Service  # noqa: E402

from attestd.service import create_app, load_settings  # noqa: E402
from attestd.store import make_engine, migrate  # noqa: E402

#: tests that open ``{data_dir}/attestd.db`` (the SQLite file); PostgreSQL versions follow
SQLITE_FILE_TESTS = {
    "test_first_start_creates_default_tenant_and_private_credentials",
    "test_readyz_fails_when_database_is_gone",
    "test_discovery_and_key_rotation",
}
#: parser tests: the request is refused before anything is read or written (time better spent elsewhere)
PARSER_TESTS = {"test_malformed_evidence_is_400_naming_the_field"}


def _collect() -> list[str]:
    names = []
    for module in (test_service_api, test_service_attest, test_service_evidence):
        for name, obj in vars(module).items():
            if (name.startswith("test_") and inspect.isfunction(obj) and name not in SQLITE_FILE_TESTS | PARSER_TESTS
                    and "service" in inspect.signature(obj).parameters):
                assert name not in globals(), f"two service tests named {name}"
                globals()[name] = obj
                names.append(name)
    return names


RERUN = _collect()


@pytest.fixture(scope="module")
def pg_template(pg_server):
    """A migrated database that each test's database copies (40 ms instead of migrating each time)."""
    url = pg_server.create_database("tpl")
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield url.rsplit("/", 1)[1]
    pg_server.drop_database(url)


@pytest.fixture
def service(pg_server, pg_template, tmp_path, monkeypatch):
    url = pg_server.create_database("svc", template=pg_template)
    # `attestd audit ...` run by a test with --data-dir finds the same database
    monkeypatch.setenv("ATTESTD_DATABASE_URL", url)
    clock = Clock()
    data_dir = tmp_path / "data"
    settings = load_settings(env={}, data_dir=data_dir, database_url=url, public_url="http://testserver",
                             log_json=True)
    app = create_app(settings, clock=clock, announce=lambda m: None)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Service(client, data_dir, clock, app, url)
    pg_server.drop_database(url)


@pytest.fixture(scope="module")
def booted():
    from attestd.testing.swtpm import swtpm_available

    if not swtpm_available():
        pytest.skip("swtpm/tpm2-tools not installed")
    from service_tpm import BootedTPM

    b = BootedTPM("sb")
    yield b
    b.close()


def _dump(url: str) -> bytes:
    """Every row of every table, as text."""
    import psycopg

    out = []
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for t in tables:
            out += [repr(row) for row in conn.execute(f'SELECT * FROM "{t}"')]
    return "\n".join(out).encode()


def test_the_service_tests_are_collected_here():
    assert len(RERUN) >= 20 and "test_policy_versions_hash_and_reset" in RERUN


def test_first_start_on_postgresql(service):
    assert service.creds["issuer"] == "http://testserver/tenants/default"
    assert not (service.data_dir / "attestd.db").exists()
    r = service.client.get("/tenants/default", headers=service.admin)
    assert r.status_code == 200 and r.json()["mode"] == "token"
    dump = _dump(service.database_url)
    assert b"tenant.create" in dump  # the dump sees the rows
    assert service.creds["adminToken"].encode() not in dump and service.creds["operatorToken"].encode() not in dump


def test_key_rotation_on_postgresql(service):
    c, h = service.client, service.admin
    assert len(c.get("/tenants/default/certs").json()["keys"]) == 1
    assert c.post("/tenants/default/keys:rotate", headers=h).status_code == 200
    assert len(c.get("/tenants/default/certs").json()["keys"]) == 2
    assert c.post("/tenants/default/keys:rotate", headers=h).json()["code"] == "keys.rotation_pending"
    assert b"PRIVATE KEY" not in _dump(service.database_url)


def test_readyz_fails_when_postgresql_is_gone(service, pg_server):
    assert service.client.get("/readyz").status_code == 200
    pg_server.drop_database(service.database_url)  # WITH (FORCE): the app's connections are cut
    r = service.client.get("/readyz")
    assert r.status_code == 503 and r.json()["code"] == "store.unavailable", r.text

