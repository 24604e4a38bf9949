"""DCAP collateral: the typed model, loaders for the formats Intel and others ship, an offline store.

Collateral for one quote (the set Intel's QVL takes as ``sgx_ql_qve_collateral_t``, "Intel SGX
ECDSA Quote Library API" section 3.3 / QVL ``sgxAttestationVerifyQuote``):

* TCB Info for the platform's FMSPC and its issuer chain ("Intel SGX TCB Signing" -> root);
* the QE Identity (QE for SGX, TD_QE for TDX) and its issuer chain (the same TCB Signing chain);
* the PCK CRL of the CA that issued the PCK certificate (Platform or Processor CA) and that CA's
  chain;
* the Root CA CRL.

Loaders:

* :meth:`Collateral.from_qvl_json`: ``QuoteCollateralV3`` JSON (Phala dcap-qvl, and the same field
  names as Intel's ``sgx_ql_qve_collateral_t``): PEM chains, hex DER CRLs, the TCB Info / QE
  Identity bodies as JSON *strings* holding the exact signed bytes, hex signatures.
* :meth:`Collateral.from_pcs`: raw Intel PCS responses (``{"tcbInfo": ..., "signature": ...}``,
  ``{"enclaveIdentity": ..., "signature": ...}``), DER/PEM CRLs and PEM issuer chains (the
  ``TCB-Info-Issuer-Chain`` etc. HTTP headers, URL-decoded).
* :meth:`CollateralStore.from_dir`: every such file found in a directory, keyed by TEE type and
  FMSPC; :meth:`CollateralStore.get` assembles the collateral for one quote.

Loading parses but does not verify; verification (signatures, chains, validity at a time) is in
:mod:`attestd.tee.dcap.verify`. Loaders raise only :class:`~attestd.errors.EvidenceError`.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.dcap.pck import load_pem_certificates
from attestd.tee.dcap.tcbinfo import (
    EnclaveIdentity,
    TcbInfo,
    parse_enclave_identity,
    parse_tcb_info,
    split_signed_json,
)

__all__ = ["Collateral", "CollateralStore", "load_crl", "load_chain"]

_CODE = "dcap.collateral_malformed"
_DER = Encoding.DER


def load_crl(data: bytes | str, *, field: str) -> tuple[x509.CertificateRevocationList, bytes]:
    """A CRL from DER, PEM or hex-encoded DER; returns the CRL and its DER bytes."""
    if isinstance(data, str):
        data = data.encode()
    raw = data
    stripped = data.strip()
    if stripped.startswith(b"-----BEGIN"):
        try:
            crl = x509.load_pem_x509_crl(stripped)
        except ValueError as exc:
            raise EvidenceError(_CODE, f"{field} is not a PEM CRL: {exc}", field=field) from None
        return crl, crl.public_bytes(_DER)
    if stripped and all(c in b"0123456789abcdefABCDEF" for c in stripped):
        try:
            raw = binascii.unhexlify(stripped)
        except binascii.Error:
            raise EvidenceError(_CODE, f"{field} is not hex", field=field) from None
    try:
        return x509.load_der_x509_crl(raw), raw
    except ValueError as exc:
        raise EvidenceError(_CODE, f"{field} is not a DER CRL: {exc}", field=field) from None


def load_chain(pem: bytes | str, *, field: str) -> tuple[x509.Certificate, ...]:
    """A PEM issuer chain (signing certificate first, root last)."""
    try:
        certs = load_pem_certificates(pem, code=_CODE, field=field)
    except VerificationError as err:
        raise EvidenceError(err.code, err.message, field=err.field) from None
    if not certs:
        raise EvidenceError(_CODE, f"{field} holds no PEM certificate", field=field)
    return tuple(certs)


def _pem_bytes(chain: bytes | str) -> bytes:
    return chain.encode() if isinstance(chain, str) else bytes(chain)


@dataclass(frozen=True, slots=True)
class Collateral:
    """Everything needed to verify one quote offline, as loaded (not yet verified).

    The ``*_raw`` members keep the exact bytes received, for hashing into claims
    (``x-ms-sgx-collateral``) and for re-export.
    """

    tcb_info: TcbInfo
    tcb_info_issuer_chain: tuple[x509.Certificate, ...]
    qe_identity: EnclaveIdentity
    qe_identity_issuer_chain: tuple[x509.Certificate, ...]
    pck_crl: x509.CertificateRevocationList
    root_ca_crl: x509.CertificateRevocationList
    pck_crl_issuer_chain: tuple[x509.Certificate, ...] = ()
    tcb_info_issuer_chain_raw: bytes = b""
    qe_identity_issuer_chain_raw: bytes = b""
    pck_crl_raw: bytes = b""
    root_ca_crl_raw: bytes = b""
    pck_crl_issuer_chain_raw: bytes = b""

    # -- loaders -------------------------------------------------------------------------------
    @classmethod
    def from_qvl_json(cls, data: bytes | str | Mapping[str, Any]) -> "Collateral":
        """Load ``QuoteCollateralV3`` JSON (dcap-qvl / Intel ``sgx_ql_qve_collateral_t`` names)."""
        if isinstance(data, (bytes, str)):
            try:
                obj = json.loads(data)
            except (ValueError, UnicodeDecodeError) as exc:
                raise EvidenceError(_CODE, f"collateral is not JSON: {exc}", field="collateral") from None
        else:
            obj = data
        if not isinstance(obj, Mapping):
            raise EvidenceError(_CODE, "collateral must be a JSON object", field="collateral")
        need = ("pck_crl_issuer_chain", "root_ca_crl", "pck_crl", "tcb_info_issuer_chain", "tcb_info",
                "tcb_info_signature", "qe_identity_issuer_chain", "qe_identity", "qe_identity_signature")
        for k in need:
            v = obj.get(k)
            if not isinstance(v, (str, list)):
                raise EvidenceError(_CODE, f"collateral member {k!r} is missing or not a string", field=k)

        def text(k: str) -> bytes:
            v = obj[k]
            if isinstance(v, list):  # byte arrays as integer lists
                try:
                    return bytes(v)
                except (TypeError, ValueError):
                    raise EvidenceError(_CODE, f"{k} is not a byte array", field=k) from None
            return v.encode("utf-8")

        def sig(k: str) -> str:
            v = obj[k]
            return bytes(v).hex() if isinstance(v, list) else v

        tcb_info = parse_tcb_info(text("tcb_info"), sig("tcb_info_signature"), field="tcb_info")
        qe_identity = parse_enclave_identity(text("qe_identity"), sig("qe_identity_signature"), field="qe_identity")
        pck_crl, pck_crl_der = load_crl(_crl_bytes(obj["pck_crl"]), field="pck_crl")
        root_crl, root_crl_der = load_crl(_crl_bytes(obj["root_ca_crl"]), field="root_ca_crl")
        return cls(
            tcb_info=tcb_info,
            tcb_info_issuer_chain=load_chain(text("tcb_info_issuer_chain"), field="tcb_info_issuer_chain"),
            qe_identity=qe_identity,
            qe_identity_issuer_chain=load_chain(text("qe_identity_issuer_chain"), field="qe_identity_issuer_chain"),
            pck_crl=pck_crl,
            root_ca_crl=root_crl,
            pck_crl_issuer_chain=load_chain(text("pck_crl_issuer_chain"), field="pck_crl_issuer_chain"),
            tcb_info_issuer_chain_raw=text("tcb_info_issuer_chain"),
            qe_identity_issuer_chain_raw=text("qe_identity_issuer_chain"),
            pck_crl_raw=pck_crl_der,
            root_ca_crl_raw=root_crl_der,
            pck_crl_issuer_chain_raw=text("pck_crl_issuer_chain"),
        )

    @classmethod
    def from_pcs(
        cls,
        *,
        tcb_info: bytes | str,
        tcb_info_issuer_chain: bytes | str,
        qe_identity: bytes | str,
        qe_identity_issuer_chain: bytes | str,
        pck_crl: bytes | str,
        root_ca_crl: bytes | str,
        pck_crl_issuer_chain: bytes | str = b"",
    ) -> "Collateral":
        """Load raw Intel PCS responses: TCB Info / QE Identity bodies, DER/PEM CRLs, PEM chains."""
        body, sig, _ = split_signed_json(tcb_info, "tcbInfo", field="tcbInfo")
        ti = parse_tcb_info(body, sig, field="tcbInfo")
        body, sig, _ = split_signed_json(qe_identity, "enclaveIdentity", field="enclaveIdentity")
        qi = parse_enclave_identity(body, sig, field="enclaveIdentity")
        pcrl, pcrl_der = load_crl(pck_crl, field="pck_crl")
        rcrl, rcrl_der = load_crl(root_ca_crl, field="root_ca_crl")
        pchain = load_chain(pck_crl_issuer_chain, field="pck_crl_issuer_chain") if pck_crl_issuer_chain else ()
        return cls(
            tcb_info=ti,
            tcb_info_issuer_chain=load_chain(tcb_info_issuer_chain, field="tcb_info_issuer_chain"),
            qe_identity=qi,
            qe_identity_issuer_chain=load_chain(qe_identity_issuer_chain, field="qe_identity_issuer_chain"),
            pck_crl=pcrl,
            root_ca_crl=rcrl,
            pck_crl_issuer_chain=pchain,
            tcb_info_issuer_chain_raw=_pem_bytes(tcb_info_issuer_chain),
            qe_identity_issuer_chain_raw=_pem_bytes(qe_identity_issuer_chain),
            pck_crl_raw=pcrl_der,
            root_ca_crl_raw=rcrl_der,
            pck_crl_issuer_chain_raw=_pem_bytes(pck_crl_issuer_chain),
        )


def _crl_bytes(v: Any) -> bytes:
    if isinstance(v, list):
        try:
            return bytes(v)
        except (TypeError, ValueError):
            raise EvidenceError(_CODE, "CRL is not a byte array", field="crl") from None
    return v.encode() if isinstance(v, str) else v


# -- offline store ----------------------------------------------------------------------------


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def _ca_kind(cn: str) -> str | None:
    if "PCK Platform CA" in cn:
        return "platform"
    if "PCK Processor CA" in cn:
        return "processor"
    if "Root CA" in cn:
        return "root"
    return None


@dataclass(slots=True)
class CollateralStore:
    """Offline collateral, keyed by (TEE type "SGX"/"TDX", FMSPC) and PCK CA kind.

    Built from files with :meth:`from_dir`; :meth:`get` returns the :class:`Collateral` for one
    quote's TEE type, FMSPC and PCK CA ("platform" / "processor"). ``skipped`` lists files that were
    not recognised as collateral, with the reason.
    """

    complete: dict[tuple[str, str, str], Collateral] = field(default_factory=dict)
    tcb_infos: dict[tuple[str, str], tuple[TcbInfo, bytes, bytes]] = field(default_factory=dict)
    qe_identities: dict[str, tuple[EnclaveIdentity, bytes, bytes]] = field(default_factory=dict)
    pck_crls: dict[str, tuple[x509.CertificateRevocationList, bytes]] = field(default_factory=dict)
    root_ca_crl: tuple[x509.CertificateRevocationList, bytes] | None = None
    signing_chain: bytes | None = None
    pck_ca_chains: dict[str, bytes] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def from_dir(cls, path: str | Path, *, max_file_size: int = 1 << 20) -> "CollateralStore":
        """Import every collateral file under ``path`` (not recursive).

        Recognised: ``QuoteCollateralV3`` JSON; PCS TCB Info and Enclave Identity responses (the
        issuer chain comes from a PEM file whose first certificate is "Intel SGX TCB Signing");
        DER/PEM/hex CRLs (by issuer: Root CA, PCK Platform CA, PCK Processor CA); PEM chains.
        """
        store = cls()
        root = Path(path)
        if not root.is_dir():
            raise EvidenceError("input.not_found", f"no such directory: {root}", field="collateral_dir")
        for p in sorted(root.iterdir()):
            if not p.is_file():
                continue
            if p.stat().st_size > max_file_size:
                store.skipped.append((p.name, "larger than max_file_size"))
                continue
            try:
                store.add_file(p.name, p.read_bytes())
            except EvidenceError as err:
                store.skipped.append((p.name, str(err)))
        return store

    def add_file(self, name: str, data: bytes) -> None:
        """Classify and add one file's content; unrecognised content goes to ``skipped``."""
        text = data.strip()
        if text.startswith(b"{"):
            try:
                obj = json.loads(text)
            except (ValueError, UnicodeDecodeError):
                self.skipped.append((name, "JSON that does not parse"))
                return
            if isinstance(obj, dict) and "tcb_info" in obj and "qe_identity" in obj:
                c = Collateral.from_qvl_json(obj)
                kind = _ca_kind(_cn(c.pck_crl.issuer)) or "unknown"
                self.complete[(c.tcb_info.id, c.tcb_info.fmspc.hex(), kind)] = c
            elif isinstance(obj, dict) and "tcbInfo" in obj:
                body, sig, _ = split_signed_json(text, "tcbInfo", field=name)
                ti = parse_tcb_info(body, sig, field=name)
                key = (ti.id, ti.fmspc.hex())
                old = self.tcb_infos.get(key)
                if old is None or (ti.tcb_evaluation_data_number, ti.issue_date) > (
                        old[0].tcb_evaluation_data_number, old[0].issue_date):
                    self.tcb_infos[key] = (ti, body, sig.encode())
            elif isinstance(obj, dict) and "enclaveIdentity" in obj:
                body, sig, _ = split_signed_json(text, "enclaveIdentity", field=name)
                qi = parse_enclave_identity(body, sig, field=name)
                old_q = self.qe_identities.get(qi.id)
                if old_q is None or (qi.tcb_evaluation_data_number, qi.issue_date) > (
                        old_q[0].tcb_evaluation_data_number, old_q[0].issue_date):
                    self.qe_identities[qi.id] = (qi, body, sig.encode())
            else:
                self.skipped.append((name, "JSON that is not collateral"))
            return
        if b"-----BEGIN CERTIFICATE-----" in text:
            certs = load_chain(text, field=name)
            cn = _cn(certs[0].subject)
            if "TCB Signing" in cn:
                self.signing_chain = text
            elif (k := _ca_kind(cn)) in ("platform", "processor"):
                self.pck_ca_chains[k] = text
            else:
                self.skipped.append((name, f"certificate chain for {cn!r}"))
            return
        if text.startswith(b"-----BEGIN X509 CRL") or text[:1] == b"\x30" or (
                text and all(c in b"0123456789abcdefABCDEF" for c in text[:64])):
            try:
                crl, der_bytes = load_crl(text if not text[:1] == b"\x30" else data, field=name)
            except EvidenceError:
                self.skipped.append((name, "not a CRL"))
                return
            kind = _ca_kind(_cn(crl.issuer))
            if kind == "root":
                self.root_ca_crl = (crl, der_bytes)
            elif kind in ("platform", "processor"):
                self.pck_crls[kind] = (crl, der_bytes)
            else:
                self.skipped.append((name, f"CRL from {_cn(crl.issuer)!r}"))
            return
        self.skipped.append((name, "not recognised as collateral"))

    def get(self, tee: str, fmspc: bytes | str, pck_ca: str) -> Collateral:
        """The collateral for a quote; ``dcap.collateral_missing`` when some piece is absent."""
        tee = tee.upper()
        fm = fmspc.hex() if isinstance(fmspc, bytes) else fmspc.lower()
        c = self.complete.get((tee, fm, pck_ca))
        if c is not None:
            return c
        missing = []
        ti = self.tcb_infos.get((tee, fm))
        qe_id = "TD_QE" if tee == "TDX" else "QE"
        qi = self.qe_identities.get(qe_id)
        pcrl = self.pck_crls.get(pck_ca)
        if ti is None:
            missing.append(f"{tee} TCB Info for FMSPC {fm}")
        if qi is None:
            missing.append(f"{qe_id} identity")
        if pcrl is None:
            missing.append(f"PCK {pck_ca} CA CRL")
        if self.root_ca_crl is None:
            missing.append("Root CA CRL")
        if self.signing_chain is None:
            missing.append("TCB Signing issuer chain")
        if missing:
            raise VerificationError("dcap.collateral_missing", "no collateral: missing " + ", ".join(missing),
                                    field="collateral", details={"missing": missing})
        assert ti and qi and pcrl and self.root_ca_crl and self.signing_chain
        chain = load_chain(self.signing_chain, field="tcb_info_issuer_chain")
        pchain_raw = self.pck_ca_chains.get(pck_ca, b"")
        return Collateral(
            tcb_info=ti[0],
            tcb_info_issuer_chain=chain,
            qe_identity=qi[0],
            qe_identity_issuer_chain=chain,
            pck_crl=pcrl[0],
            root_ca_crl=self.root_ca_crl[0],
            pck_crl_issuer_chain=load_chain(pchain_raw, field="pck_crl_issuer_chain") if pchain_raw else (),
            tcb_info_issuer_chain_raw=self.signing_chain,
            qe_identity_issuer_chain_raw=self.signing_chain,
            pck_crl_raw=pcrl[1],
            root_ca_crl_raw=self.root_ca_crl[1],
            pck_crl_issuer_chain_raw=pchain_raw,
        )

    def keys(self) -> list[tuple[str, str]]:
        """(TEE type, FMSPC hex) pairs that have a TCB Info."""
        return sorted({(k[0], k[1]) for k in self.complete} | set(self.tcb_infos))
