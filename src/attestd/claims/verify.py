"""Verification of a host's TPM evidence: the only way to a :class:`VerifiedTpmEvidence`.

``verify_tpm_evidence`` checks, in order, and stops at the first failure:

1. the AK and every quote/signature parse (``tpm.*`` EvidenceError);
2. each quote verifies (:func:`attestd.tpm.verify_quote`: magic, type, signature, nonce, and the
   ``pcrDigest`` over the supplied PCR values). Values for the same PCR in two quotes must agree
   (``quote.pcr_conflict``). Only PCR values a quote covers are kept: the rest of what the caller
   sent is not believed;
3. the firmware event log parses (``eventlog.*``) and replays to the quoted values in every bank
   the quote covers (``eventlog.replay_mismatch``, naming bank and PCR). Events in PCRs that no
   quote covers stay in the log but are *unverified*: claims never read them
   (:attr:`VerifiedTpmEvidence.verified_pcrs`). In verified PCRs, every event whose digest the
   PFP defines as the hash of its data must have data that hashes to it
   (``eventlog.data_not_measured``): the quote proves digests, and claims read data;
4. the IMA log (optional) parses (``ima.*``) and a prefix of it replays to the quoted PCR 10
   (``ima.replay_mismatch``; ``ima.pcr_not_quoted`` when no quote covers PCR 10). Entries after
   that prefix were added after the quote and are not used;
5. the AK is trusted when the caller says it was enrolled (credential activation, issue 5) or an
   AK certificate chains to the given roots and certifies exactly this key
   (``ak.certificate_*``). Otherwise ``ak_validated`` is false - not an error: the policy decides
   (``aikValidated``).

The same discipline as go-tpm-tools' ``VerifyAttestation``: the returned object holds only what was
verified, and it is the input :func:`attestd.claims.build_claims` requires.
"""

from __future__ import annotations

import datetime as _dt
import hmac
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization as _ser

from attestd.claims.logcache import LogCache, log_key
from attestd.errors import EvidenceError, VerificationError
from attestd.eventlog import EventLog, ReplayReport
from attestd.eventlog import parse as parse_eventlog
from attestd.ima import ImaLog, ReplayState
from attestd.ima import parse as parse_ima
from attestd.tpm import QuoteResult, SigningKey, load_signing_key, verify_quote
from attestd.tpm.pcr import normalize_pcr_values

__all__ = ["IMA_PCR", "VerifiedLog", "VerifiedTpmEvidence", "inspect_eventlog", "verify_eventlog",
           "verify_tpm_evidence"]

IMA_PCR = 10
_SEAL = object()

#: how the PCR values the claims rest on were established
Provenance = Literal["quote", "pcrs", "self-replay"]


@dataclass(eq=False)
class VerifiedLog:
    """What a firmware event log proved against quoted PCR values: the parsed log, its replay, the
    PCRs whose events replayed (``verified``); and, once :func:`attestd.claims.build_claims` read
    them, the claims of those events (``claims``: the sections and their flat claims). Kept by a
    :class:`~attestd.claims.logcache.LogCache` for the next quote of the same log and values."""

    log: EventLog
    report: ReplayReport
    verified: frozenset[int]
    claims: Any = None


