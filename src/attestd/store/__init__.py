"""Persistent state of the attestation service: SQLAlchemy 2 models, Alembic migrations, data access.

    store = Store("sqlite:///var/attestd/attestd.db", Sealer(master_key))
    store.migrate()
    tenant = store.get_tenant("default"); keyset = store.load_keyset(tenant)

See ``docs/service.md`` ("Storage").
"""

from attestd.store.db import make_engine, migrate, normalize_url, schema_is_current
from attestd.store.models import (
    ApiToken,
    Attestation,
    AuditEvent,
    Base,
    ConsumedNonce,
    NewAttestation,
    PolicySigner,
    PolicyVersion,
    Tenant,
)
from attestd.store.repo import Conflict, NotFound, PolicyChanged, Store, StoreError, hash_token, new_token
from attestd.store.sealing import Sealer, SealError

__all__ = [
    "ApiToken", "Attestation", "AuditEvent", "Base", "Conflict", "ConsumedNonce", "NewAttestation", "NotFound",
    "PolicyChanged", "PolicySigner", "PolicyVersion", "SealError", "Sealer", "Store", "StoreError", "Tenant",
    "hash_token", "make_engine", "migrate", "new_token", "normalize_url", "schema_is_current",
]
