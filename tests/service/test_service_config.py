"""Configuration precedence and errors; the store's migrations and constraints."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from attestd.service.config import ConfigError, load_settings
from attestd.store import Attestation, Conflict, Sealer, SealError, Store, schema_is_current


def test_precedence_file_env_flags(tmp_path):
    cfg = tmp_path / "attestd.toml"
    cfg.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[storage]\ndata_dir = "/srv/a"\n'
                   'nonce_ttl_seconds = 60\n')
    s = load_settings(cfg, env={})
    assert (s.port, s.host, str(s.data_dir), s.nonce_ttl_seconds) == (9000, "0.0.0.0", "/srv/a", 60)
    assert s.database == "sqlite:////srv/a/attestd.db"
    s = load_settings(cfg, env={"ATTESTD_PORT": "9100", "ATTESTD_LOG_JSON": "false"})
    assert s.port == 9100 and s.log_json is False
    s = load_settings(cfg, env={"ATTESTD_PORT": "9100"}, port=9200, host=None)
    assert s.port == 9200 and s.host == "0.0.0.0"
    assert s.issuer("t1") == "http://0.0.0.0:9200/tenants/t1"
    assert load_settings(env={}).database.endswith("var/attestd/attestd.db")


@pytest.mark.parametrize("text, env, code", [
    ("port = 'x'", {}, "config.invalid_value"),
    ("nope = 1", {}, "config.unknown_key"),
    ("port = ", {}, "config.syntax"),
    ("", {"ATTESTD_PORT": "eighty"}, "config.invalid_value"),
    ("", {"ATTESTD_MASTER_KEY": "c2hvcnQ="}, "config.master_key"),
    ("default_tenant_mode = 'isolated'", {}, "config.invalid_value"),
    ("log_cache_entries = -1", {}, "config.invalid_value"),
    ("[storage]\nattestation_retention_days = -1", {}, "config.invalid_value"),
    ("", {"ATTESTD_ATTESTATION_RETENTION_DAYS": "a week"}, "config.invalid_value"),
])
def test_config_errors(tmp_path, text, env, code):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_settings(cfg, env=env).load_master_key()
    assert e.value.code == code


def test_master_key_from_environment_and_seal_binding(tmp_path):
    key = os.urandom(32)
    import base64

    s = load_settings(env={"ATTESTD_MASTER_KEY": base64.b64encode(key).decode()}, data_dir=tmp_path)
    assert s.load_master_key() == key and not (tmp_path / "master.key").exists()
    sealer = Sealer(key)
    sealed = sealer.seal(b"secret", context="tenant:a:keyset")
    assert sealer.open(sealed, context="tenant:a:keyset") == b"secret"
    with pytest.raises(SealError):
        sealer.open(sealed, context="tenant:b:keyset")
    with pytest.raises(SealError):
        Sealer(os.urandom(32)).open(sealed, context="tenant:a:keyset")
    assert sealer.nonce_key("a") != sealer.nonce_key("b")


def test_issuer_longer_than_a_certificate_cn_is_refused(tmp_path):
    from fastapi.testclient import TestClient

    from attestd.service import create_app

    app = create_app(load_settings(env={}, data_dir=tmp_path, public_url="https://attestation.example.com:8443"),
                     announce=lambda m: None)
    with TestClient(app) as c:
        from service_helpers import bearer, credentials

        r = c.post("/tenants", json={"name": "a-rather-long-tenant-name"},
                   headers=bearer(credentials(tmp_path)["operatorToken"]))
        assert r.status_code == 400 and r.json()["code"] == "tenant.issuer_too_long"


def test_nonce_single_use_is_a_database_constraint(tmp_path):
    """Two stores on one database (two replicas): the second consumption fails in the database."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    sealer = Sealer(os.urandom(32))
    a, b = Store(url, sealer), Store(url, sealer)
    a.migrate()
    b.migrate()  # idempotent
    assert schema_is_current(a.engine)
    from attestd.tokens import KeySet, generate_signing_key

    now = datetime.now(UTC)
    ks = KeySet.create(generate_signing_key("http://x/tenants/t", now=now), now=now)
    a.create_tenant("t", "token", ks, now=now, actor="test", policies=[])

    def record(i):
        return Attestation(id=f"00000000-0000-4000-8000-00000000000{i}", tenant_name="t", created_at=now,
                           attestation_type="Tpm", outcome="deny", evidence={}, draft=False)

    a.record_attestation(record(1), consume_nonce=("n1", now + timedelta(minutes=5)))
    with pytest.raises(Conflict) as e:
        b.record_attestation(record(2), consume_nonce=("n1", now + timedelta(minutes=5)))
    assert e.value.code == "nonce.replayed"
    assert b.get_attestation(record(2).id) is None  # nothing stored with the refused nonce
    assert b.load_keyset(b.get_tenant("t")).to_dict() == ks.to_dict()
    assert a.prune_nonces(now + timedelta(minutes=6)) == 1
    with pytest.raises(Conflict):
        a.create_tenant("t", "token", ks, now=now, actor="test", policies=[])


def test_serve_warms_up_before_it_is_ready(tmp_path, caplog):
    """attestd serve (warm=True) loads the default tenant's key set, compiles its TPM policy and
    builds the policy parser before /readyz says ready; a warm-up that cannot find its tenant
    logs and still builds the parser."""
    from fastapi.testclient import TestClient

    from attestd.policy import compile_policy
    from attestd.policy.parser import _lark
    from attestd.service import create_app
    from attestd.service.app import open_state, warm_up

    def fresh_process() -> None:  # what a new worker starts with: nothing parsed or compiled
        _lark.cache_clear()
        compile_policy.cache_clear()

    fresh_process()
    app = create_app(load_settings(env={}, data_dir=tmp_path / "a"), announce=lambda m: None)
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 200
        assert _lark.cache_info().currsize == 0  # not warmed: tests and tools build apps freely
    fresh_process()
    warmed = create_app(load_settings(env={}, data_dir=tmp_path / "b"), announce=lambda m: None, warm=True)
    with TestClient(warmed) as c:
        assert c.get("/readyz").status_code == 200
        assert _lark.cache_info().currsize == 1
        assert "default" in warmed.state.fleet.st.tenants._keysets
    st = open_state(load_settings(env={}, data_dir=tmp_path / "c", default_tenant="absent"))
    st.store.migrate()
    warm_up(st)  # no tenant "absent" (never bootstrapped): logged, not raised
    assert "warm-up incomplete" in caplog.text
    st.store.close()
