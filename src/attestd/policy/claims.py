"""Claims: the typed (type, value, issuer) facts a policy reads and produces.

A claim value is a string, an integer, a boolean, or - for version 1.2 evidence claims such as
``events`` and ``pcrs`` - a JSON object or array. A *set* of values is several claims of the same
type (Azure's model: ``JsonToClaimValue("[1, 2]")`` adds two claims). Booleans are never integers:
``true == 1`` is false, as in the policy language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Union

from attestd.errors import EvidenceError

__all__ = [
    "Claim",
    "ClaimValue",
    "ISSUERS",
    "SERVICE",
    "POLICY",
    "CUSTOM",
    "RESERVED_TYPES",
    "READ_ONLY_TYPES",
    "is_reserved",
    "ingest",
    "claims_from_json",
    "value_type",
    "values_equal",
    "compare",
]

SERVICE = "AttestationService"
POLICY = "AttestationPolicy"
CUSTOM = "CustomClaim"
ISSUERS = (SERVICE, POLICY, CUSTOM)

#: claim types the attestation service owns: a policy may read them but never add or issue a claim
#: of that type (it would shadow or forge evidence). Every ``x-ms-*`` type is reserved as well.
RESERVED_TYPES = frozenset({"pcrs", "events", "bootEvents"})
#: claim types whose *values* are read-only: a value derived from them (through JmesPath,
#: JsonToClaimValue, AppendString, NegateBool) may be add()ed but not issue()d (Azure: "PCRs are
#: read-only and thus cannot be used with issue operation").
READ_ONLY_TYPES = frozenset({"pcrs"})

ClaimValue = Union[str, int, bool, dict, list]


def is_reserved(claim_type: str) -> bool:
    return claim_type in RESERVED_TYPES or claim_type.lower().startswith("x-ms-")


def value_type(value: Any) -> str:
    """The policy language's ``valueType`` of a value: String, Integer, Boolean or Json."""
    if type(value) is bool:
        return "Boolean"
    if type(value) is int:
        return "Integer"
    if isinstance(value, str):
        return "String"
    return "Json"


@dataclass(frozen=True, slots=True)
class Claim:
    type: str
    value: ClaimValue
    issuer: str = SERVICE
    read_only: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not self.type:
            raise EvidenceError(
                "policy.claim", f"claim type must be a non-empty string, not {self.type!r}", field="type"
            )
        if self.issuer not in ISSUERS:
            raise EvidenceError(
                "policy.claim",
                f"claim issuer must be one of {', '.join(ISSUERS)}, not {self.issuer!r}",
                field="issuer",
            )
        _check_value(self.type, self.value)

    @property
    def value_type(self) -> str:
        return value_type(self.value)


def _check_value(claim_type: str, value: Any) -> None:
    if isinstance(value, (str, bool, int, dict, list)) and not isinstance(value, float):
        return
    raise EvidenceError(
        "policy.claim_value",
        f"claim {claim_type!r}: value {value!r} is not a string, integer, boolean, JSON object or array",
        field=claim_type,
    )


def values_equal(a: Any, b: Any) -> bool:
    """``==`` of the policy language: same value type and same value (``true != 1``)."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return a == b


def compare(op: str, a: Any, b: Any) -> bool:
    """``a op b``; ordering applies to integers only (a string or boolean never satisfies it)."""
    if op == "==":
        return values_equal(a, b)
    if op == "!=":
        return not values_equal(a, b)
    if type(a) is not int or type(b) is not int:
        return False
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


#: the evaluator's internal claim: a plain tuple (type, value, issuer, read_only) - cheap to build.
ClaimTuple = tuple
TYPE, VALUE, ISSUER, READ_ONLY = 0, 1, 2, 3
_PLAIN = frozenset({str, int, bool, dict, list})


def _make(claim_type: Any, value: Any, issuer: str) -> ClaimTuple:
    if type(value) not in _PLAIN and not isinstance(value, str):
        _check_value(str(claim_type), value)
    if type(claim_type) is not str or not claim_type:
        raise EvidenceError(
            "policy.claim", f"claim type must be a non-empty string, not {claim_type!r}", field="type"
        )
    if issuer not in ISSUERS:
        raise EvidenceError(
            "policy.claim",
            f"claim issuer must be one of {', '.join(ISSUERS)}, not {issuer!r}",
            field="issuer",
        )
    return (claim_type, value, issuer, claim_type in READ_ONLY_TYPES and issuer == SERVICE)


def ingest(claims: Iterable[Claim] | Mapping[str, Any]) -> list[ClaimTuple]:
    """Normalise the caller's incoming claims into the evaluator's tuples.

    * a mapping ``{type: value}``: each entry is a claim issued by ``AttestationService``; a list
      value is a *set* (one claim per element); a dict value is one JSON-object claim;
    * an iterable of :class:`Claim` (``pcrs`` from the service is marked read-only).
    """
    out: list[ClaimTuple] = []
    if isinstance(claims, Mapping):
        append = out.append
        for claim_type, value in claims.items():
            tv = type(value)
            if tv is list:
                out.extend(_make(claim_type, v, SERVICE) for v in value)
            elif tv in _PLAIN and type(claim_type) is str and claim_type:
                append((claim_type, value, SERVICE, claim_type in READ_ONLY_TYPES))
            else:
                append(_make(claim_type, value, SERVICE))
        return out
    for c in claims:
        if isinstance(c, Claim):
            out.append(
                (
                    c.type,
                    c.value,
                    c.issuer,
                    c.read_only or (c.type in READ_ONLY_TYPES and c.issuer == SERVICE),
                )
            )
        elif type(c) is tuple and len(c) == 4:
            out.append(c)
        else:
            raise EvidenceError("policy.claim", f"expected a Claim, not {type(c).__name__}")
    return out


def claims_from_json(doc: Any) -> list[Claim]:
    """Claims from a JSON document: ``{type: value, ...}`` or ``[{"type", "value", "issuer"?}, ...]``."""
    if isinstance(doc, dict):
        return [Claim(*t) for t in ingest(doc)]
    if isinstance(doc, list):
        out = []
        for i, item in enumerate(doc):
            if not isinstance(item, dict) or "type" not in item or "value" not in item:
                raise EvidenceError(
                    "policy.claim", f"claim #{i} must be an object with 'type' and 'value'", field=f"[{i}]"
                )
            out.append(Claim(*_make(item["type"], item["value"], item.get("issuer", SERVICE))))
        return out
    raise EvidenceError(
        "policy.claim",
        'claims must be a JSON object {type: value} or a list of {"type": ..., "value": ..., "issuer": ...}',
    )
