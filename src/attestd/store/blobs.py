"""The large parts of attestation records, stored once per content (:class:`AttestationBlob`).

:func:`split` takes them out of a record's column values before it is inserted and returns the
blobs to store; :func:`inflate` puts them back into a record read from the database. Two parts:

* the event log: the evidence's ``eventLog`` text exactly as sent -> ``event_log_sha256``;
* the decision: ``{"claims", "issuedClaims", "trace"}`` as JSON text -> ``decision_sha256``
  (the three columns are left NULL).

The key is the SHA-256 of the bytes stored, so a blob is never rewritten: an insert of one that is
already there does nothing (on PostgreSQL it locks the row until commit instead, so retention on
another replica cannot delete it between this insert and the record's foreign key check; see
:meth:`attestd.store.Store.prune_attestations`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value

from attestd.errors import AttestdError
from attestd.store.db import Prepared, json_dumps
from attestd.store.models import Attestation, AttestationBlob

__all__ = ["BlobMismatch", "digests", "fetch", "inflate", "insert", "split"]


class BlobMismatch(AttestdError):
    """A stored record's blob is missing or does not hash to its key: the database was altered."""

    http_status = 500
    title = "Stored record altered"

_BLOBS = AttestationBlob.__table__
_KEYS = [c.key for c in _BLOBS.columns]
_INSERT = {
    "sqlite": Prepared(sqlite.insert(_BLOBS).on_conflict_do_nothing(), _KEYS),
    "postgresql": Prepared(postgresql.insert(_BLOBS).on_conflict_do_update(
        index_elements=[_BLOBS.c.sha256], set_={"sha256": postgresql.insert(_BLOBS).excluded.sha256}), _KEYS),
}
_SELECT = select(_BLOBS.c.sha256, _BLOBS.c.data).where(_BLOBS.c.sha256.in_(bindparam("digests", expanding=True)))


def _blob(data: bytes, created_at: datetime) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "data": data, "created_at": created_at}


def split(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Move the event log and the decision out of ``values`` (an attestation's column values, as
    :meth:`~attestd.store.Store.record_attestation` inserts them), setting their digests; the
    blobs to insert with the record."""
    blobs = []
    evidence = values.get("evidence")
    log = evidence.get("eventLog") if isinstance(evidence, dict) else None
    if isinstance(log, str) and log:
        blob = _blob(log.encode(), values["created_at"])
        values["evidence"] = {k: v for k, v in evidence.items() if k != "eventLog"}
        values["event_log_sha256"] = blob["sha256"]
        blobs.append(blob)
    else:
        values["event_log_sha256"] = None
    parts = {"claims": values["claims"], "issuedClaims": values["issued_claims"], "trace": values["trace"]}
    if any(v is not None for v in parts.values()):
        blob = _blob(json_dumps(parts).encode(), values["created_at"])
        values["claims"] = values["issued_claims"] = values["trace"] = None
        values["decision_sha256"] = blob["sha256"]
        if blob["sha256"] not in (b["sha256"] for b in blobs):
            blobs.append(blob)
    else:
        values["decision_sha256"] = None
    return blobs


def insert(conn: Any, blobs: list[dict[str, Any]]) -> None:
    """Store ``blobs`` (from :func:`split`) in ``conn``'s transaction; those already stored stay."""
    if blobs:
        _INSERT[conn.dialect.name].execute_many(conn, blobs)


def fetch(conn: Any, digests: Iterable[str]) -> dict[str, bytes]:
    """The stored blobs of ``digests``, by digest."""
    digests = sorted(set(digests))
    if not digests:
        return {}
    return {d: bytes(data) for d, data in conn.execute(_SELECT, {"digests": digests})}


def _data(record: Attestation, blobs: dict[str, bytes], digest: str, column: str) -> bytes:
    data = blobs.get(digest)
    if data is None or hashlib.sha256(data).hexdigest() != digest:
        raise BlobMismatch("store.blob_mismatch",
                           f"attestation {record.id}: the stored {column} blob {digest} is "
                           f"{'missing' if data is None else 'not the content its digest names (altered)'}",
                           field=column)
    return data


def inflate(record: Attestation, blobs: dict[str, bytes]) -> Attestation:
    """Put the parts :func:`split` took out back into ``record`` (a detached row), as stored
    before they were split; a record that holds them inline is returned as it is. Each blob's
    content is checked against its digest (:class:`BlobMismatch`: a record altered in storage)."""
    if record.event_log_sha256 is not None:
        log = _data(record, blobs, record.event_log_sha256, "event_log_sha256").decode()
        set_committed_value(record, "evidence", {**record.evidence, "eventLog": log})
    if record.decision_sha256 is not None:
        decision = orjson.loads(_data(record, blobs, record.decision_sha256, "decision_sha256"))
        set_committed_value(record, "claims", decision["claims"])
        set_committed_value(record, "issued_claims", decision["issuedClaims"])
        set_committed_value(record, "trace", decision["trace"])
    return record


def digests(record: Attestation) -> list[str]:
    """The blobs ``record`` refers to."""
    return [d for d in (record.event_log_sha256, record.decision_sha256) if d is not None]
