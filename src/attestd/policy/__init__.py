"""The Azure Attestation policy language (versions 1.0, 1.1, 1.2): parse, check, evaluate, sign.

    >>> from attestd.policy import compile_policy
    >>> p = compile_policy('version=1.0; authorizationrules { [type=="secureBootEnabled", value==true] => permit(); };')
    >>> p.evaluate({"secureBootEnabled": True}).permitted
    True

See ``docs/policy.md`` for the language reference as implemented.
"""

from attestd.policy.check import Configuration
from attestd.policy.claims import Claim
from attestd.policy.errors import PolicyError, PolicyEvaluationError, PolicySignatureError, PolicySyntaxError
from attestd.policy.evaluate import ConditionTrace, Decision, Policy, TraceEntry, compile_policy, evaluate
from attestd.policy.hashing import policy_hash
from attestd.policy.parser import parse

__all__ = [
    "Claim",
    "Configuration",
    "ConditionTrace",
    "Decision",
    "Policy",
    "TraceEntry",
    "PolicyError",
    "PolicySyntaxError",
    "PolicyEvaluationError",
    "PolicySignatureError",
    "compile_policy",
    "evaluate",
    "parse",
    "policy_hash",
    "parse_signed_policy",
    "sign_policy",
    "SignedPolicy",
]


def __getattr__(name: str):  # signing pulls in joserfc; import it on first use
    if name in ("parse_signed_policy", "sign_policy", "SignedPolicy"):
        from attestd.policy import signing

        return getattr(signing, name)
    raise AttributeError(name)
