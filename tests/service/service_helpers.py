"""Shared helpers of the service tests (a uniquely named module, imported by the test files)."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import RSAKey

ROOT = Path(__file__).resolve().parents[2]
QEMU = ROOT / "tests" / "fixtures" / "qemu"


class Clock:
    """An adjustable clock injected into the app."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


@dataclass
class Signer:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def x5c(self) -> list[str]:
        return [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]

    def jws(self, payload) -> str:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        return jws.serialize_compact({"alg": "RS256", "x5c": self.x5c}, body, RSAKey.import_key(self.key))

    def certificate_change(self, other: Signer) -> str:
        """Azure's certificates:add/remove body: {"policyCertificate": JWK with x5c}, signed by self."""
        jwk = RSAKey.import_key(other.cert.public_key()).as_dict()
        jwk["x5c"] = other.x5c
        return self.jws({"policyCertificate": jwk})


def make_signer(cn: str = "policy signer") -> Signer:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    return Signer(key, cert)


def credentials(data_dir: Path) -> dict:
    return json.loads((Path(data_dir) / "initial-credentials.json").read_text())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def decode_nonce(nonce: str) -> bytes:
    return base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))


def evidence_from_quote(q, *, nonce: str, eventlog: bytes | None = None, ima: bytes | None = None, **extra) -> dict:
    """An evidence document from an attestd.testing.swtpm QuoteOutput."""
    doc = {"ak": b64(q.ak_public), "quote": b64(q.attest), "signature": b64(q.signature),
           "pcrs": {bank: {str(i): v.hex() for i, v in values.items()} for bank, values in q.pcrs.items()},
           "nonce": nonce}
    if eventlog is not None:
        doc["eventLog"] = b64(eventlog)
    if ima is not None:
        doc["imaLog"] = b64(ima)
    doc.update(extra)
    return doc


def random_bytes_factory(seed: int = 1):
    """Deterministic randomness for the app (tests only)."""
    import random

    rng = random.Random(seed)
    return lambda n: bytes(rng.getrandbits(8) for _ in range(n))


def fresh_dir(tmp_path: Path, name: str = "data") -> Path:
    d = tmp_path / name
    os.makedirs(d, exist_ok=True)
    return d


class Service:
    """A running app under test: its client, data directory, clock and the bootstrap credentials
    (``database_url``: where its state is, when not the data directory's SQLite)."""

    def __init__(self, client, data_dir, clock: Clock, app, database_url: str | None = None) -> None:
        self.database_url = database_url
        self.client = client
        self.data_dir = data_dir
        self.clock = clock
        self.app = app
        creds = credentials(data_dir)
        self.admin = bearer(creds["adminToken"])
        self.operator = bearer(creds["operatorToken"])
        self.creds = creds

    @property
    def state(self):
        return self.app.state.attestd

    def create_tenant(self, name: str, mode: str = "token", signers=()) -> dict[str, str]:
        r = self.client.post("/tenants", json={"name": name, "mode": mode, "signers": list(signers)},
                             headers=self.operator)
        assert r.status_code == 201, r.text
        return bearer(r.json()["adminToken"])