@dataclass(frozen=True, eq=False)
class VerifiedTpmEvidence:
    """Evidence that passed :func:`verify_tpm_evidence` (or, for offline inspection, the weaker
    :func:`verify_eventlog` / :func:`inspect_eventlog`; ``provenance`` says which).

    ``pcrs`` holds only the quoted (checked) values; ``verified_pcrs`` the PCRs whose log events
    replayed to them; ``ima_verified`` the number of IMA entries the quoted PCR 10 covers.
    """

    provenance: Provenance
    pcrs: Mapping[str, Mapping[int, bytes]]
    eventlog: EventLog | None
    replay: ReplayReport | None
    verified_pcrs: frozenset[int]
    ak: SigningKey | None = None
    quotes: tuple[QuoteResult, ...] = ()
    ak_validated: bool = False
    #: ``"enrollment"``, ``"certificate"`` or ``None``
    ak_validation: str | None = None
    ima: ImaLog | None = None
    ima_verified: int = 0
    #: the IMA replay state after the covered entries (where an incremental list continues)
    ima_state: ReplayState | None = None
    tpm_version: int = 2
    warnings: tuple[str, ...] = ()
    #: the event log's verification (its claims are memoised there)
    log_proof: VerifiedLog | None = field(default=None, repr=False)
    _seal: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._seal is not _SEAL:
            raise TypeError("VerifiedTpmEvidence is made by attestd.claims.verify_tpm_evidence, not directly")

    @property
    def events(self) -> list:
        """The events of verified PCRs, in log order (the only events claims may read)."""
        if self.eventlog is None:
            return []
        ok = self.verified_pcrs
        return [e for e in self.eventlog.events if e.pcr in ok]

    @property
    def unverified_pcrs(self) -> tuple[int, ...]:
        """PCRs that have events in the log but no quoted value: their events are ignored."""
        if self.eventlog is None:
            return ()
        return tuple(sorted({r[0] for r in self.eventlog.records} - self.verified_pcrs))


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _bytes_of(value: Any, name: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise EvidenceError(f"{name}.type", f"{name} must be bytes, not {type(value).__name__}", field=name)


def _merge_quoted(results: Sequence[QuoteResult]) -> dict[str, dict[int, bytes]]:
    merged: dict[str, dict[int, bytes]] = {}
    for i, result in enumerate(results):
        for bank, values in (result.pcrs or {}).items():
            dest = merged.setdefault(bank, {})
            for pcr, value in values.items():
                old = dest.get(pcr)
                if old is not None and not hmac.compare_digest(old, value):
                    raise VerificationError(
                        "quote.pcr_conflict",
                        f"quote {i} covers {bank} PCR {pcr} with a value another quote contradicts",
                        field=f"pcrs.{bank}.{pcr}", details={"quote": i, "bank": bank, "pcr": pcr})
                dest[pcr] = value
    return merged


def _verified_pcrs(report: ReplayReport) -> frozenset[int]:
    return frozenset(c.pcr for c in report.checks if c.status == "match")


def _check_ima(ima: ImaLog, pcrs: Mapping[str, Mapping[int, bytes]], state: ReplayState | None = None
               ) -> tuple[int, ReplayState]:
    """Entries of ``ima`` covered by the quoted PCR 10 (shortest matching prefix, continuing
    ``state`` for a list sent incrementally) and the replay state after them; raises otherwise."""
    banks = [b for b in ("sha256", "sha1", "sha384", "sha512") if IMA_PCR in pcrs.get(b, {})]
    if not banks:
        raise VerificationError("ima.pcr_not_quoted",
                                "an IMA log was sent but no quote covers PCR 10, so none of it can be believed",
                                field="imaLog")
    bank = banks[0]
    after = ima.match_pcr(pcrs[bank][IMA_PCR], bank=bank, state=state)
    if after is None:
        raise VerificationError(
            "ima.replay_mismatch",
            f"no prefix of the IMA log ({len(ima)} entries from entry {ima.first_index}) replays to the quoted "
            f"{bank} PCR 10" + (" from the host's previous IMA state" if state is not None else ""),
            field="imaLog", details={"bank": bank, "quoted": pcrs[bank][IMA_PCR].hex(), "entries": len(ima),
                                     "firstIndex": ima.first_index})
    return after.position - ima.first_index, after


def _check_ak_certificate(ak: SigningKey, cert_data: Any, roots: Iterable[Any], at: _dt.datetime) -> None:
    """The AK certificate's key is the AK and its chain ends at one of ``roots``."""
    chain = [_load_cert(c, f"akCertificate[{i}]") for i, c in enumerate(_as_list(cert_data))]
    anchors = [_load_cert(r, f"akRoots[{i}]") for i, r in enumerate(roots)]
    if not chain:
        return
    leaf = chain[0]
    if leaf.public_key().public_bytes(*_SPKI) != ak.spki_der():
        raise VerificationError("ak.certificate_key_mismatch", "the AK certificate certifies a different key",
                                field="akCertificate")
    for i, cert in enumerate(chain):
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise VerificationError("ak.certificate_expired",
                                    f"certificate {i} ({cert.subject.rfc4514_string()}) is not valid at {at.isoformat()}",
                                    field=f"akCertificate[{i}]")
    path = chain
    for i in range(len(path) - 1):
        _issued_by(path[i], path[i + 1], i)
    last = path[-1]
    for root in anchors:
        if root.public_bytes(_DER) == last.public_bytes(_DER):
            return
        try:
            last.verify_directly_issued_by(root)
        except Exception:
            continue
        return
    raise VerificationError("ak.certificate_untrusted", "the AK certificate does not chain to a trusted root",
                            field="akCertificate")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate, i: int) -> None:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception as exc:
        raise VerificationError("ak.certificate_chain", f"certificate {i} is not issued by certificate {i + 1}: {exc}",
                                field=f"akCertificate[{i}]") from None


