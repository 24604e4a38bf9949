"""The attestation pipeline without I/O: evidence -> verified claims -> policy decision.

Used by ``POST /tenants/{t}/attest/Tpm`` and by ``attestd audit reverify`` (on stored evidence), so
both reach their decision through the same code. Evidence verification and claims come from
:mod:`attestd.claims`; this module adds the request-level checks (which request member an
unparseable structure came from, the policy's ``required_pcr_mask``) and makes the results
JSON-storable.
"""

from __future__ import annotations

import base64
import datetime as _dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attestd.claims import build_claims, verify_tpm_evidence
from attestd.claims.logcache import LogCache
from attestd.errors import AttestdError, EvidenceError, VerificationError
from attestd.policy.evaluate import Decision, Policy
from attestd.service.evidence import TpmEvidence
from attestd.service.nonces import CheckedNonce, qualifying_data
from attestd.service.problems import ApiError
from attestd.tpm import load_signing_key, parse_attest, parse_signature
from attestd.tpm.attest import QuoteInfo

__all__ = ["TpmResult", "denial_problem", "jsonable", "run_tpm"]


@dataclass(frozen=True)
class TpmResult:
    claims: dict[str, Any]
    decision: Decision
    #: IMA replay state after the verified entries (for hosts that send their list incrementally)
    ima_state: Any = None


