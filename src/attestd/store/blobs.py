"""The large parts of attestation records, stored once per content (:class:`AttestationBlob`).

:func:`split` takes them out of a record's column values before it is inserted and returns the
blobs to store; :func:`inflate` puts them back into a record read from the database. Two parts,
each a JSON object:

* the boot: the evidence's members a boot determines, ``eventLog`` and ``pcrs`` (the PCR values
  are the log's replay) -> ``boot_sha256``; they leave ``evidence``;
* the decision: ``{"claims", "issuedClaims", "trace"}`` -> ``decision_sha256``; the three
  columns are left NULL.

A host sends the same boot at every attestation until it boots into something else, hosts of one
image send the same one, and they get the same decision. The key is the SHA-256 of the bytes
stored, so a blob is never rewritten: inserting one that is there does nothing. On PostgreSQL the
insert is followed by ``SELECT ... FOR KEY SHARE`` of the blobs (in digest order), held until
commit: retention at another replica cannot delete them between this insert and the record's
foreign key check, while other attestations that share them take the same shared lock without
waiting (see :meth:`attestd.store.Store.prune_attestations`).
"""

from __future__ import annotations

import hashlib
import json
import threading
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

__all__ = ["BOOT_MEMBERS", "BlobMismatch", "Stored", "fetch", "inflate", "inflate_all", "insert", "split"]

#: the evidence members the boot blob holds
BOOT_MEMBERS = ("eventLog", "pcrs")


class BlobMismatch(AttestdError):
    """A stored record's blob is missing or does not hash to its key: the database was altered."""

    http_status = 500
    title = "Stored record altered"


_BLOBS = AttestationBlob.__table__
_KEYS = [c.key for c in _BLOBS.columns]
_INSERT = {
    "sqlite": Prepared(sqlite.insert(_BLOBS).on_conflict_do_nothing(), _KEYS),
    "postgresql": Prepared(postgresql.insert(_BLOBS).on_conflict_do_nothing(), _KEYS),
}
_SELECT = select(_BLOBS.c.sha256, _BLOBS.c.data).where(_BLOBS.c.sha256.in_(bindparam("digests", expanding=True)))
_LOCK = (select(_BLOBS.c.sha256).where(_BLOBS.c.sha256.in_(bindparam("digests", expanding=True)))
         .order_by(_BLOBS.c.sha256).with_for_update(read=True, key_share=True))  # FOR KEY SHARE


def _blob(document: dict[str, Any], created_at: datetime) -> dict[str, Any]:
    data = json_dumps(document).encode()
    return {"sha256": hashlib.sha256(data).hexdigest(), "data": data, "created_at": created_at}


def split(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Move the boot and the decision out of ``values`` (an attestation's column values, as
    :meth:`~attestd.store.Store.record_attestation` inserts them), setting their digests; the
    blobs to insert with the record."""
    blobs = []
    values["boot_sha256"] = values["decision_sha256"] = None
    evidence = values.get("evidence")
    if isinstance(evidence, dict):
        boot = {k: evidence[k] for k in BOOT_MEMBERS if evidence.get(k) is not None}
        if boot:
            blob = _blob(boot, values["created_at"])
            values["evidence"] = {k: v for k, v in evidence.items() if k not in boot}
            values["boot_sha256"] = blob["sha256"]
            blobs.append(blob)
    decision = {"claims": values["claims"], "issuedClaims": values["issued_claims"], "trace": values["trace"]}
    if any(v is not None for v in decision.values()):
        blob = _blob(decision, values["created_at"])
        values["claims"] = values["issued_claims"] = values["trace"] = None
        values["decision_sha256"] = blob["sha256"]
        blobs.append(blob)
    return blobs


class Stored:
    """The digests of blobs this process stored (SQLite), so a record whose blobs are there
    inserts none: at a fleet's steady state that is every record, and the insert of a blob that
    exists cost as much as the record's. Another process's retention may delete one meanwhile;
    then the record's insert fails on its foreign key, and the caller inserts the blobs and the
    record again (:meth:`attestd.store.Store.record_attestation`). Bounded: the oldest are forgotten."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._digests: dict[str, None] = {}
        #: attestations on the event loop and in the thread pool, and housekeeping, share it
        self._lock = threading.Lock()

    def missing(self, blobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self._lock:
            return [b for b in blobs if b["sha256"] not in self._digests]

    def add(self, blobs: list[dict[str, Any]]) -> None:
        with self._lock:
            for b in blobs:
                self._digests[b["sha256"]] = None
            while len(self._digests) > self.size:
                del self._digests[next(iter(self._digests))]

    def clear(self) -> None:
        with self._lock:
            self._digests.clear()


def insert(conn: Any, blobs: list[dict[str, Any]]) -> None:
    """Store ``blobs`` (from :func:`split`) in ``conn``'s transaction; those already stored stay.
    On PostgreSQL they are then share-locked until commit (a blob retention deleted between the
    insert and the lock is inserted again)."""
    if not blobs:
        return
    insert_ = _INSERT[conn.dialect.name]
    insert_.execute_many(conn, blobs)
    if conn.dialect.name != "postgresql":
        return
    for _ in range(3):
        locked = set(conn.execute(_LOCK, {"digests": sorted(b["sha256"] for b in blobs)}).scalars())
        gone = [b for b in blobs if b["sha256"] not in locked]
        if not gone:
            return
        insert_.execute_many(conn, gone)
    raise RuntimeError("attestation blobs deleted again and again while being stored")


def fetch(conn: Any, digests: Iterable[str]) -> dict[str, bytes]:
    """The stored blobs of ``digests``, by digest."""
    digests = sorted(set(digests))
    if not digests:
        return {}
    return {d: bytes(data) for d, data in conn.execute(_SELECT, {"digests": digests})}


def _document(record: Attestation, blobs: dict[str, bytes], digest: str, column: str) -> dict[str, Any]:
    data = blobs.get(digest)
    if data is None or hashlib.sha256(data).hexdigest() != digest:
        raise BlobMismatch("store.blob_mismatch",
                           f"attestation {record.id}: the stored {column} blob {digest} is "
                           f"{'missing' if data is None else 'not the content its digest names (altered)'}",
                           field=column)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # what only the standard library wrote and reads: NaN, lone surrogates
        return json.loads(data)


def inflate(record: Attestation, blobs: dict[str, bytes]) -> Attestation:
    """Put the parts :func:`split` took out back into ``record`` (a detached row), as stored
    before they were split; a record that holds them inline is returned as it is. Each blob's
    content is checked against its digest (:class:`BlobMismatch`: a record altered in storage)."""
    if record.boot_sha256 is not None:
        boot = _document(record, blobs, record.boot_sha256, "boot_sha256")
        set_committed_value(record, "evidence", {**record.evidence, **boot})
    if record.decision_sha256 is not None:
        decision = _document(record, blobs, record.decision_sha256, "decision_sha256")
        set_committed_value(record, "claims", decision["claims"])
        set_committed_value(record, "issued_claims", decision["issuedClaims"])
        set_committed_value(record, "trace", decision["trace"])
    return record


def inflate_all(conn: Any, records: list[Attestation]) -> list[Attestation]:
    """:func:`inflate` each of ``records``, their blobs read on ``conn`` in one query."""
    found = fetch(conn, [d for r in records for d in (r.boot_sha256, r.decision_sha256) if d is not None])
    return [inflate(r, found) for r in records]