def _load_cert(value: Any, name: str) -> x509.Certificate:
    if isinstance(value, x509.Certificate):
        return value
    data = value.encode() if isinstance(value, str) else bytes(value)
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise EvidenceError("ak.certificate_format", f"{name} is not an X.509 certificate: {exc}", field=name) from None


_DER = _ser.Encoding.DER
_SPKI = (_ser.Encoding.DER, _ser.PublicFormat.SubjectPublicKeyInfo)


def verify_tpm_evidence(
    *,
    ak: Any,
    quote: bytes | Sequence[bytes],
    signature: bytes | Sequence[bytes],
    nonce: bytes,
    pcrs: Mapping[Any, Mapping[Any, Any]],
    eventlog: bytes | EventLog | None = None,
    ima_log: bytes | ImaLog | None = None,
    ak_enrolled: bool = False,
    ak_certificate: Any = None,
    ak_roots: Iterable[Any] = (),
    at: _dt.datetime | None = None,
    ima_state: ReplayState | None = None,
    log_cache: LogCache[VerifiedLog] | None = None,
) -> VerifiedTpmEvidence:
    """Verify quotes, event log and IMA log; see the module docstring for the checks and codes.

    ``quote``/``signature`` are one ``TPMS_ATTEST``/``TPMT_SIGNATURE`` or equal-length lists (one
    quote per bank, as some agents send). ``pcrs`` is ``{bank: {index: value}}`` as the host read
    them. ``ak_enrolled`` is the caller's statement that this AK passed credential activation for
    this host; ``ak_certificate`` (leaf first, DER/PEM) with ``ak_roots`` validates it otherwise.
    ``ima_state``: the IMA replay state the host's previous attestation ended at, when ``ima_log``
    holds only the entries after it (an agent sending its list incrementally). ``log_cache``: where
    an event log's verification against the same quoted values is kept and found (see
    :mod:`attestd.claims.logcache`); the quotes are verified first, every time.
    """
    key = load_signing_key(ak)
    quotes = _as_list(quote)
    signatures = _as_list(signature)
    if not quotes:
        raise EvidenceError("quote.missing", "at least one quote is required", field="quote")
    if len(quotes) != len(signatures):
        raise EvidenceError("quote.signature_count",
                            f"{len(quotes)} quotes but {len(signatures)} signatures", field="signature")
    supplied = normalize_pcr_values(pcrs)
    results = tuple(
        verify_quote(key, _bytes_of(q, "quote"), _bytes_of(s, "signature"), nonce=nonce, pcrs=supplied)
        for q, s in zip(quotes, signatures, strict=True)
    )
    quoted = _merge_quoted(results)
    proof = _verify_log(eventlog, quoted, log_cache)
    log, report, verified = _parts(proof)
    ima, covered, ima_after = _verify_ima(ima_log, quoted, ima_state)
    validated, how = False, None
    if ak_enrolled:
        validated, how = True, "enrollment"
    elif ak_certificate is not None:
        _check_ak_certificate(key, ak_certificate, ak_roots, at or _dt.datetime.now(_dt.UTC))
        validated, how = True, "certificate"
    warnings = tuple(str(w) for w in report.warnings) if report is not None else ()
    return VerifiedTpmEvidence(
        provenance="quote", pcrs=quoted, eventlog=log, replay=report, verified_pcrs=verified, ak=key,
        quotes=results, ak_validated=validated, ak_validation=how, ima=ima, ima_verified=covered,
        ima_state=ima_after, warnings=warnings, log_proof=proof, _seal=_SEAL)