def jsonable(value: Any) -> Any:
    """Claims and traces as JSON (bytes as hex, sets as sorted lists, datetimes as ISO 8601)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, Mapping):  # dicts, and the read-only views decisions hand out
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        items = [jsonable(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if hasattr(value, "to_json"):
        return jsonable(value.to_json())
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    return str(value)


#: error-code prefix -> the request member it is about (for errors raised inside attestd.claims).
_FIELD_BY_PREFIX = (("eventlog.", "eventLog"), ("ima.", "imaLog"), ("nonce", "nonce"),
                    ("quote.pcr", "pcrs"), ("pcr", "pcrs"), ("quote.", "quote"), ("ak", "ak"))


def _locate(exc: AttestdError, default: str | None = None) -> AttestdError:
    """Name the request member in ``field``; the structure member goes to ``details.structureField``."""
    member = next((f for p, f in _FIELD_BY_PREFIX if exc.code.startswith(p)), default)
    if member is None:
        return exc
    details = dict(exc.details)
    if exc.field and exc.field != member:
        details["structureField"] = exc.field
    return type(exc)(exc.code, exc.message, field=member, offset=exc.offset, details=details)


def _preparse(evidence: TpmEvidence) -> tuple[Any, list[tuple[bytes, bytes]], list[Any]]:
    """(AK, [(quote, signature)], parsed quotes): every structure parsed once, an error naming
    the request member it is in."""
    try:
        ak = load_signing_key(evidence.ak_bytes())
    except EvidenceError as exc:
        raise _locate(exc, "ak").at(field="ak") from None
    quotes = evidence.quote_list()
    single = evidence.quotes is None
    parsed = []
    for i, (q, s) in enumerate(quotes):
        base = "" if single else f"quotes.{i}."
        for data, name, parse in ((q, "quote", parse_attest), (s, "signature", parse_signature)):
            try:
                result = parse(data)
            except EvidenceError as exc:
                details = dict(exc.details)
                if exc.field:
                    details["structureField"] = exc.field
                raise EvidenceError(exc.code, exc.message, field=base + name, offset=exc.offset,
                                    details=details) from None
            if name == "quote":
                parsed.append(result)
    return ak, quotes, parsed


def _quoted_pcrs(attests: list[Any]) -> set[int]:
    covered: set[int] = set()
    for attest in attests:
        info = attest.attested
        if isinstance(info, QuoteInfo):
            for sel in info.pcr_select.selections:
                covered.update(sel.pcrs)
    return covered


def run_tpm(evidence: TpmEvidence, nonce: CheckedNonce, policy: Policy, *, now: _dt.datetime,
            ak_enrolled: bool = False, baseline: dict | None = None, ima_state: Any = None,
            log_cache: LogCache | None = None) -> TpmResult:
    """Verify ``evidence`` (quote bound to ``nonce``/runtime data), build claims, evaluate ``policy``.

    ``ak_enrolled``: the AK is the one an enrolled host activated (``aikValidated``). ``baseline``:
    an ``attestd-baseline/1`` document the verified event log must match
    (``baseline.mismatch``, 422, with every difference in ``details``). ``log_cache``: the
    process's :class:`~attestd.claims.logcache.LogCache` of verified event logs.

    Raises :class:`EvidenceError` (400) or :class:`VerificationError` (422) naming the request
    member at fault. A policy denial is not an exception: see ``TpmResult.decision``.
    """
    ak, quotes, attests = _preparse(evidence)
    required = set(policy.configuration.required_pcrs)
    missing = sorted(required - _quoted_pcrs(attests))
    if missing:
        raise VerificationError(
            "quote.required_pcrs_missing",
            f"the policy requires PCRs {sorted(required)} in the quote; missing {missing}",
            field="quote", details={"required": sorted(required), "missing": missing})
    extra = qualifying_data(nonce.raw, evidence.runtime_bytes())
    kwargs: dict[str, Any] = {
        "ak": ak,
        "nonce": extra,
        "pcrs": evidence.pcr_values(),
        "eventlog": base64.b64decode(_std(evidence.eventLog)) if evidence.eventLog else None,
        "ima_log": base64.b64decode(_std(evidence.imaLog)) if evidence.imaLog else None,
    }
    if len(quotes) == 1:
        kwargs["quote"], kwargs["signature"] = quotes[0]
    else:
        kwargs["quote"] = [q for q, _ in quotes]
        kwargs["signature"] = [s for _, s in quotes]
    try:
        verified = verify_tpm_evidence(**kwargs, ak_enrolled=ak_enrolled, ima_state=ima_state, log_cache=log_cache)
        claim_set = build_claims(verified)
    except AttestdError as exc:
        raise _locate(exc) from None
    if baseline is not None:
        _check_baseline(baseline, verified)
    claims = claim_set.flat(None if policy.reads_all_claims else policy.incoming_claim_types())
    decision = policy.evaluate(claims)
    return TpmResult(jsonable(claims), decision, verified.ima_state)


def _check_baseline(doc: dict, verified: Any) -> None:
    from attestd.baseline import Baseline, compare

    if verified.eventlog is None:
        raise VerificationError("baseline.no_eventlog", "the host has a baseline but sent no event log",
                                field="eventLog")
    result = compare(Baseline.from_json(doc), verified.eventlog, ima=verified.ima)
    if not result.matches:
        first = result.differences[0].message
        more = f" (and {len(result.differences) - 1} more)" if len(result.differences) > 1 else ""
        raise VerificationError("baseline.mismatch", f"the boot differs from the host's baseline: {first}{more}",
                                field="eventLog", details={"differences": [d.to_json() for d in result.differences]})


def _std(value: str) -> str:
    body = value.rstrip("=").replace("-", "+").replace("_", "/")
    return body + "=" * (-len(body) % 4)


_TYPE_IN_CONDITION = re.compile(r'type\s*==\s*"([^"]+)"')


def denial_problem(decision: Decision, *, attestation_id: str, policy_hash: str) -> ApiError:
    """403 ``attestation.denied``: the explanation, the deciding rule and the claim it tested."""
    entry = decision.denied_by
    details: dict[str, Any] = {"attestationId": attestation_id, "policyHash": policy_hash}
    claim = None
    if entry is not None:
        details["rule"] = {"section": entry.section, "rule": entry.rule, "line": entry.line, "source": entry.source}
        conds = getattr(entry, "conditions", ()) or ()
        sources = [getattr(c, "source", "") for c in conds] or [entry.source]
        for src in reversed(sources):
            m = _TYPE_IN_CONDITION.search(src or "")
            if m:
                claim = m.group(1)
                break
        if conds:
            details["seen"] = jsonable([list(s) for s in (getattr(conds[-1], "seen", ()) or ())])
    if claim is None:
        m = _TYPE_IN_CONDITION.search(decision.explanation or "")
        claim = m.group(1) if m else None
    if claim is not None:
        details["claim"] = claim
    return ApiError(403, "attestation.denied", decision.explanation or "denied by policy", field=claim,
                    details=details, title="Attestation denied by policy")


def denial_reason(decision: Decision) -> str:
    entry = decision.denied_by
    return f"{entry.section}:{entry.rule}" if entry is not None else "no_permit"