def _verify_log(eventlog: bytes | EventLog | None, pcrs: Mapping[str, Mapping[int, bytes]],
                cache: LogCache[VerifiedLog] | None = None) -> VerifiedLog | None:
    if eventlog is None:
        return None
    key = None
    if isinstance(eventlog, EventLog):
        log = eventlog
    else:
        data = _bytes_of(eventlog, "eventlog")
        if cache is not None:
            key = log_key(data, pcrs)
            hit = cache.get(key)
            if hit is not None:
                return hit
        log = parse_eventlog(data)
    report = log.verify(pcrs)
    verified = _verified_pcrs(report)
    _check_data_was_measured(log, report, verified)
    proof = VerifiedLog(log, report, verified)
    if key is not None:
        cache.put(key, proof)
    return proof


def _parts(proof: VerifiedLog | None) -> tuple[EventLog | None, ReplayReport | None, frozenset[int]]:
    """(log, replay, verified PCRs) of a log's verification; nothing for evidence without a log."""
    return (proof.log, proof.report, proof.verified) if proof is not None else (None, None, frozenset())


def _check_data_was_measured(log: EventLog, report: ReplayReport, verified: frozenset[int]) -> None:
    """Claims read event *data*; the quote proves only the *digests*. For event types whose digest
    the PFP defines as the hash of the data (UEFI variables, separators, actions, GRUB strings...)
    a data/digest mismatch in a verified PCR means the data was not what was measured - forged or
    corrupted - so nothing in the log can be believed (``eventlog.data_not_measured``)."""
    for w in report.warnings:
        if w.code == "eventlog.digest_not_data_hash" and w.pcr in verified and w.event is not None:
            ev = log.events[w.event]
            raise VerificationError(
                "eventlog.data_not_measured",
                f"event {w.event} ({ev.type_name}, PCR {w.pcr}): its {w.bank} digest is not the hash of its data, "
                "so the data is not what the TPM measured",
                field="eventLog", offset=ev.offset,
                details={"event": w.event, "pcr": w.pcr, "bank": w.bank, "type": ev.type_name})


def _verify_ima(ima_log: bytes | ImaLog | None, pcrs: Mapping[str, Mapping[int, bytes]],
                state: ReplayState | None = None):
    if ima_log is None:
        return None, 0, None
    first = state.position if state is not None else 0
    ima = ima_log if isinstance(ima_log, ImaLog) else parse_ima(_bytes_of(ima_log, "ima_log"), first_index=first)
    covered, after = _check_ima(ima, pcrs, state)
    return ima, covered, after


def verify_eventlog(
    eventlog: bytes | EventLog, pcrs: Mapping[Any, Mapping[Any, Any]], *, ima_log: bytes | ImaLog | None = None
) -> VerifiedTpmEvidence:
    """Verify a log against PCR values the caller vouches for (read from a TPM it trusts, or
    recorded at a known-good time) - for offline inspection (``attestd claims --pcrs``).
    ``provenance`` is ``"pcrs"``: no quote proved these values, and tokens are never issued on it."""
    values = normalize_pcr_values(pcrs)
    proof = _verify_log(eventlog, values)
    log, report, verified = _parts(proof)
    ima, covered, _ = _verify_ima(ima_log, values)
    return VerifiedTpmEvidence(
        provenance="pcrs", pcrs=values, eventlog=log, replay=report, verified_pcrs=verified, ima=ima,
        ima_verified=covered, warnings=tuple(str(w) for w in report.warnings) if report else (), log_proof=proof,
        _seal=_SEAL)


def inspect_eventlog(eventlog: bytes | EventLog, *, ima_log: bytes | ImaLog | None = None) -> VerifiedTpmEvidence:
    """Read a log on its own: it is replayed against itself, so every PCR "verifies".

    ``provenance`` is ``"self-replay"``: the claims describe what the log *says*, with nothing to
    prove it; useful for looking at a log (``attestd claims --eventlog``), never for a decision.
    """
    log = eventlog if isinstance(eventlog, EventLog) else parse_eventlog(_bytes_of(eventlog, "eventlog"))
    values = log.replay()
    report = log.compare(values)
    ima = None
    covered = 0
    if ima_log is not None:
        ima = ima_log if isinstance(ima_log, ImaLog) else parse_ima(_bytes_of(ima_log, "ima_log"))
        ima.verify_template_hashes()
        covered = len(ima)
    return VerifiedTpmEvidence(
        provenance="self-replay", pcrs=values, eventlog=log, replay=report, verified_pcrs=_verified_pcrs(report),
        ima=ima, ima_verified=covered, warnings=tuple(str(w) for w in report.warnings), _seal=_SEAL)
